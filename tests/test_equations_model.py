"""Equations compiled from text: agreement with hand-written models, gradients, singularities, parameters."""

import math
import warnings

import mpmath
import numpy as np
import pytest
import sympy
import torch

import neurodyn as nd
from neurodyn.analysis.jacobian import jacobian
from neurodyn.equations import Equations
from neurodyn.equations.singularities import x_over_expm1

F64 = torch.float64

WONG_WANG = """
# Wong & Wang (2006), J. Neurosci. 26:1314, reduced two-variable model
x1 = J_N11*S1 - J_N12*S2 + I_0 + J_ext*mu0*(1 + coherence/100) + u1
x2 = J_N22*S2 - J_N21*S1 + I_0 + J_ext*mu0*(1 - coherence/100) + u2
H1 = (a*x1 - b)/(1 - exp(-d*(a*x1 - b)))
H2 = (a*x2 - b)/(1 - exp(-d*(a*x2 - b)))
dS1/dt = -S1/tau_S + (1 - S1)*gamma*H1
dS2/dt = -S2/tau_S + (1 - S2)*gamma*H2
"""
WONG_WANG_PARAMS = dict(a=270.0, b=108.0, d=0.154, gamma=0.641, tau_S=0.1, J_N11=0.2609, J_N22=0.2609,
                        J_N12=0.0497, J_N21=0.0497, I_0=0.3255, J_ext=5.2e-4, mu0=30.0, coherence=6.4)

WILSON_COWAN = """
# Wilson & Cowan (1972), shifted logistic F(z) = sigmoid(a (z - theta)) - sigmoid(-a theta)
zE = wEE*E - wEI*I + I_ext_E + xE
zI = wIE*E - wII*I + I_ext_I + xI
dE/dt = (-E + (1 - rE*E)*(sigmoid(aE*(zE - thetaE)) - sigmoid(-aE*thetaE)))/tauE
dI/dt = (-I + (1 - rI*I)*(sigmoid(aI*(zI - thetaI)) - sigmoid(-aI*thetaI)))/tauI
"""
WILSON_COWAN_PARAMS = dict(tauE=1.0, tauI=2.0, aE=1.2, thetaE=2.8, aI=1.0, thetaI=4.0, wEE=9.0, wEI=4.0,
                           wIE=13.0, wII=11.0, I_ext_E=0.3, I_ext_I=0.1, rE=0.5, rI=0.25)


def wong_wang_text(**overrides):
    return Equations(WONG_WANG, {**WONG_WANG_PARAMS, **overrides}, inputs=("u1", "u2"), dtype=F64)


def field(model, state, x, t=0.0):
    return nd.state.flatten(model.vector_field(t, nd.state.unflatten(state, model), model.input_drive(x)))


def test_wong_wang_text_equals_builtin():
    text = wong_wang_text()
    builtin = nd.WongWang(**WONG_WANG_PARAMS, dtype=F64)
    state = torch.rand(64, 2, dtype=F64)
    x = 0.05 * torch.randn(64, 2, dtype=F64)
    torch.testing.assert_close(field(text, state, x), field(builtin, state, x), rtol=1e-12, atol=1e-12)
    assert text.timescale == builtin.timescale == 0.1


def test_wilson_cowan_text_equals_builtin():
    text = Equations(WILSON_COWAN, WILSON_COWAN_PARAMS, inputs=("xE", "xI"), dtype=F64)
    builtin = nd.WilsonCowan(**WILSON_COWAN_PARAMS, dtype=F64)
    state = torch.rand(64, 2, dtype=F64)
    x = torch.randn(64, 2, dtype=F64)
    torch.testing.assert_close(field(text, state, x), field(builtin, state, x), rtol=1e-12, atol=1e-12)
    assert text.timescale == 1.0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_vector_network_equals_rate_rnn(activation):
    n = 24
    W, b, w_in = torch.randn(n, n, dtype=F64) / 5, torch.randn(n, dtype=F64), torch.randn(n, 1, dtype=F64)
    tau = 0.05 + torch.rand(n, dtype=F64) / 10
    rnn = nd.RateRNN(n, n_in=1, W=W, b=b, W_in=w_in, tau=tau, activation=activation)
    text = Equations(f"dr/dt = (-r + {activation}(W @ r + w_in*u + b)) / tau",
                     dict(W=W, b=b, w_in=w_in[:, 0], tau=tau), inputs=("u",), state_sizes={"r": n})
    assert text.state_vars == {"r": n} and text.dtype == F64
    r, x = torch.randn(8, n, dtype=F64), torch.randn(8, 1, dtype=F64)
    torch.testing.assert_close(field(text, r, x), field(rnn, r, x), rtol=1e-13, atol=1e-13)
    assert text.timescale == pytest.approx(float(tau.min()))


