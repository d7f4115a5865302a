"""Perturbations (neurodyn.perturb): lesions, cut connections, clamping and stimulation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neurodyn.analysis.fixed_points import find_fixed_points
from neurodyn.analysis.jacobian import jacobian
from neurodyn.learning import fit
from neurodyn.models import (
    EIRateRNN,
    FitzHughNagumo,
    HebbianRNN,
    LinearIntegrator,
    Model,
    RateRNN,
    STPRateRNN,
    WilsonCowan,
)
from neurodyn.perturb import clamp, lesion, lesion_connections, stimulate
from neurodyn.simulate import simulate
from neurodyn.tasks import PeriodicTarget

F64 = torch.float64
TAU = 0.1


def rnn(n: int = 6, n_in: int = 2, n_out: int = 2, *, activation: str = "tanh", g: float = 0.9,
        W_out: torch.Tensor | None = None, **kwargs) -> RateRNN:
    return RateRNN(n, n_in, n_out, tau=TAU, activation=activation, W=g * torch.randn(n, n, dtype=F64) / math.sqrt(n),
                   W_in=torch.randn(n, n_in, dtype=F64), b=0.5 * torch.randn(n, dtype=F64),
                   W_out=torch.randn(n_out, n, dtype=F64) if W_out is None else W_out,
                   b_out=torch.randn(n_out, dtype=F64), **kwargs)


def grid(steps: int = 60, dt: float = 0.01) -> torch.Tensor:
    return torch.arange(steps + 1, dtype=F64) * dt


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in (*model.named_parameters(), *model.named_buffers())}


# ---------------------------------------------------------------- lesion


@pytest.mark.parametrize("solver", ["euler", "dopri5"])
def test_lesion_of_every_unit_feeding_the_readout_makes_it_constant(solver):
    W_out = torch.zeros(2, 6, dtype=F64)
    W_out[:, [1, 4]] = torch.randn(2, 2, dtype=F64)
    m = rnn(W_out=W_out)
    t, x, r0 = grid(40), torch.randn(3, 41, 2, dtype=F64), torch.randn(3, 6, dtype=F64)
    base = simulate(m, t, x, r0, solver=solver)
    assert base.outputs.std(dim=1).min() > 1e-2  # the readout moves without the lesion
    traj = simulate(lesion(m, [1, 4]), t, x, r0, solver=solver)
    assert torch.equal(traj.outputs, m.b_out.expand_as(traj.outputs))  # exactly b_out at every time
    assert (traj["r"][:, 1:, [0, 2, 3, 5]] - base["r"][:, 1:, [0, 2, 3, 5]]).abs().min() > 0


def test_lesioned_units_are_invisible_and_relax_to_zero():
    m = rnn()
    t, r0 = grid(30), torch.randn(2, 6, dtype=F64)
    traj = simulate(lesion(m, torch.tensor([0, 3])), t, torch.ones(2, 2, dtype=F64), r0)
    k = torch.arange(31, dtype=F64)
    # Euler on tau ds/dt = -s: s_k = (1 - dt/tau)^k s_0
    torch.testing.assert_close(traj["r"][:, :, [0, 3]], r0[:, None, [0, 3]] * (1 - 0.01 / TAU) ** k[:, None],
                               rtol=1e-12, atol=1e-15)
    # the network never sees them: the same run from state0 with those entries zeroed (mask form)
    mask = torch.tensor([True, False, False, True, False, False])
    zeroed = simulate(lesion(m, mask), t, torch.ones(2, 2, dtype=F64), r0.masked_fill(mask, 0.0))
    assert torch.equal(traj["r"][:, :, ~mask], zeroed["r"][:, :, ~mask])
    assert torch.equal(zeroed["r"][:, :, mask], torch.zeros_like(zeroed["r"][:, :, mask]))


def reduced(m: RateRNN, keep: list[int]) -> RateRNN:
    """The network of the surviving units alone: an independent reference for a lesion."""
    return RateRNN(len(keep), m.n_in, m.n_out, tau=TAU, activation=m.activation,
                   W=m.W.detach()[keep][:, keep], W_in=m.W_in.detach()[keep], b=m.b.detach()[keep],
                   W_out=m.W_out.detach()[:, keep], b_out=m.b_out.detach())


def gradients(model: Model, **options) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    t = torch.linspace(0, 0.4, 21, dtype=F64)
    x = torch.sin(torch.arange(21, dtype=F64))[None, :, None].expand(2, 21, 2) * torch.tensor([1.0, -0.5], dtype=F64)
    traj = simulate(model, t, x, **options)
    loss = traj.outputs.square().mean()
    names, params = zip(*((k.removeprefix("model."), p) for k, p in model.named_parameters()))
    return traj.outputs, dict(zip(names, torch.autograd.grad(loss, params)))


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_lesion_gradients_equal_the_reduced_network(gradient):
    m, keep, gone = rnn(), [0, 2, 3, 5], [1, 4]
    out, full = gradients(lesion(m, gone), gradient=gradient)
    ref_out, ref = gradients(reduced(m, keep), gradient=gradient)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    dW, dW_out = full["recurrent.weight"], full["W_out"]
    for name, kept in (("recurrent.weight", dW[keep][:, keep]), ("W_in", full["W_in"][keep]), ("b", full["b"][keep]),
                       ("W_out", dW_out[:, keep]), ("b_out", full["b_out"])):
        torch.testing.assert_close(kept, ref[name], rtol=0, atol=1e-10)
    assert dW[gone].abs().max() == 0 and dW[:, gone].abs().max() == 0 and dW_out[:, gone].abs().max() == 0


def test_lesion_adjoint_gradients_are_finite_and_match_backprop():
    m, gone, keep = rnn(), [1, 4], [0, 2, 3, 5]
    options = dict(solver="dopri5", rtol=1e-10, atol=1e-12)
    _, adjoint = gradients(lesion(m, gone), gradient="adjoint", **options)
    _, ref = gradients(reduced(m, keep), gradient="backprop", **options)
    assert all(torch.isfinite(g).all() for g in adjoint.values())
    survivors = {"recurrent.weight": adjoint["recurrent.weight"][keep][:, keep], "W_in": adjoint["W_in"][keep]}
    for name, kept in survivors.items():
        torch.testing.assert_close(kept, ref[name], rtol=1e-6, atol=1e-8)


def test_fixed_point_of_a_lesioned_linear_network_is_analytic():
    n, gone = 7, [2, 5]
    keep = [i for i in range(n) if i not in gone]
    m = rnn(n, n_in=1, n_out=0, activation="linear", g=0.6)
    fps = find_fixed_points(lesion(m, gone), torch.randn(4, n, dtype=F64))
    assert len(fps) == 1
    W, b = m.W.detach(), m.b.detach()
    expected = torch.zeros(n, dtype=F64)
    expected[keep] = torch.linalg.solve(torch.eye(n - 2, dtype=F64) - W[keep][:, keep], b[keep])
    torch.testing.assert_close(fps.states[0], expected, rtol=0, atol=1e-10)
    # spectrum: the surviving block (W_KK - I)/tau plus -1/tau for each lesioned unit
    block = torch.linalg.eigvals((W[keep][:, keep] - torch.eye(n - 2, dtype=F64)) / TAU)
    spectrum = torch.cat([block, torch.full((2,), -1 / TAU, dtype=block.dtype)])
    key = lambda z: z[torch.argsort(z.real * 1e3 + z.imag)]  # noqa: E731
    torch.testing.assert_close(key(fps.eigvals[0]), key(spectrum), rtol=0, atol=1e-9)
    assert fps.is_stable.all()


def test_lesion_of_other_state_variables():
    stp = STPRateRNN(5, 1, 1, U=0.3)
    traj = simulate(lesion(stp, [0, 1]), torch.linspace(0, 1, 11), torch.ones(1, 1))
    assert torch.equal(traj["r"][..., :2], torch.zeros_like(traj["r"][..., :2]))
    assert torch.equal(traj["u"][..., :2], torch.full_like(traj["u"][..., :2], 0.3))  # no presynaptic activity
    hebb = HebbianRNN(4, 1, 1, eta=1.0)
    traj = simulate(lesion(hebb, [0, 5], var="A"), torch.linspace(0, 1, 11), torch.ones(1, 1))
    A = traj["A"]  # (B, T, 4, 4): flat entries 0 and 5 are A[0, 0] and A[1, 1]
    assert A[..., 0, 0].abs().max() == 0 and A[..., 1, 1].abs().max() == 0 and A[..., 2, 2].abs().max() > 0


# ---------------------------------------------------------------- clamp


def test_clamp_changes_the_trajectory_only_from_t0_on():
    m = rnn()
    t, x, r0 = grid(60), torch.randn(2, 2, dtype=F64), torch.randn(2, 6, dtype=F64)
    k0, k1 = 20, 40
    base = simulate(m, t, x, r0)
    traj = simulate(clamp(m, [1, 3], torch.tensor([0.0, 0.8], dtype=F64), window=(float(t[k0]), float(t[k1]))),
                    t, x, r0)
    assert torch.equal(traj["r"][:, : k0 + 1], base["r"][:, : k0 + 1])  # up to and including t0: bitwise
    assert torch.equal(traj.outputs[:, : k0 + 1], base.outputs[:, : k0 + 1])
    diff = (traj["r"] - base["r"]).abs()
    assert (diff[:, k0 + 1:, [1, 3]] > 0).all() and (diff[:, k0 + 2:] > 0).all()
    # in the window a clamped unit relaxes to its value: s_{k+1} - v = (1 - dt/tau)(s_k - v)
    steps = torch.arange(k1 - k0 + 1, dtype=F64)
    start = traj["r"][:, k0, [1, 3]]
    target = torch.tensor([0.0, 0.8], dtype=F64)
    torch.testing.assert_close(traj["r"][:, k0:k1 + 1, [1, 3]],
                               target + (start - target)[:, None] * (1 - 0.01 / TAU) ** steps[:, None],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [lambda m: clamp(m, [1], 0.0, window=(0.2, 0.4)),
                                  lambda m: stimulate(m, [1], 2.0, window=(0.2, 0.4))], ids=["clamp", "stimulate"])
def test_rk4_switches_a_window_on_the_grid_at_its_edge_and_stays_fourth_order(make):
    """rk4's last stage sits at the step's end: read there, a window starting at t0 leaked into the step
    before it (8e-3 off at t0) and the error fell only like dt."""
    m = rnn()
    P, t = make(m), grid(60)
    x, r0 = torch.randn(1, 2, dtype=F64), 0.5 * torch.randn(1, 6, dtype=F64)
    with torch.no_grad():
        reference = simulate(P, t, x, r0, solver="dopri5", rtol=1e-12, atol=1e-13)["r"]
        before = [simulate(model, t, x, r0, solver="rk4")["r"][:, :21] for model in (P, m)]
        assert torch.equal(*before)  # up to and including t0 = t[20]: the unperturbed run
        errors = [float((simulate(P, t, x, r0, solver="rk4", dt=dt)["r"] - reference).abs().max())
                  for dt in (0.01, 0.005)]
    assert errors[1] < 1e-6 and errors[0] / errors[1] > 10, errors  # 2^4 = 16


def test_a_clamp_faster_than_dt_warns_like_a_fast_unit():
    """tau=0.001 with dt=0.01 is unstable Euler (QA: |r| reached 1e19 without a word)."""
    fast = clamp(rnn(), [1], 0.5, window=(0.1, 0.3), tau=0.001)
    assert fast.timescale == 0.001 and clamp(rnn(), [1], 0.5, tau=1.0).timescale == TAU
    with pytest.warns(UserWarning, match="smallest time constant 0.001"):
        simulate(fast, grid(40), torch.zeros(1, 2, dtype=F64), dt=0.01)


def linear_solution(A: torch.Tensor, c: torch.Tensor, y0: torch.Tensor, dt: float) -> torch.Tensor:
    """Exact ``y(dt)`` of ``dy/dt = A y + c`` by the matrix exponential of the augmented system."""
    n = A.shape[0]
    M = torch.zeros(n + 1, n + 1, dtype=F64)
    M[:n, :n], M[:n, n] = A, c
    return (torch.linalg.matrix_exp(M * dt) @ torch.cat([y0, torch.ones(1, dtype=F64)]))[:n]


def test_an_adaptive_solver_steps_onto_a_short_window():
    # at rest for 30 s, dopri5's steps grow far beyond a 10 ms window: it must not step over it
    n, units, window = 5, [0, 2], (30.0, 30.01)
    m = rnn(n, n_in=1, n_out=1, activation="linear", g=0.8)
    W, b = m.W.detach(), m.b.detach()
    rest = torch.linalg.solve(torch.eye(n, dtype=F64) - W, b)
    value = rest[units] + 1.5
    A, c = (W - torch.eye(n, dtype=F64)) / TAU, b / TAU
    A_on, c_on = A.clone(), c.clone()
    A_on[units] = 0
    A_on[units, units] = -1 / TAU
    c_on[units] = value / TAU
    y = linear_solution(A_on, c_on, rest, window[1] - window[0])
    y = linear_solution(A, c, y, 0.001)
    t = torch.tensor([0.0, 30.011, 31.0], dtype=F64)
    traj = simulate(clamp(m, units, value, window), t, state0=rest[None], solver="dopri5", rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(traj["r"][0, 1], y, rtol=0, atol=1e-7)
    assert (y - rest).abs().max() > 0.1


# ---------------------------------------------------------------- stimulate


def test_stimulate_equals_the_same_current_given_as_input():
    n = 5
    m = RateRNN(n, n, 1, tau=TAU, W=0.8 * torch.randn(n, n, dtype=F64) / math.sqrt(n),
                W_in=torch.eye(n, dtype=F64), b=torch.randn(n, dtype=F64))
    t, units, current = grid(50), [1, 3], torch.tensor([0.7, -1.2], dtype=F64)
    x = torch.zeros(1, 51, n, dtype=F64)
    x[:, 10:30, units] = current  # zero-order hold: on for t in [t_10, t_30)
    expected = simulate(m, t, x)
    traj = simulate(stimulate(m, units, current, (float(t[10]), float(t[30]))), t)
    torch.testing.assert_close(traj["r"], expected["r"], rtol=0, atol=1e-12)
    # a callable current of t
    ramp = lambda s: torch.as_tensor(s, dtype=F64) * current  # noqa: E731
    expected = simulate(m, t, lambda s: torch.zeros(1, n, dtype=F64).index_copy(1, torch.tensor(units),
                                                                                ramp(s)[None]))
    torch.testing.assert_close(simulate(stimulate(m, units, ramp), t)["r"], expected["r"], rtol=0, atol=1e-12)


def test_stimulate_uses_each_models_drive_layout():
    wc = WilsonCowan(dtype=F64)
    t = torch.linspace(0, 10, 101, dtype=F64)
    x = torch.zeros(1, 101, 2, dtype=F64)
    x[:, 20:50, 1] = 2.0
    expected = simulate(wc, t, x)
    traj = simulate(stimulate(wc, 0, 2.0, (float(t[20]), float(t[50])), var="I"), t)
    torch.testing.assert_close(traj.flat(), expected.flat(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="drive enters only"):
        stimulate(FitzHughNagumo(), 0, 1.0, (0, 1), var="w")

    class Custom(Model):
        state_vars = {"s": 2}

        def vector_field(self, t, state, drive):
            return self.State(-state[0])

    with pytest.raises(ValueError, match="does not know where Custom adds its drive"):
        stimulate(Custom(), 0, 1.0, (0, 1))


# ---------------------------------------------------------------- cut connections


def cut_reference(m: RateRNN, keep: torch.Tensor) -> RateRNN:
    return RateRNN(m.n, m.n_in, m.n_out, tau=TAU, activation=m.activation, W=m.W.detach() * keep,
                   W_in=m.W_in.detach(), b=m.bias.detach(), W_out=m.W_out.detach(), b_out=m.b_out.detach())


@pytest.mark.parametrize("kind", ["plain", "dale", "mask_and_fixed"])
def test_lesion_connections_equals_a_network_with_those_weights_zeroed(kind):
    n, pre, post = 6, [0, 4], [1, 2, 5]
    if kind == "dale":
        m = EIRateRNN(4, 2, 2, 1, tau=TAU, activation="tanh", g=0.9,
                      W_in=torch.randn(n, 2, dtype=F64), b=0.3 * torch.randn(n, dtype=F64))
    elif kind == "mask_and_fixed":
        m = rnn(density=0.7, W_fix=0.2 * torch.randn(n, n, dtype=F64))
    else:
        m = rnn()
    keep = torch.ones(n, n, dtype=F64)
    keep[torch.tensor(post)[:, None], torch.tensor(pre)] = 0
    ref = cut_reference(m, keep)
    t, x = grid(40), torch.randn(2, 41, 2, dtype=F64)
    cut = lesion_connections(m, pre, post)
    traj, expected = simulate(cut, t, x), simulate(ref, t, x)
    torch.testing.assert_close(traj.flat(), expected.flat(), rtol=0, atol=1e-12)
    torch.testing.assert_close(traj.outputs, expected.outputs, rtol=0, atol=1e-12)
    r = torch.randn(3, n, dtype=F64)
    torch.testing.assert_close(jacobian(cut, r, x[0, 0]), jacobian(ref, r, x[0, 0]), rtol=0, atol=1e-12)
    if kind == "plain":  # W = W~: dL/dW~ is the reference's dL/dW on kept synapses, 0 on cut ones
        dW = torch.autograd.grad(traj.outputs.square().sum(), m.recurrent.weight)[0]
        rW = torch.autograd.grad(simulate(ref, t, x).outputs.square().sum(), ref.recurrent.weight)[0]
        torch.testing.assert_close(dW, rW * keep, rtol=0, atol=1e-10)


def test_lesion_connections_needs_a_recurrent_matrix():
    with pytest.raises(ValueError, match="no recurrent matrix"):
        lesion_connections(LinearIntegrator(3), [0], [1])


# ---------------------------------------------------------------- the original model is untouched


def test_the_model_is_unchanged_and_receives_the_gradients():
    m = rnn()
    before = snapshot(m)
    t, x = grid(30), torch.randn(2, 2, dtype=F64)
    wrappers = [lambda: lesion(m, [0, 2]), lambda: lesion_connections(m, [1], [3, 4]),
                lambda: clamp(m, [5], 0.0, (0.1, 0.2)), lambda: stimulate(m, [0], 1.0, (0.05, 0.25))]
    for make in wrappers:
        with make() as perturbed:
            assert {id(p) for p in perturbed.parameters()} == {id(p) for p in m.parameters()}
            for gradient in ("backprop", "checkpoint"):
                simulate(perturbed, t, x, gradient=gradient).outputs.square().sum().backward()
        after = snapshot(m)
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0 for p in m.parameters())


def test_wrappers_compose():
    m = rnn()
    t, x = grid(40), torch.randn(2, 41, 2, dtype=F64)
    a = simulate(lesion(stimulate(m, [1], 2.0, (0.1, 0.3)), [4]), t, x)
    b = simulate(stimulate(lesion(m, [4]), [1], 2.0, (0.1, 0.3)), t, x)
    c = simulate(lesion(lesion(m, [0]), [4]), t, x)
    d = simulate(lesion(m, [0, 4]), t, x)
    assert torch.equal(a.flat(), b.flat()) and torch.equal(c.flat(), d.flat())
    nested = lesion_connections(clamp(m, [2], 0.0, (0.2, 0.3)), [0], [1])
    assert simulate(nested, t, x, solver="rk4").flat().isfinite().all()


def test_fit_trains_the_wrapped_model_and_a_clamp_value_parameter():
    task = PeriodicTarget(dt=0.01, duration=0.2, frequencies=(1.0,), amplitudes=(1.0,))
    m = RateRNN(6, 0, 1, tau=TAU)
    value = nn.Parameter(torch.zeros(()))
    perturbed = clamp(lesion(m, [0]), [1], value, (0.05, 0.15))
    assert any(p is value for p in perturbed.parameters())
    before = m.W_out.detach().clone()
    history = fit(perturbed, task, steps=3, lr=1e-2, batch_size=2, progress=False)
    assert len(history.loss) == 3 and not torch.equal(before, m.W_out.detach()) and value.detach() != 0


# ---------------------------------------------------------------- bad input


def test_bad_input_is_rejected_with_the_argument_named():
    m = rnn()
    with pytest.raises(ValueError, match=r"units must lie in 0\.\.5 .*got \[6\]"):
        lesion(m, 6)
    with pytest.raises(ValueError, match=r"units must lie in 0\.\.5"):
        lesion(m, [-1, 2])
    with pytest.raises(ValueError, match="must not repeat"):
        lesion(m, [1, 1])
    with pytest.raises(ValueError, match=r"boolean units mask must have shape \(6,\)"):
        lesion(m, torch.tensor([True, False]))
    with pytest.raises(TypeError, match="units must hold integer"):
        lesion(m, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="var must be one of"):
        lesion(m, 0, var="u")
    with pytest.raises(ValueError, match=r"post must lie in 0\.\.5"):
        lesion_connections(m, [0], [9])
    with pytest.raises(TypeError, match="model must be a neurodyn"):
        lesion(torch.nn.Linear(2, 2), 0)
    for window in ((0.5, 0.5), (0.6, 0.2)):
        with pytest.raises(ValueError, match="t0 < t1"):
            clamp(m, 0, 0.0, window)
    with pytest.raises(ValueError, match="window must be finite"):
        stimulate(m, 0, 1.0, (0.0, math.inf))
    with pytest.raises(TypeError, match="window must be a pair"):
        clamp(m, 0, 0.0, 0.5)
    with pytest.raises(ValueError, match="value must be finite"):
        clamp(m, 0, math.nan, (0.0, 0.1))
    with pytest.raises(ValueError, match="current must be finite"):
        stimulate(m, [0, 1], torch.tensor([1.0, math.inf]), (0.0, 0.1))
    with pytest.raises(ValueError, match=r"value must be a scalar or have one entry per chosen unit, shape \(2,\)"):
        clamp(m, [0, 1], torch.zeros(3), (0.0, 0.1))
    with pytest.raises(ValueError, match="tau must be a positive"):
        clamp(m, 0, 0.0, (0.0, 0.1), tau=-1.0)
    with pytest.raises(ValueError, match=r"window=\(2, 3\) lies outside the trial \[0, 0\.6\]"):
        simulate(clamp(m, 0, 0.0, (2.0, 3.0)), grid(60))
    with pytest.raises(ValueError, match="lies outside the trial"):
        simulate(lesion(stimulate(m, 0, 1.0, (-2.0, -1.0)), [1]), grid(60), solver="dopri5")


def test_a_stimulation_current_gets_a_tensor_time_under_every_solver():
    net = RateRNN(4, tau=0.1).double()
    model = stimulate(net, [1], lambda time: 3 * torch.sin(10 * time), window=(0.1, 0.3))
    same = stimulate(net, [1], lambda time: 3 * math.sin(10 * float(time)), window=(0.1, 0.3))
    t = torch.linspace(0, 0.5, 6, dtype=torch.float64)
    for solver in ("euler", "rk4", "dopri5"):  # torch.sin of a float was a TypeError under fixed steps
        got, want = (simulate(m, t, solver=solver, dt=0.01)["r"] for m in (model, same))
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        assert (got - simulate(net, t, solver=solver, dt=0.01)["r"]).abs().max() > 1e-3  # the current acts
