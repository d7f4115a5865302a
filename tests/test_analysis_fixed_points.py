"""Fixed points, stability and line attractors, checked against scipy and analytic results."""

import numpy as np
import pytest
import torch
from scipy.optimize import fsolve

import neurodyn as nd
from neurodyn.analysis.stability import eig_with_left

D64 = torch.float64


def _scipy_fixed_points(f, starts, tol=1e-6):
    """Unique roots of f found by scipy fsolve from each start, with finite-difference Jacobian eigenvalues."""
    roots = []
    for s in starts:
        root, info, ok, _ = fsolve(f, s, full_output=True, xtol=1e-13)
        if ok == 1 and np.abs(f(root)).max() < 1e-10 and not any(np.abs(root - r).max() < tol for r in roots):
            roots.append(root)
    roots = sorted(roots, key=lambda r: tuple(r))
    eig = []
    for r in roots:
        h = 1e-7
        J = np.stack([(f(r + h * e) - f(r - h * e)) / (2 * h) for e in np.eye(len(r))], 1)
        eig.append(np.linalg.eigvals(J))
    return np.array(roots), eig


def _wong_wang_numpy(mu0):
    a, b, d, gamma, tau = 270.0, 108.0, 0.154, 0.641, 0.1
    jn_self, jn_cross, i0, jext = 0.2609, 0.0497, 0.3255, 5.2e-4

    def H(x):  # noqa: N802
        z = a * x - b
        with np.errstate(over="ignore"):
            return z / (1 - np.exp(-d * z))

    def f(S):
        x1 = jn_self * S[0] - jn_cross * S[1] + i0 + jext * mu0
        x2 = jn_self * S[1] - jn_cross * S[0] + i0 + jext * mu0
        return np.array([-S[0] / tau + (1 - S[0]) * gamma * H(x1), -S[1] / tau + (1 - S[1]) * gamma * H(x2)])

    return f


def _sorted(fps):
    order = sorted(range(len(fps)), key=lambda i: tuple(fps.states[i].tolist()))
    return fps.states[order].numpy(), [fps.stability[i] for i in order], fps.eigvals[order].numpy()


def _grid(n, lo=0.0, hi=1.0):
    g = np.linspace(lo, hi, n)
    return np.array([[a, b] for a in g for b in g])


@pytest.mark.parametrize("mu0, count", [(30.0, 3), (0.0, 5)])
def test_wong_wang_fixed_points_match_scipy(mu0, count):
    model = nd.WongWang(mu0=mu0, dtype=D64)
    starts = _grid(12, 0.01, 0.95)
    fps = nd.find_fixed_points(model, torch.tensor(starts))
    ref, ref_eig = _scipy_fixed_points(_wong_wang_numpy(mu0), starts)
    states, classes, eig = _sorted(fps)
    assert len(fps) == len(ref) == count
    np.testing.assert_allclose(states, ref, atol=1e-8)
    for ours, theirs in zip(eig, ref_eig, strict=True):
        np.testing.assert_allclose(np.sort_complex(ours), np.sort_complex(theirs), rtol=1e-5, atol=1e-5)
    assert (fps.q < 1e-20).all()
    if mu0 == 30.0:
        assert sorted(classes) == ["saddle", "stable node", "stable node"]
        assert fps.is_stable.sum() == 2
        saddle = states[classes.index("saddle")]
        assert abs(saddle[0] - saddle[1]) < 1e-10  # the symmetric saddle between the two choices


def test_wilson_cowan_fixed_points_and_classes():
    model = nd.WilsonCowan(dtype=D64)
    starts = _grid(10)
    fps = nd.find_fixed_points(model, torch.tensor(starts))

    def F(z, a, theta):  # noqa: N802
        return 1 / (1 + np.exp(-a * (z - theta))) - 1 / (1 + np.exp(a * theta))

    def f(v):
        E, I = v  # noqa: E741
        return np.array([-E + F(9 * E - 4 * I, 1.2, 2.8), (-I + F(13 * E - 11 * I, 1.0, 4.0)) / 2])

    ref, _ = _scipy_fixed_points(f, starts)
    states, classes, _ = _sorted(fps)
    np.testing.assert_allclose(states, ref, atol=1e-8)
    np.testing.assert_allclose(states, [[0, 0], [0.3369, 0.1684], [0.9384, 0.6725]], atol=1e-4)
    assert classes == ["stable focus", "saddle", "stable node"]
    assert fps.named.E.shape == (3, 1)