@pytest.mark.parametrize(("shift", "value"), [("+ 0.5", 0.5), ("- 0.5", -0.5), ("+ 0.5 + c", 0.75), ("+ c", 0.25)])
def test_matrix_product_plus_a_constant(shift, value):  # W @ r + 0.5 was a TypeError (a float given as addmm's bias)
    n = 6
    W = torch.randn(n, n, dtype=F64, generator=torch.Generator().manual_seed(0)) / 3
    text = Equations(f"dr/dt = -r + tanh(W @ r {shift})", dict(W=W, c=0.25), state_sizes={"r": n})
    r = torch.randn(4, n, dtype=F64)
    expected = -r + torch.tanh(r @ W.T + value)
    torch.testing.assert_close(field(text, r, None), expected, rtol=1e-14, atol=1e-14)


def test_gradients_reach_trainable_parameters_like_rate_rnn():
    n = 6
    W, tau = torch.randn(n, n, dtype=F64) / 3, 0.1
    b = torch.randn(n, dtype=F64)
    rnn = nd.RateRNN(n, W=W, b=b, tau=tau)
    text = Equations("dr/dt = (-r + tanh(W @ r + b)) / tau", dict(W=W, b=b, tau=tau), state_sizes={"r": n},
                     trainable=("W", "b"))
    assert {name for name, _ in text.named_parameters()} == {"W", "b"}
    t = torch.linspace(0, 0.5, 26, dtype=F64)
    r0 = torch.randn(3, n, dtype=F64)
    loss_text = nd.simulate(text, t, None, r0, solver="rk4")["r"].pow(2).mean()
    loss_rnn = nd.simulate(rnn, t, None, r0, solver="rk4")["r"].pow(2).mean()
    gW, gb = torch.autograd.grad(loss_text, (text.W, text.b))
    rW, rb = torch.autograd.grad(loss_rnn, (rnn.recurrent.weight, rnn.b))
    assert gW.abs().sum() > 0
    torch.testing.assert_close(gW, rW, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gb, rb, rtol=1e-12, atol=1e-14)


