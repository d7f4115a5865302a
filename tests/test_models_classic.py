"""Classic circuits: fixed points against independent scipy references, H(x) at its removable singularity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import fsolve

import neurodyn as nd
from neurodyn.state import flatten, unflatten


def flat_field(model, x=None):
    """F(y) on one flat state vector (D,), for torch.func and Newton's method."""
    drive = model.input_drive(torch.zeros(1, model.n_in, dtype=model.dtype) if x is None else x)
    return lambda y: flatten(model.vector_field(0.0, unflatten(y[None], model), drive))[0]


def newton(model, y0, x=None, iters=50):
    f = flat_field(model, x)
    y = torch.as_tensor(y0, dtype=torch.float64)
    for _ in range(iters):
        y = y - torch.linalg.solve(torch.func.jacrev(f)(y), f(y))
    return y, torch.linalg.eigvals(torch.func.jacrev(f)(y))


def distinct_roots(func, starts, decimals=4):
    roots = set()
    for y0 in starts:
        y, _, ier, _ = fsolve(func, y0, full_output=True, xtol=1e-12)
        if ier == 1 and np.max(np.abs(func(y))) < 1e-9:
            roots.add(tuple(np.round(y, decimals) + 0.0))
    return sorted(roots)


def wong_wang_numpy(mu0, c=0.0):
    """Wong & Wang 2006 reduced model written independently of neurodyn (published parameters)."""
    a, b, d, gamma, tau = 270.0, 108.0, 0.154, 0.641, 0.1

    def H(x):
        z = a * x - b
        return z / (1 - np.exp(-d * z))

    def F(S):
        x1 = 0.2609 * S[0] - 0.0497 * S[1] + 0.3255 + 5.2e-4 * mu0 * (1 + c / 100)
        x2 = 0.2609 * S[1] - 0.0497 * S[0] + 0.3255 + 5.2e-4 * mu0 * (1 - c / 100)
        return np.array([-S[0] / tau + (1 - S[0]) * gamma * H(x1), -S[1] / tau + (1 - S[1]) * gamma * H(x2)])

    return F


GRID = [(s1, s2) for s1 in np.linspace(0.02, 0.98, 13) for s2 in np.linspace(0.02, 0.98, 13)]


def test_wong_wang_decision_states_at_30hz():
    ref = distinct_roots(wong_wang_numpy(30.0), GRID)
    assert ref == [(0.0518, 0.6587), (0.4245, 0.4245), (0.6587, 0.0518)]
    model = nd.WongWang(mu0=30.0, dtype=torch.float64)
    kinds = []
    for point in ref:
        y, eig = newton(model, point)
        np.testing.assert_allclose(y.numpy(), point, atol=1e-4)
        kinds.append(bool((eig.real < 0).all()))
    assert kinds == [True, False, True]  # two stable decision states and a saddle between them


def test_wong_wang_five_fixed_points_without_stimulus():
    ref = distinct_roots(wong_wang_numpy(0.0), GRID)
    assert len(ref) == 5
    model = nd.WongWang(dtype=torch.float64)
    for point in ref:
        y, _ = newton(model, point)
        np.testing.assert_allclose(y.numpy(), point, atol=1e-4)


def test_wong_wang_coherence_and_input_currents():
    c, mu0 = 25.6, 40.0
    ref = wong_wang_numpy(mu0, c)
    model = nd.WongWang(mu0=mu0, coherence=c, dtype=torch.float64)
    S = np.array([0.3, 0.2])
    got = flat_field(model)(torch.tensor(S)).numpy()
    np.testing.assert_allclose(got, ref(S), rtol=1e-10)
    # the same stimulus given as an input current instead of a parameter
    as_input = nd.WongWang(dtype=torch.float64)
    x = as_input.stimulus_current(mu0, c)[None]
    np.testing.assert_allclose(flat_field(as_input, x)(torch.tensor(S)).numpy(), ref(S), rtol=1e-10)