def test_newton_and_adam_find_the_same_fixed_points():
    gen = torch.Generator().manual_seed(4)
    n = 8
    model = nd.RateRNN(n, W=1.6 * torch.randn(n, n, generator=gen, dtype=D64) / n**0.5, tau=1.0)
    init = 0.8 * torch.randn(10, n, generator=gen, dtype=D64)
    init[0] *= 0.01  # one start near the origin, which is a fixed point (b = 0)
    newton = nd.find_fixed_points(model, init, method="newton")
    adam = nd.find_fixed_points(model, init, method="adam", max_iter=4000)
    assert newton.n_unconverged == 0 and adam.n_unconverged <= 1
    assert len(newton) >= 3
    odd = nd.find_fixed_points(model, -newton.states, max_iter=1)  # tanh is odd, b = 0: -r* is a fixed point too
    assert odd.n_unconverged == 0
    for a in adam.states:  # every Adam point is a Newton point, and Newton finds no point Adam missed
        assert (newton.states - a).norm(dim=1).min() < 1e-4
    for b in newton.states:
        assert (adam.states - b).norm(dim=1).min() < 1e-4
    assert (adam.q < 1e-10).all() and (newton.q < 1e-20).all()


def test_unconverged_starts_are_counted_and_duplicates_merged():
    model = nd.WilsonCowan(dtype=D64)
    init = torch.tensor([[0.0, 0.0], [1e-5, 0.0], [0.9, 0.7], [0.5, 0.4]], dtype=D64)
    fps = nd.find_fixed_points(model, init)
    assert fps.n_starts == 4 and fps.n_unconverged == 0 and len(fps) <= 3
    assert (fps.states.norm(dim=1) < 1e-9).sum() == 1
    with pytest.warns(UserWarning, match="none of"):
        few = nd.find_fixed_points(model, torch.tensor([[0.5, 0.4]], dtype=D64), max_iter=1)
    assert len(few) == 0 and few.n_unconverged == 1 and few.eigvals.shape == (0, 2)


def test_outliers_are_excluded():
    model = nd.WilsonCowan(dtype=D64)
    init = torch.tensor([[0.01, 0.0], [0.0, 0.01], [-0.01, 0.0], [0.9, 0.7]], dtype=D64)
    fps = nd.find_fixed_points(model, init, exclude_outliers=2.0)
    assert fps.n_outliers >= 1 and (fps.states.norm(dim=1) < 0.5).all()


def test_line_attractor_of_a_linear_integrator():
    direction = torch.tensor([1.0, 2.0, -1.0], dtype=D64)
    model = nd.LinearIntegrator(3, direction=direction, tau=0.1, dtype=D64)
    init = torch.randn(20, 3, generator=torch.Generator().manual_seed(5), dtype=D64)
    fps = nd.find_fixed_points(model, init)
    assert len(fps) > 5 and set(fps.stability) == {"marginal"}
    line = nd.line_attractor(fps)
    unit = direction / direction.norm()
    assert abs(float(line.direction @ unit)) > 0.999
    assert abs(line.eigval) < 1e-8
    assert line.variance_fraction > 0.999 and (line.alignment > 0.999).all()
    torch.testing.assert_close(line.projections, (fps.states - line.center) @ line.direction)
    assert abs(float(line.left @ line.right) - 1) < 1e-10


def test_line_attractor_from_one_fixed_point_and_selection_vector():
    leaky = nd.LinearIntegrator(3, direction=torch.tensor([0.0, 3.0, 4.0], dtype=D64), tau=0.1, leak=0.1, dtype=D64)
    fps = nd.find_fixed_points(leaky, torch.ones(1, 3, dtype=D64))
    line = nd.line_attractor(fps)
    assert abs(float(line.direction @ torch.tensor([0.0, 0.6, 0.8], dtype=D64))) > 0.999
    assert abs(line.eigval - (-0.1 / 0.1)) < 1e-10 and np.isnan(line.variance_fraction)
    # non-normal: dx/dt = y, dy/dt = -y has the line y = 0; the left eigenvector of lambda = 0 is (1, 1)
    model = nd.Equations("dx/dt = k * y\ndy/dt = -y", params={"k": 1.0}, dtype=D64)
    fps = nd.find_fixed_points(model, torch.tensor([[0.3, 0.2]], dtype=D64))
    line = nd.line_attractor(fps)
    torch.testing.assert_close(line.right.abs(), torch.tensor([1.0, 0.0], dtype=D64))
    torch.testing.assert_close(line.left * torch.sign(line.right[0]), torch.tensor([1.0, 1.0], dtype=D64))