def test_all_gradient_modes():
    model = Equations(WONG_WANG, {**WONG_WANG_PARAMS, "mu0": 20.0}, inputs=("u1", "u2"),
                      trainable=("J_N11", "gamma"), dtype=F64)
    t = torch.linspace(0, 0.3, 31, dtype=F64)
    s0 = torch.full((2, 2), 0.1, dtype=F64)
    x = torch.zeros(2, 2, dtype=F64)

    def loss_of(traj):
        return traj["S1"][:, -1].sum() - traj["S2"][:, -1].sum()

    grads = {}
    for mode, solver in (("backprop", "rk4"), ("checkpoint", "rk4"), ("adjoint", "dopri5"), ("dopri5", "dopri5")):
        gradient = "backprop" if mode == "dopri5" else mode
        traj = nd.simulate(model, t, x, s0, solver=solver, dt=1e-2 if solver == "rk4" else None, gradient=gradient,
                           rtol=1e-10, atol=1e-12)
        grads[mode] = torch.stack(torch.autograd.grad(loss_of(traj), (model.J_N11, model.gamma)))
    assert torch.isfinite(grads["backprop"]).all() and grads["backprop"].abs().min() > 0
    torch.testing.assert_close(grads["checkpoint"], grads["backprop"], rtol=1e-12, atol=0)
    torch.testing.assert_close(grads["adjoint"], grads["dopri5"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grads["dopri5"], grads["backprop"], rtol=1e-6, atol=1e-9)
    # independent check: central finite difference of the same loss
    h = 1e-6
    losses = []
    for sign in (1, -1):
        model.set_params(gamma=WONG_WANG_PARAMS["gamma"] + sign * h)
        with torch.no_grad():
            losses.append(float(loss_of(nd.simulate(model, t, x, s0, solver="rk4", dt=1e-2))))
    assert (losses[0] - losses[1]) / (2 * h) == pytest.approx(float(grads["backprop"][1]), rel=1e-6)


def test_wong_wang_removable_singularity_value_and_gradient():
    model = wong_wang_text(mu0=0.0)
    p = WONG_WANG_PARAMS
    S1 = torch.tensor([[0.2]], dtype=F64)
    S2 = torch.zeros(1, 1, dtype=F64)
    # choose the input so that a x1 = b exactly: x1 = b / a
    u1 = (p["b"] / p["a"] - p["I_0"] - p["J_N11"] * S1).clone().requires_grad_(True)
    x = torch.cat([u1, torch.zeros(1, 1, dtype=F64)], 1)
    x1 = p["J_N11"] * S1 + p["I_0"] + u1
    assert float(p["a"] * x1.detach() - p["b"]) == 0.0
    dS1 = model.vector_field(0.0, model.State(S1, S2), x).S1
    # H -> 1/d at a x = b; dH/dx -> a/2 there
    expected = -0.2 / p["tau_S"] + 0.8 * p["gamma"] / p["d"]
    assert float(dS1.detach()) == pytest.approx(expected, rel=1e-14)
    (grad,) = torch.autograd.grad(dS1.sum(), u1)
    assert torch.isfinite(grad).all()
    assert float(grad) == pytest.approx(0.8 * p["gamma"] * p["a"] / 2, rel=1e-12)
    # float64 gradcheck straddling the singular point
    state = torch.tensor([[0.2, 0.0]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: field(model, s, x.detach()), (state,))


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 2e-15), (torch.float32, 1e-6)])
def test_x_over_expm1_against_mpmath(dtype, rel):
    mpmath.mp.dps = 40
    values = [0.0, 1e-300, -1e-300, 1e-12, -3e-9, 0.05, -0.0999, 0.1, 0.1001, -0.7, 0.99, 1.0, 1.01, 3.0, -20.0,
              50.0, 700.0, 800.0, -800.0]
    u = torch.tensor(values, dtype=dtype, requires_grad=True)
    y = x_over_expm1(u)
    (g,) = torch.autograd.grad(y.sum(), u)
    y = y.detach()
    for k, v in enumerate(u.detach().tolist()):
        m = mpmath.mpf(v)
        ref = mpmath.mpf(1) if v == 0 else m / mpmath.expm1(m)
        dref = mpmath.mpf(-0.5) if v == 0 else mpmath.diff(lambda z: z / mpmath.expm1(z), m)
        assert float(y[k]) == pytest.approx(float(ref), rel=rel, abs=1e-300), v
        assert float(g[k]) == pytest.approx(float(dref), rel=50 * rel, abs=1e-300), v


@pytest.mark.parametrize(
    "rhs,value,slope",
    [  # the limit at the singular point x0 = 0.4 and the derivative there: c E/(1 - e^-E) -> c, slope c k/2
        ("(270*x - 108)/(1 - exp(-0.154*(270*x - 108)))", 1 / 0.154, 135.0),  # numbers: sympy splits exp(c + kx)
        ("(a*x - b)/(1 - exp(d*(b - a*x)))", 1 / 0.154, 135.0),
        ("(x - 0.4)/(exp((x - 0.4)/0.1) - 1)", 0.1, -0.5),
        ("2*(x - 0.4)*y/(1 - exp(-3*(x - 0.4)))", 2 / 3, 1.0),
        ("-(0.4 - x)/(1 - exp(-(x - 0.4)))", 1.0, 0.5),
        ("(x - 0.4)**2/(1 - exp(-(x - 0.4)))", 0.0, 1.0),  # E^2 / (1 - e^-E) = E B(-E)
        ("(x - 0.4)*(x + 0.6)/(exp(x - 0.4) - 1)", 1.0, 0.5),  # (E + 1) B(E): 1 at E = 0, slope 1 - 1/2
    ],
)
def test_removable_singularity_however_written(rhs, value, slope):
    model = Equations(f"dx/dt = {rhs}\ndy/dt = 0", dict(a=270.0, b=108.0, d=0.154), dtype=F64)
    x = torch.tensor([[0.4], [0.4 + 1e-7]], dtype=F64, requires_grad=True)
    dx = model.vector_field(0.0, model.State(x, torch.ones(2, 1, dtype=F64)), torch.zeros(2, 0, dtype=F64)).x
    (grad,) = torch.autograd.grad(dx.sum(), x)
    assert float(dx[0].detach()) == pytest.approx(value, rel=1e-12)
    assert float(grad[0]) == pytest.approx(slope, rel=1e-9)
    assert float(dx[1].detach()) == pytest.approx(value + 1e-7 * slope, rel=1e-11)


