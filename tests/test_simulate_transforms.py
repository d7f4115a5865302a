"""simulate under torch.func transforms and forward-mode AD: the fused kernels step aside, and what cannot
run there says so."""

import pytest
import torch
import torch.autograd.forward_ad as fwad
from torch.autograd.functional import jacobian as reverse_jacobian
from torch.func import grad, jacfwd, jacrev, jvp, vmap

import neurodyn as nd

f64 = torch.float64


def net(n=6, n_in=2, n_out=2, seed=0):
    torch.manual_seed(seed)
    return nd.RateRNN(n, n_in, n_out, tau=0.1).double()


def equations(n=6):
    gen = torch.Generator().manual_seed(4)
    params = {"W": torch.randn(n, n, dtype=f64, generator=gen) / 3, "a": torch.randn(n, dtype=f64, generator=gen),
              "c": torch.randn(n, dtype=f64, generator=gen), "tau": 0.1}
    return nd.Equations("dr/dt = (-r + tanh(W @ r + a*u + c*v)) / tau", params, inputs=("u", "v"),
                        state_sizes={"r": n}, dtype=f64)


T = torch.linspace(0, 0.5, 11, dtype=f64)


@pytest.mark.parametrize("model_kind", ["rate_rnn", "ensemble", "equations"])
@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_forward_mode_through_simulate_equals_the_reverse_mode_jacobian(model_kind, solver):
    model = {"rate_rnn": net(),
             "ensemble": nd.ensemble(lambda seed: net(seed=seed), 3),
             "equations": equations()}[model_kind]
    rows = 6 if model_kind == "ensemble" else 2
    gen = torch.Generator().manual_seed(1)
    x, v = (torch.randn(rows, len(T), 2, dtype=f64, generator=gen) for _ in range(2))

    def states(inputs):
        return nd.simulate(model, T, inputs, solver=solver).states[0]

    expected = torch.einsum("...ijk,ijk->...", reverse_jacobian(states, x), v)  # J v from backprop, column by column
    assert torch.allclose(jvp(states, (x,), (v,))[1], expected, atol=1e-12)
    with fwad.dual_level():
        tangent = fwad.unpack_dual(states(fwad.make_dual(x, v))).tangent
    assert torch.allclose(tangent, expected, atol=1e-12)


def test_func_grad_and_jacrev_equal_backprop():
    model = net()
    x = torch.randn(2, len(T), 2, dtype=f64, generator=torch.Generator().manual_seed(2))
    state0 = torch.randn(2, 6, dtype=f64, generator=torch.Generator().manual_seed(3))

    def loss(inputs):
        return nd.simulate(model, T, inputs, state0).outputs.pow(2).sum()

    leaf = x.clone().requires_grad_(True)
    loss(leaf).backward()
    assert torch.allclose(grad(loss)(x), leaf.grad, atol=1e-14)

    def final(start):
        return nd.simulate(model, T, x, start).states[0][:, -1]

    assert torch.allclose(jacrev(final)(state0), reverse_jacobian(final, state0), atol=1e-14)


@pytest.mark.parametrize("gradient,solver", [("checkpoint", "euler"), ("adjoint", "dopri5"), ("backprop", "dopri5")])
def test_custom_gradient_modes_and_adaptive_solvers_under_transforms_are_refused(gradient, solver):
    model = net()
    x = torch.randn(2, len(T), 2, dtype=f64)

    def states(inputs):
        return nd.simulate(model, T, inputs, solver=solver, gradient=gradient).states[0]

    # before: jvp through gradient="checkpoint" returned a wrong tangent (off by 1.4 here), forward AD none at all
    for run in (lambda: jvp(states, (x,), (x,)), lambda: grad(lambda i: states(i).sum())(x)):
        with pytest.raises(ValueError, match='fixed-step solver .* with gradient="backprop"'):
            run()
    with fwad.dual_level(), pytest.raises(ValueError, match='fixed-step solver .* with gradient="backprop"'):
        states(fwad.make_dual(x, x))


def test_vmap_over_simulate_is_refused_with_the_alternatives():
    model = net()
    x = torch.randn(3, len(T), 2, dtype=f64)
    with pytest.raises(ValueError, match="vmap.*Ensemble"):
        vmap(lambda xi: nd.simulate(model, T, xi[None]).outputs[0])(x)
    with pytest.raises(ValueError, match="jacfwd and hessian also use"):  # vmap inside, not called by the user
        jacfwd(lambda xi: nd.simulate(model, T, xi).outputs)(x)