def test_sample_states_from_a_trajectory():
    model = nd.WilsonCowan(dtype=D64)
    t = torch.linspace(0, 1, 11, dtype=D64)
    traj = nd.simulate(model, t, state0=torch.rand(3, 2, dtype=D64), dt=0.01)
    gen = torch.Generator().manual_seed(0)
    states = nd.sample_states(traj, 7, generator=gen)
    assert states.shape == (7, 2)
    flat = traj.flat().reshape(-1, 2)
    assert all((flat - s).norm(dim=1).min() == 0 for s in states)
    noisy = nd.sample_states(traj, 500, noise=0.1, generator=gen)
    dist = torch.stack([(flat - s).norm(dim=1).min() for s in noisy])
    assert 0.05 < float(dist.median()) < 0.3
    fps = nd.find_fixed_points(model, states)
    assert len(fps) >= 1


def test_bad_input_raises_value_error():
    model = nd.WilsonCowan(dtype=D64)
    with pytest.raises(ValueError, match="D=2"):
        nd.find_fixed_points(model, torch.zeros(3, 5, dtype=D64))
    with pytest.raises(ValueError, match="NaN"):
        nd.find_fixed_points(model, torch.tensor([[float("nan"), 0.0]], dtype=D64))
    with pytest.raises(ValueError, match="x must be"):
        nd.find_fixed_points(model, torch.zeros(1, 2, dtype=D64), x=torch.zeros(3, dtype=D64))
    with pytest.raises(ValueError, match="method"):
        nd.find_fixed_points(model, torch.zeros(1, 2, dtype=D64), method="bfgs")
    with pytest.raises(ValueError, match="x must be"):
        nd.jacobian(model, torch.zeros(1, 2, dtype=D64), x=torch.zeros(1, 4, dtype=D64))
    with pytest.raises(TypeError):
        nd.find_fixed_points("model", torch.zeros(1, 2))
    with pytest.raises(ValueError, match="marginal_tol must be"):
        nd.find_fixed_points(model, torch.zeros(1, 2, dtype=D64), marginal_tol=-1.0)
    with pytest.raises(TypeError, match="init is complex"):  # was silently cast to real
        nd.find_fixed_points(model, torch.tensor([[0.1 + 5j, 0.0]]))
    with pytest.raises(TypeError, match="x is complex"):
        nd.jacobian(model, torch.zeros(1, 2, dtype=D64), x=torch.tensor([1j]))
    for t, error in ((float("nan"), ValueError), ("a", TypeError)):  # nan was accepted; "a" failed in torch
        with pytest.raises(error, match="t must be a finite number"):
            nd.find_fixed_points(model, torch.zeros(1, 2, dtype=D64), t=t)
        with pytest.raises(error, match="t must be a finite number"):
            nd.jacobian(model, torch.zeros(1, 2, dtype=D64), t=t)
    with pytest.raises(ValueError, match="holds no states"):
        nd.sample_states(torch.zeros(0, 2), 3)
    with pytest.raises(ValueError, match="NaN or Inf"):
        nd.sample_states(torch.tensor([[0.1, float("nan")]]), 3)
    with pytest.raises(ValueError, match="no fixed points"):
        with pytest.warns(UserWarning):
            nd.line_attractor(nd.find_fixed_points(model, torch.tensor([[0.5, 0.4]], dtype=D64), max_iter=1))


def test_newton_retires_a_start_stalled_at_a_slow_point():
    # dx/dt = (x^2 + 1)(x - 2): one root, x = 2; q = F^2/2 has a local minimum (a slow point) at x = 1/3,
    # where dF/dx = 3x^2 - 4x + 1 = 0, with q = (10/9 * 5/3)^2 / 2
    model = nd.Equations("dx/dt = (x**2 + 1) * (x - c)", params={"c": 2.0}, dtype=D64)
    fps = nd.find_fixed_points(model, torch.tensor([[0.6], [0.2], [3.0]], dtype=D64), max_iter=1000)
    assert fps.n_unconverged == 1 and len(fps) == 1 and abs(float(fps.states[0, 0]) - 2) < 1e-12
    assert abs(float(fps.start_states[0, 0]) - 1 / 3) < 1e-3
    assert abs(float(fps.start_q[0]) / ((10 / 9 * 5 / 3) ** 2 / 2) - 1) < 1e-6
    assert fps.iterations < 100  # retired as stalled, long before max_iter


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_a_field_infinite_at_every_start_is_reported_as_such(method):
    """x/0 is inf: such starts are not iterated (q = inf, not the largest float) and the warning says why."""
    model = nd.Equations("dx/dt = -x/tau", {"tau": 0.0}, dtype=D64)
    with pytest.warns(UserWarning, match="NaN or infinite at all 3 starts"):
        fps = nd.find_fixed_points(model, torch.ones(3, 1, dtype=D64), method=method, max_iter=5)
    assert len(fps) == 0 and fps.n_unconverged == 3 and torch.isinf(fps.start_q).all()