def test_hodgkin_huxley_rate_singularity():
    model = Equations("dn/dt = 0.01*(V + 55)/(1 - exp(-(V + 55)/10))*(1 - n) - 0.125*exp(-(V + 65)/80)*n",
                      inputs=("V",), dtype=F64)
    V = torch.tensor([[-55.0], [-55.0 + 1e-9], [-30.0]], dtype=F64, requires_grad=True)
    n = torch.full((3, 1), 0.3, dtype=F64)
    dn = model.vector_field(0.0, model.State(n), V).n
    (grad,) = torch.autograd.grad(dn.sum(), V)
    dn, V = dn.detach(), V.detach()
    alpha = [0.1, 0.01 * 1e-9 / -math.expm1(-1e-10), 0.25 / -math.expm1(-2.5)]
    for k in range(3):
        assert float(dn[k]) == pytest.approx(alpha[k] * 0.7 - 0.125 * math.exp(-(float(V[k]) + 65) / 80) * 0.3,
                                             rel=1e-13)
    slope = 0.7 * 0.01 / 2 + 0.3 * 0.125 * math.exp(-10 / 80) / 80  # alpha'(-55) = 0.01/2
    assert torch.isfinite(grad).all() and float(grad[0]) == pytest.approx(slope, rel=1e-10)


def test_singularity_in_a_vector_network():
    n = 3
    J = torch.rand(n, n, dtype=F64) / 10
    model = Equations("x = J @ S + I0\ndS/dt = -S/tau + (1 - S)*gamma*(a*x - b)/(1 - exp(-d*(a*x - b)))",
                      dict(J=J, I0=torch.zeros(n, dtype=F64), tau=0.1, gamma=0.641, a=270.0, b=108.0, d=0.154),
                      state_sizes={"S": n})
    S = torch.rand(2, n, dtype=F64, requires_grad=True)
    model.set_params(I0=(108.0 / 270.0 - S[0].detach() @ J.T).numpy())  # a x = b exactly in the first sample
    dS = model.vector_field(0.0, model.State(S), torch.zeros(2, 0, dtype=F64)).S
    torch.testing.assert_close(dS[0], (-S[0] / 0.1 + (1 - S[0]) * 0.641 / 0.154).detach(), rtol=1e-12, atol=1e-12)
    assert torch.isfinite(torch.autograd.grad(dS.sum(), S)[0]).all()


def test_continuation_sweeps_an_equations_parameter_to_the_fold():
    from neurodyn.analysis import continuation

    model = Equations("dx/dt = r - x^2\ndy/dt = -y", dict(r=1.0), dtype=F64)
    branch = continuation(model, "r", span=(1.0, -0.5), init=[1.0, 0.0])
    (fold,) = branch.bifurcations
    assert fold.kind == "fold" and abs(fold.param) < 1e-8  # saddle-node of r - x^2 at r = 0
    assert float(model.r) == 1.0
    on_branch = branch.states[:, 0] ** 2 - branch.params
    assert on_branch.abs().max() < 1e-8


def test_symbolic_jacobian_matches_autograd_and_finite_differences():
    model = wong_wang_text()
    J = model.symbolic_jacobian()
    assert J.shape == (2, 2)
    S1, S2 = model.state_symbols
    u1, u2 = (model._parsed.symbols[n] for n in ("u1", "u2"))
    state = torch.tensor([[0.3, 0.1], [0.05, 0.6]], dtype=F64)
    x = torch.tensor([[0.01, -0.02], [0.0, 0.03]], dtype=F64)
    auto = jacobian(model, state, x)
    for k in range(2):
        subs = {S1: float(state[k, 0]), S2: float(state[k, 1]), u1: float(x[k, 0]), u2: float(x[k, 1])}
        numeric = torch.tensor([[float(J[i, j].evalf(30, subs=subs)) for j in range(2)] for i in range(2)],
                               dtype=F64)
        torch.testing.assert_close(numeric, auto[k], rtol=1e-8, atol=1e-8)
        h = 1e-6
        fd = torch.stack([(field(model, state[k:k + 1] + h * e, x[k:k + 1])
                           - field(model, state[k:k + 1] - h * e, x[k:k + 1]))[0] / (2 * h)
                          for e in torch.eye(2, dtype=F64)], 1)
        torch.testing.assert_close(numeric, fd, rtol=1e-6, atol=1e-6)