def test_wong_wang_H_is_smooth_at_threshold():
    model = nd.WongWang(dtype=torch.float64)
    x0 = float(model.b / model.a)
    x = torch.tensor([x0, x0 + 1e-9, x0 - 1e-9, x0 + 0.05, x0 - 3.0, x0 + 3.0], dtype=torch.float64, requires_grad=True)
    h = model.H(x)
    (g,) = torch.autograd.grad(h.sum(), x)
    assert torch.isfinite(h).all() and torch.isfinite(g).all()
    assert h[0].item() == pytest.approx(1 / 0.154, rel=1e-12)
    assert g[0].item() == pytest.approx(270 / 2, rel=1e-12)  # dH/dx = a/2 at a x = b
    z = 270 * 0.05
    assert h[3].item() == pytest.approx(z / (1 - np.exp(-0.154 * z)), rel=1e-12)
    near = torch.tensor([x0 - 1e-4, x0, x0 + 2e-3, 0.1], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(model.H, (near,))
    h32 = nd.WongWang().H(torch.tensor([x0], dtype=torch.float32))
    assert torch.isfinite(h32).all()


WC = dict(tauE=1, aE=1.2, thetaE=2.8, tauI=2, aI=1, thetaI=4, wEE=9, wEI=4, wIE=13, wII=11)


def wilson_cowan_numpy(shift=True):
    def F(z, a, theta):
        return 1 / (1 + np.exp(-a * (z - theta))) - (1 / (1 + np.exp(a * theta)) if shift else 0.0)

    def field(y):
        E, I = y  # noqa: E741
        return np.array([(-E + F(9 * E - 4 * I, 1.2, 2.8)) / 1, (-I + F(13 * E - 11 * I, 1.0, 4.0)) / 2])

    return field


@pytest.mark.parametrize("sigmoid", ["shifted", "logistic"])
def test_wilson_cowan_fixed_points_match_fsolve(sigmoid):
    starts = [(e, i) for e in np.linspace(-0.1, 1.0, 12) for i in np.linspace(-0.1, 1.0, 12)]
    ref = distinct_roots(wilson_cowan_numpy(sigmoid == "shifted"), starts)
    assert len(ref) == 3
    model = nd.WilsonCowan(sigmoid=sigmoid, **WC, dtype=torch.float64)
    for point in ref:
        y, _ = newton(model, point)
        np.testing.assert_allclose(y.numpy(), point, atol=1e-4)


def test_wilson_cowan_published_fixed_points_and_stability():
    model = nd.WilsonCowan(**WC, dtype=torch.float64)
    expected = [((0.0, 0.0), "focus"), ((0.3369, 0.1684), "saddle"), ((0.9384, 0.6725), "node")]
    for point, kind in expected:
        y, eig = newton(model, point)
        np.testing.assert_allclose(y.numpy(), point, atol=1e-4)
        if kind == "saddle":
            assert (eig.real > 0).sum() == 1
        else:
            assert (eig.real < 0).all()
            assert (eig.imag.abs() > 1e-9).any() == (kind == "focus")


def test_wilson_cowan_parameters_are_named_and_sweepable():
    model = nd.WilsonCowan(trainable=["wEE"]).double()
    assert isinstance(model.wEE, torch.nn.Parameter) and not isinstance(model.wEI, torch.nn.Parameter)
    y = unflatten(torch.tensor([[0.2, 0.1]], dtype=torch.float64), model)
    zero, kick = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    base = flatten(model.vector_field(0.0, y, zero))
    with_input = flatten(model.vector_field(0.0, y, kick))
    model.I_ext_E = torch.tensor(1.0, dtype=torch.float64)
    torch.testing.assert_close(flatten(model.vector_field(0.0, y, zero)), with_input)
    assert not torch.allclose(with_input, base)


def test_linear_integrator_eigenvalues_and_integration():
    u = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    model = nd.LinearIntegrator(3, 1, direction=u, tau=0.1, leak=0.05)
    f = flat_field(model)
    eig = torch.linalg.eigvalsh(torch.func.jacrev(f)(torch.zeros(3, dtype=torch.float64)))
    torch.testing.assert_close(eig, torch.tensor([-10.0, -10.0, -0.5], dtype=torch.float64))
    # perfect integrator: y(t) = (1/tau) * integral of x along u
    perfect = nd.LinearIntegrator(3, 1, direction=u, tau=0.1)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    traj = nd.simulate(perfect, t, torch.ones(1, 1, dtype=torch.float64), solver="dopri5")
    torch.testing.assert_close(traj.outputs[0, :, 0], t / 0.1, rtol=1e-6, atol=1e-6)


def test_fitzhugh_nagumo_rest_state_and_limit_cycle():
    rest = nd.FitzHughNagumo(dtype=torch.float64)
    # cubic rest point: v - v^3/3 - (v + a)/b = 0
    v = fsolve(lambda v: v - v**3 / 3 - (v + 0.7) / 0.8, -1.2)[0]
    y, eig = newton(rest, (v, (v + 0.7) / 0.8))
    np.testing.assert_allclose(y.numpy(), (v, (v + 0.7) / 0.8), atol=1e-10)
    assert (eig.real < 0).all()
    spiking = nd.FitzHughNagumo(I_ext=0.5, dtype=torch.float64)
    t = torch.linspace(0, 200, 401, dtype=torch.float64)
    vs = nd.simulate(spiking, t, solver="dopri5")["v"][0, 200:, 0]
    assert vs.max() > 1.5 and vs.min() < -1.5  # relaxation oscillation


def test_classic_bad_input():
    with pytest.raises(ValueError, match="tau_S"):
        nd.WongWang(tau_S=0.0)
    with pytest.raises(ValueError, match="tauE"):
        nd.WilsonCowan(tauE=-1.0)
    with pytest.raises(ValueError, match="sigmoid"):
        nd.WilsonCowan(sigmoid="tanh")
    with pytest.raises(ValueError, match="trainable"):
        nd.WilsonCowan(trainable=["nope"])
    with pytest.raises(ValueError, match="direction"):
        nd.LinearIntegrator(2, direction=torch.zeros(2))
    with pytest.raises(ValueError, match="W_in"):
        nd.LinearIntegrator(2, 1, W_in=torch.zeros(3, 1))
    with pytest.raises(TypeError, match="dtype"):
        nd.WongWang(dtype=torch.int64)
    with pytest.raises(TypeError, match="mu0"):
        nd.WongWang(mu0="30")
    for coherence in (150.0, -100.5):
        with pytest.raises(ValueError, match=r"coherence must be a finite number in \[-100, 100\]"):
            nd.WongWang(coherence=coherence)
    with pytest.raises(ValueError, match="mu0 must be a finite number >= 0"):
        nd.WongWang(mu0=-10.0)
    assert nd.WongWang(mu0=np.float32(30), coherence=torch.tensor(-100.0)).coherence.item() == -100.0


def test_wilson_cowan_refractory_factor_is_one_minus_r_times_rate():
    # the docstring's (1 - rE E) F(zE), not Wilson & Cowan's (k_e - r_e E) F(zE)
    p = dict(WC, I_ext_E=0.5, I_ext_I=0.2, rE=1.0, rI=0.7)
    model = nd.WilsonCowan(**p, dtype=torch.float64)
    E, I = 0.3, 0.6  # noqa: E741

    def sig(z, a, theta):
        return 1 / (1 + np.exp(-a * (z - theta))) - 1 / (1 + np.exp(a * theta))

    ref = [(-E + (1 - 1.0 * E) * sig(9 * E - 4 * I + 0.5, 1.2, 2.8)) / 1,
           (-I + (1 - 0.7 * I) * sig(13 * E - 11 * I + 0.2, 1.0, 4.0)) / 2]
    state = model.State(torch.tensor([[E]], dtype=torch.float64), torch.tensor([[I]], dtype=torch.float64))
    got = torch.cat(list(model.vector_field(0.0, state, torch.zeros(1, 2, dtype=torch.float64))), -1)
    np.testing.assert_allclose(got[0].numpy(), ref, rtol=1e-13)


def _one_euler_step(model, y, x, dt):
    t = torch.tensor([0.0, dt], dtype=torch.float64)
    y0 = torch.tensor(y[None], dtype=torch.float64)
    traj = nd.simulate(model, t, torch.tensor([x], dtype=torch.float64), y0, dt=dt)
    return traj.flat()[0, 1].numpy()


def test_classic_euler_steps_equal_hand_written_updates():
    dt, y = 1e-3, np.array([0.3, 0.2])
    ww = nd.WongWang(mu0=20.0, coherence=-12.8, dtype=torch.float64)
    np.testing.assert_allclose(_one_euler_step(ww, y, [0.0, 0.0], dt), y + dt * wong_wang_numpy(20.0, -12.8)(y),
                               rtol=1e-12)
    wc = nd.WilsonCowan(**WC, dtype=torch.float64)
    np.testing.assert_allclose(_one_euler_step(wc, y, [0.0, 0.0], dt), y + dt * wilson_cowan_numpy()(y), rtol=1e-12)
    fhn = nd.FitzHughNagumo(I_ext=0.3, dtype=torch.float64)
    v, w = y
    step = y + dt * np.array([v - v**3 / 3 - w + 0.3 + 0.1, (v + 0.7 - 0.8 * w) / 12.5])
    np.testing.assert_allclose(_one_euler_step(fhn, y, [0.1], dt), step, rtol=1e-12)
    li = nd.LinearIntegrator(2, 1, direction=torch.tensor([1.0, 0.0], dtype=torch.float64), tau=0.1, leak=0.2)
    step = y + dt / 0.1 * (-y + np.array([0.8 * y[0], 0.0]) + np.array([0.5, 0.0]))
    np.testing.assert_allclose(_one_euler_step(li, y, [0.5], dt), step, rtol=1e-12)