def test_points_of_different_inputs_stay_apart_and_remember_their_input():
    """x per start: dx/dt = u - x has the fixed point x = u; inputs 0.1 and 0.1005 are two points, not one."""
    model = nd.Equations("dx/dt = u - x", inputs=("u",), dtype=D64)
    x = torch.tensor([[0.1], [0.1005], [0.1], [0.1005]], dtype=D64)
    fps = nd.find_fixed_points(model, torch.zeros(4, 1, dtype=D64), x=x)
    assert len(fps) == 2
    torch.testing.assert_close(fps.states, fps.inputs)  # each point sits at its own input
    with pytest.raises(TypeError, match="x must be a constant input"):
        nd.find_fixed_points(model, torch.zeros(1, 1, dtype=D64), x=lambda t: t)


def test_outlier_exclusion_needs_starts_that_differ():
    model = nd.WilsonCowan(dtype=D64)
    with pytest.warns(UserWarning, match="all starts are the same point"):
        fps = nd.find_fixed_points(model, torch.zeros(3, 2, dtype=D64), exclude_outliers=2.0)
    assert len(fps) == 1 and fps.n_outliers == 0  # (it excluded every point)


def test_left_eigenvectors_are_plain_arrays_and_a_jordan_block_is_flagged():
    fps = nd.find_fixed_points(nd.WilsonCowan(dtype=D64), torch.rand(20, 2, dtype=D64,
                                                                     generator=torch.Generator().manual_seed(0)))
    assert fps.left_eigvecs.numpy().shape == (len(fps), 2, 2)  # no lazy conjugate left behind
    J = -torch.eye(4, dtype=D64) + 2 * torch.diag(torch.ones(3, dtype=D64), 1)  # a feed-forward chain: one Jordan block
    with pytest.warns(UserWarning, match="nearly\\) defective"):
        eig_with_left(J[None])


def test_float32_deduplication_of_many_starts_uses_exact_distances():
    """A contracting network has one fixed point; torch.cdist's matrix-product shortcut (> 25 points) put
    float32 copies of it 1.6e-2 apart, so 64 starts gave 44 "unique" points."""
    torch.manual_seed(0)
    model = nd.RateRNN(50, g=0.5, activation="softplus")
    with torch.no_grad():
        model.b.fill_(3.0)
    fps = nd.find_fixed_points(model, 3 + torch.randn(64, 50))
    assert len(fps) == 1 and fps.n_unconverged < 64


def test_adam_from_close_starts_on_a_small_state_scale_needs_a_smaller_lr_and_says_so():
    """QA: 8 starts within 0.03 of the one fixed point of a 2-D sigmoid E-I circuit: Adam at lr=1 threw them
    into a slow region (q = 6.7e-4) and the warning advised raising max_iter, which changed nothing."""
    ei = nd.Equations("""dE/dt = (-E + sigmoid(aE*(wEE*E - wEI*I + P - thE)))/tauE
dI/dt = (-I + sigmoid(aI*(wIE*E - wII*I - thI)))/tauI""",
                      dict(wEE=16., wEI=12., wIE=15., wII=3., aE=1.3, thE=4., aI=2., thI=3.7, tauE=1., tauI=2.,
                           P=2.), dtype=torch.float64)
    root = torch.tensor([0.25827496419934387, 0.24532519794979663], dtype=torch.float64)
    starts = root + 0.02 * torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="try a smaller lr, or method='newton'"):
        nd.find_fixed_points(ei, starts, method="adam", max_iter=2000)
    found = nd.find_fixed_points(ei, starts, method="adam", max_iter=2000, lr=0.01)
    assert found.n_unconverged == 0 and len(found) == 1
    torch.testing.assert_close(found.states[0], root, atol=1e-5, rtol=0)