def test_symbolic_forms_lambdify_to_numpy_math_and_mpmath():
    """sigmoid, relu, softplus and the Bernoulli function print in elementary form for sympy.lambdify."""
    model = Equations("dx/dt = -x + sigmoid(y) + relu(x - y)\ndy/dt = -y + softplus(x) + x*y/(exp(x*y) - 1)",
                      dtype=F64)
    x, y = model.state_symbols
    state = torch.tensor([[0.3, -0.2], [0.5, 0.7]], dtype=F64)  # (the symbolic form keeps x y / (e^{x y} - 1))
    auto = jacobian(model, state)
    for module in ("numpy", "math", "mpmath"):
        J = sympy.lambdify((x, y), model.symbolic_jacobian().tolist(), module)
        for k in range(2):
            numeric = torch.tensor(np.array(J(*state[k].tolist()), dtype=float), dtype=F64)
            torch.testing.assert_close(numeric, auto[k], rtol=1e-10, atol=1e-12, msg=module)


def test_symbolic_jacobian_of_vector_network():
    n = 3
    W = torch.randn(n, n, dtype=F64)
    I = torch.randn(n, dtype=F64)  # noqa: E741
    model = Equations("h = W @ r + I\ndr/dt = (-r + relu(h) + softplus(c*s))/tau\nds/dt = -s + sigmoid(v @ r)",
                      dict(W=W, I=I, tau=0.2, c=0.5, v=torch.ones(n, dtype=F64)), state_sizes={"r": n})
    J = model.symbolic_jacobian()
    assert J.shape == (n + 1, n + 1)
    symbols = model.state_symbols
    assert [str(s) for s in symbols] == ["r[0]", "r[1]", "r[2]", "s"]
    y = torch.randn(1, n + 1, dtype=F64)
    subs = dict(zip(symbols, y[0].tolist(), strict=True))
    numeric = torch.tensor([[float(J[i, j].evalf(30, subs=subs)) for j in range(n + 1)] for i in range(n + 1)],
                           dtype=F64)
    torch.testing.assert_close(numeric, jacobian(model, y)[0], rtol=1e-10, atol=1e-10)
    kept = model.symbolic_jacobian(substitute=False)
    assert {"tau", "c"} <= {str(s) for s in kept.free_symbols}
    values = {s: v for s, v in zip(symbols, y[0].tolist(), strict=True)}
    values.update({model._parsed.symbols["tau"]: 0.2, model._parsed.symbols["c"]: 0.5})
    import sympy as sp

    W_, I_, v_ = sp.IndexedBase("W", real=True), sp.IndexedBase("I", real=True), sp.IndexedBase("v", real=True)
    values.update({W_[i, j]: float(W[i, j]) for i in range(n) for j in range(n)})
    values.update({I_[i]: float(I[i]) for i in range(n)})
    values.update({v_[i]: 1.0 for i in range(n)})
    again = torch.tensor([[float(kept[i, j].evalf(30, subs=values)) for j in range(n + 1)] for i in range(n + 1)],
                         dtype=F64)
    torch.testing.assert_close(again, numeric, rtol=1e-12, atol=1e-12)


def test_symbolic_rhs_and_latex():
    model = wong_wang_text()
    rhs = model.symbolic_rhs()
    assert list(rhs) == ["S1", "S2"]
    assert {"S1", "S2", "a", "b", "d", "u1"} <= {str(s) for s in rhs["S1"].free_symbols}
    tex = model.latex()
    assert r"\frac{d S_{1}}{d t}" in tex and r"H_{1} &=" in tex and r"\tau_{S}" in tex


def test_parameters_by_name_set_params_and_functional_call():
    model = wong_wang_text()
    assert float(model.mu0) == 30.0 and model.parameter_names[0] == "a"
    state, x = torch.rand(4, 2, dtype=F64), torch.zeros(4, 2, dtype=F64)
    before = field(model, state, x)
    model.set_params(mu0=40.0)
    after = field(model, state, x)
    assert float(model.mu0) == 40.0 and not torch.allclose(before, after)
    torch.testing.assert_close(after, field(nd.WongWang(**{**WONG_WANG_PARAMS, "mu0": 40.0}, dtype=F64), state, x),
                               rtol=1e-12, atol=1e-12)
    model.mu0 = 30.0  # attribute assignment goes through set_params
    torch.testing.assert_close(field(model, state, x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a parameter"):
        model.set_params(nope=1.0)
    with pytest.raises(ValueError, match="shape"):
        model.set_params(mu0=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"mu0 has shape \(\); got a tensor of shape \(3,\)"):
        model.mu0 = torch.tensor([0.1, 0.2, 0.3])
    model.mu0 = torch.tensor(30.0)  # a float32 tensor takes the model's precision
    assert model.mu0.dtype == F64
    torch.testing.assert_close(field(model, state, x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="convert it first"):
        model.mu0 = torch.nn.Parameter(torch.tensor(30.0))


def test_pickle_round_trip(tmp_path):
    import pickle

    model = wong_wang_text()
    model.set_params(mu0=12.0)
    state, x = torch.rand(4, 2, dtype=F64), torch.zeros(4, 2, dtype=F64)
    again = pickle.loads(pickle.dumps(model))
    assert float(again.mu0) == 12.0
    torch.testing.assert_close(field(again, state, x), field(model, state, x), rtol=0, atol=0)


def test_reserved_and_keyword_names_are_rejected():
    for name in ("lambda", "Float", "t", "exp"):
        with pytest.raises(ValueError, match="not a valid parameter name"):
            Equations("dx/dt = -x", {name: 1.0})
    with pytest.raises(ValueError, match="clashes with an attribute"):
        Equations("dx/dt = -x", {"state_vars": 1.0})


def test_timescale_default_and_override():
    two = Equations("dx/dt = -x/tau_m + y\ndy/dt = -y/tau_s", dict(tau_m=0.02, tau_s=0.005))
    assert two.timescale == pytest.approx(0.005)
    assert Equations("dx/dt = -k*x", dict(k=3.0)).timescale == 1.0
    assert Equations("dx/dt = -x/tau", dict(tau=0.5), timescale=0.01).timescale == 0.01


def test_functions_and_time_against_torch():
    text = """
    dx/dt = exp(-x) + log(1 + x^2) + sqrt(abs(y)) + sin(t) + cos(2*pi*x)
    z = where((x == 0) | ~(y != 1), 1, 0) + where((x >= 0) & (y <= 0), 2, 0) + where(x < 0, 4, 0)
    dy/dt = where(x > y, min(x, y, 0.5), max(x, 2*y)) + relu(x - y) + softplus(y) + sigmoid(x*y) + tanh(y) + z
    """
    model = Equations(text, dtype=F64)
    x, y = torch.randn(16, 1, dtype=F64), torch.randn(16, 1, dtype=F64)
    x[:3], y[2:5] = 0.0, 1.0
    t = 0.7
    out = model.vector_field(torch.tensor(t, dtype=F64), model.State(x, y), torch.zeros(16, 0, dtype=F64))
    ref_x = torch.exp(-x) + torch.log(1 + x**2) + torch.sqrt(y.abs()) + math.sin(t) + torch.cos(2 * math.pi * x)
    ref_y = (torch.where(x > y, torch.clamp(torch.minimum(x, y), max=0.5), torch.maximum(x, 2 * y))
             + torch.relu(x - y) + torch.nn.functional.softplus(y) + torch.sigmoid(x * y) + torch.tanh(y)
             + ((x == 0) | (y == 1)).double() + 2 * ((x >= 0) & (y <= 0)).double() + 4 * (x < 0).double())
    torch.testing.assert_close(out.x, ref_x, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(out.y, ref_y, rtol=1e-14, atol=1e-14)


def test_where_with_constant_branches_keeps_the_model_precision():
    model = Equations("dx/dt = where(x > 0.2, 0.1, 0.3)", dtype=F64)
    out = model.vector_field(0.0, model.State(torch.tensor([[0.0], [1.0]], dtype=F64)), torch.zeros(2, 0, dtype=F64))
    assert out.x.dtype == F64 and out.x[:, 0].tolist() == [0.3, 0.1]  # not float32's 0.30000001192...


def test_simulation_against_analytic_solutions():
    model = Equations("dx/dt = -x/tau + A*cos(w*t)", dict(tau=0.5, A=2.0, w=3.0), dtype=F64)
    t = torch.linspace(0, 2, 41, dtype=F64)
    traj = nd.simulate(model, t, None, torch.zeros(1, 1, dtype=F64), solver="dopri5", rtol=1e-11, atol=1e-12)
    k, w, A = 2.0, 3.0, 2.0  # x(t) = A (k cos wt + w sin wt - k e^{-kt}) / (k^2 + w^2)
    exact = A * (k * torch.cos(w * t) + w * torch.sin(w * t) - k * torch.exp(-k * t)) / (k**2 + w**2)
    torch.testing.assert_close(traj["x"][0, :, 0], exact, rtol=1e-8, atol=1e-9)


def test_constant_and_parameter_only_right_hand_sides_broadcast():
    model = Equations("dx/dt = 1.5\ndr/dt = k", dict(k=torch.tensor([1.0, 2.0, 3.0])), state_sizes={"r": 3})
    out = model.vector_field(0.0, model.initial_state(4), torch.zeros(4, 0))
    assert out.x.shape == (4, 1) and float(out.x[0, 0]) == 1.5
    assert out.r.shape == (4, 3) and out.r[2].tolist() == [1.0, 2.0, 3.0]


def test_trainable_time_constants_simulate_quietly_and_untrained_grad_tensors_warn():
    model = Equations("dx/dt = -x/tau + I", dict(tau=0.5, I=1.0), trainable=["tau"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "converting a tensor with requires_grad=True" from timescale
        nd.simulate(model, torch.linspace(0, 1, 5), state0=torch.zeros(1, 1))
    with pytest.warns(UserWarning, match=r"pass trainable=\['tau'\]"):  # was silently detached
        Equations("dx/dt = -x/tau", dict(tau=torch.tensor(0.5, requires_grad=True)))


def test_hyperbolic_and_tan_functions_morris_lecar_against_solve_ivp():
    """QA: Morris-Lecar's rate phi cosh((V - V3) / (2 V4)) could not be written (no cosh). Rinzel & Ermentrout
    (1998) Hopf parameters at I = 90: a spiking trajectory, compared with scipy."""
    from scipy.integrate import solve_ivp

    text = """minf = 0.5*(1 + tanh((V - V1)/V2))
winf = 0.5*(1 + tanh((V - V3)/V4))
lam = phi*cosh((V - V3)/(2*V4))
dV/dt = (I - gL*(V - VL) - gCa*minf*(V - VCa) - gK*w*(V - VK))/C
dw/dt = lam*(winf - w)"""
    p = dict(I=90.0, gL=2.0, VL=-60.0, gCa=4.4, VCa=120.0, gK=8.0, VK=-84.0, C=20.0, V1=-1.2, V2=18.0, V3=2.0,
             V4=30.0, phi=0.04)
    model = nd.Equations(text, p, dtype=torch.float64)

    def field(_, y):
        v, w = y
        minf, winf = (0.5 * (1 + np.tanh((v - a) / b)) for a, b in ((p["V1"], p["V2"]), (p["V3"], p["V4"])))
        lam = p["phi"] * np.cosh((v - p["V3"]) / (2 * p["V4"]))
        return [(p["I"] - p["gL"] * (v - p["VL"]) - p["gCa"] * minf * (v - p["VCa"]) - p["gK"] * w * (v - p["VK"]))
                / p["C"], lam * (winf - w)]

    t = torch.linspace(0, 200, 201, dtype=torch.float64)
    ours = nd.simulate(model, t, state0=torch.tensor([[-30.0, 0.1]], dtype=torch.float64), solver="dopri5",
                       rtol=1e-10, atol=1e-10).flat()[0].numpy()
    reference = solve_ivp(field, (0, 200), [-30, 0.1], t_eval=t.numpy(), rtol=1e-11, atol=1e-11).y.T
    assert np.abs(ours - reference).max() < 1e-5
    assert ours[:, 0].max() > 0 > ours[100:, 0].min()  # it spikes
    tangent = nd.Equations("dx/dt = tan(x) - sinh(x)", {}, dtype=torch.float64)
    torch.testing.assert_close(nd.jacobian(tangent, torch.tensor([[0.3]], dtype=torch.float64))[0, 0, 0],
                               torch.tensor(1 / math.cos(0.3) ** 2 - math.cosh(0.3), dtype=torch.float64))
