"""What the plot functions draw: markers, line styles, sorting, fitted curves."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn import plot
from neurodyn.tasks import ParametricWorkingMemory, PerceptualDecisionMaking


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _gid_lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_eigenspectrum_draws_every_eigenvalue_and_the_imaginary_axis():
    eigvals = torch.tensor([[-1 + 2j, -1 - 2j, -0.5 + 0j], [0.3 + 0j, -2 + 0j, -0.1 + 0j]])
    fps = SimpleNamespace(eigvals=eigvals, is_stable=torch.tensor([True, False]))
    ax = plot.eigenspectrum(fps)
    points = [c for c in ax.collections if c.get_gid() == "eigenvalues"]
    assert len(points) == 2
    drawn = np.concatenate([c.get_offsets() for c in points])
    expected = np.sort_complex(eigvals.flatten().numpy())
    np.testing.assert_allclose(np.sort_complex(drawn[:, 0] + 1j * drawn[:, 1]), expected)
    # stable point filled, unstable open
    assert points[0].get_facecolors()[0][3] > 0 and len(points[1].get_facecolors()) == 0
    (axis,) = _gid_lines(ax, "imaginary-axis")
    assert axis.get_xdata()[0] == 0.0
    assert isinstance(ax, matplotlib.axes.Axes) and ax.figure is not None


def test_eigenspectrum_rejects_an_empty_set():
    with pytest.raises(ValueError, match="no fixed points"):
        plot.eigenspectrum(SimpleNamespace(eigvals=torch.zeros(0, 2, dtype=torch.complex64), is_stable=torch.zeros(0)))


def test_connectivity_sorts_units_into_ei_blocks_by_selectivity():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(10, 10, generator=g)
    selectivity = torch.randn(10, generator=g)
    ax = plot.connectivity(SimpleNamespace(W=W, n_e=7), selectivity=selectivity)
    order = np.concatenate(plot.unit_blocks(10, n_e=7, selectivity=selectivity))
    # E units first, each block in decreasing selectivity (as sort_by_selectivity orders them)
    assert set(order[:7]) == set(range(7)) and set(order[7:]) == {7, 8, 9}
    for block in (order[:7], order[7:]):
        assert np.all(np.diff(selectivity.numpy()[block]) <= 0)
    by_order = nd.sort_by_selectivity(selectivity, groups=[1] * 7 + [-1] * 3)
    np.testing.assert_array_equal(np.concatenate(plot.unit_blocks(10, n_e=7, selectivity=by_order)), order)
    np.testing.assert_array_equal(by_order.order.numpy(), order)
    with pytest.raises(TypeError, match="pass its matrix"):
        plot.connectivity(nd.Ensemble([nd.RateRNN(3), nd.RateRNN(3)]))
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), W.numpy()[np.ix_(order, order)], rtol=1e-6)
    assert image.get_clim() == (-float(W.abs().max()), float(W.abs().max()))
    boundaries = _gid_lines(ax, "ei-boundary")
    assert len(boundaries) == 2 and {line.get_xdata()[0] for line in boundaries} | {
        line.get_ydata()[0] for line in boundaries} >= {6.5}


def test_connectivity_threshold_keeps_only_selective_units():
    W = torch.arange(16.0).reshape(4, 4)
    ax = plot.connectivity(W, selectivity=torch.tensor([0.9, -0.1, -0.8, 0.05]), threshold=0.5)
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), W.numpy()[np.ix_([0, 2], [0, 2])])
    with pytest.raises(ValueError, match="selectivity must have one value per unit"):
        plot.connectivity(W, selectivity=torch.zeros(3))
    with pytest.raises(ValueError, match="lower the threshold"):
        plot.connectivity(W, selectivity=torch.zeros(4), threshold=1.0)
    with pytest.raises(ValueError, match="square"):
        plot.connectivity(torch.zeros(3, 4))


def _s_curve_branch():
    """Fixed points of dx/dt = mu + x - x^3/3: mu = x^3/3 - x, stable iff |x| > 1, folds at mu = -+2/3."""
    x = torch.linspace(-2.5, 2.5, 101, dtype=torch.float64)
    fold = SimpleNamespace(kind="fold", param=2 / 3, state=torch.tensor([-1.0]))
    return SimpleNamespace(params=x**3 / 3 - x, states=x[:, None], stable=x.abs() > 1,
                           bifurcations=[fold, SimpleNamespace(kind="fold", param=-2 / 3, state=torch.tensor([1.0]))])


def test_bifurcation_draws_stable_solid_unstable_dashed_and_marks_folds():
    ax = plot.bifurcation(_s_curve_branch())
    stable, unstable = _gid_lines(ax, "branch-stable"), _gid_lines(ax, "branch-unstable")
    assert len(stable) == 2 and len(unstable) == 1
    assert all(line.get_linestyle() == "-" for line in stable)
    assert all(line.get_linestyle() == "--" for line in unstable)
    # the unstable middle branch is |x| <= 1 and joins both stable ones (shared end points)
    middle = unstable[0].get_ydata()
    assert np.all(np.abs(middle[1:-1]) <= 1) and middle[0] == stable[0].get_ydata()[-1]
    (folds,) = _gid_lines(ax, "bifurcation-fold")
    np.testing.assert_allclose(sorted(folds.get_xdata()), [-2 / 3, 2 / 3])
    np.testing.assert_allclose(sorted(folds.get_ydata()), [-1, 1])
    assert not _gid_lines(ax, "bifurcation-hopf")


def test_bifurcation_rejects_a_bad_variable():
    with pytest.raises(ValueError, match="var must index"):
        plot.bifurcation(_s_curve_branch(), var=1)


def _outputs_choosing(task, batch, choices):
    """Outputs whose decision-epoch readout picks ``choices`` (one-hot), so task.choices returns them."""
    y = torch.zeros_like(batch.y)
    y[torch.arange(batch.batch_size), :, 1 + choices] = 1.0
    return y


def test_psychometric_recovers_a_known_logistic_observer():
    task = PerceptualDecisionMaking()
    batch = task.sample(4000, generator=torch.Generator().manual_seed(0))
    signed = batch.info["coherence"] * (1 - 2 * batch.info["choice"])
    mu, s = 0.05, 0.08
    p0 = torch.sigmoid((signed - mu) / s)
    choices = (torch.rand(4000, generator=torch.Generator().manual_seed(1)) > p0).long()
    ax = plot.psychometric(task, _outputs_choosing(task, batch, choices), batch)
    data = next(c for c in ax.containers if c.lines[0].get_gid() == "psychometric-data")
    levels = data.lines[0].get_xdata()
    np.testing.assert_allclose(levels, np.unique(signed.numpy()))
    expected = [float((choices[signed == v] == 0).double().mean()) for v in levels]
    np.testing.assert_allclose(data.lines[0].get_ydata(), expected)
    (fit,) = _gid_lines(ax, "psychometric-fit")
    grid, curve = fit.get_xdata(), fit.get_ydata()
    np.testing.assert_allclose(curve, 1 / (1 + np.exp(-(grid - mu) / s)), atol=0.06)


def test_psychometric_of_working_memory_uses_f1_minus_f2():
    task = ParametricWorkingMemory()
    batch = task.sample(64, generator=torch.Generator().manual_seed(0))
    ax = plot.psychometric(task, _outputs_choosing(task, batch, batch.info["choice"]), batch)
    data = next(c for c in ax.containers if c.lines[0].get_gid() == "psychometric-data")
    np.testing.assert_allclose(data.lines[0].get_xdata(), [-8.0, 8.0])
    np.testing.assert_allclose(data.lines[0].get_ydata(), [0.0, 1.0])  # choice 0 means f1 > f2
    assert ax.get_xlabel() == "f1 - f2"
    with pytest.raises(ValueError, match="not a trial variable"):
        plot.psychometric(task, batch.y, batch, variable="nope")


def test_phase_portrait_of_wilson_cowan_marks_its_three_fixed_points_by_stability():
    from neurodyn.models import WilsonCowan

    ax = plot.phase_portrait(WilsonCowan(dtype=torch.float64), (-0.1, 1.0), (-0.1, 0.8), starts=3,
                             generator=torch.Generator().manual_seed(0))
    assert plot.fixed_point_markers(ax) == 3
    drawn = {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0]) for line in _gid_lines(ax, "fixed-points")}
    # Wilson & Cowan 1972 with the Neuromatch couplings (values from scipy fsolve, issue 5)
    assert set(drawn) == {"stable focus", "saddle", "stable node"}
    np.testing.assert_allclose(drawn["stable focus"], (0.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(drawn["saddle"], (0.3369, 0.1684), atol=1e-4)
    np.testing.assert_allclose(drawn["stable node"], (0.9384, 0.6725), atol=1e-4)
    styles = {line.get_label(): line.get_fillstyle() for line in _gid_lines(ax, "fixed-points")}
    assert styles == {"stable focus": "full", "saddle": "left", "stable node": "full"}
    assert len(_gid_lines(ax, "trajectory")) == 3
    assert len(_gid_lines(ax, "nullcline-E")) >= 1 and len(_gid_lines(ax, "nullcline-I")) >= 1
    assert [c.get_gid() for c in ax.collections] == ["vector-field"]


def test_phase_portrait_draws_each_nullcline_branch_separately():
    from neurodyn.equations import Equations

    # Lotka–Volterra: dx/dt = 0 on x = 0 and on y = 1; dy/dt = 0 on y = 0 and on x = 1
    model = Equations("dx/dt = x * (1 - y)\ndy/dt = y * (x - 1)", params={})
    ax = plot.phase_portrait(model, (-0.5, 2.0), (-0.5, 2.0), starts=0)
    x_branches = sorted((tuple(np.unique(line.get_xdata())), tuple(np.unique(line.get_ydata())))
                        for line in _gid_lines(ax, "nullcline-x"))
    assert len(x_branches) == 2
    assert ((0.0,), (-0.5, 2.0)) in x_branches and ((-0.5, 2.0), (1.0,)) in x_branches
    assert len(_gid_lines(ax, "nullcline-y")) == 2
    stability = sorted(line.get_label() for line in _gid_lines(ax, "fixed-points"))
    assert stability == ["marginal", "saddle"]  # a centre at (1, 1), a saddle at the origin
    assert not _gid_lines(ax, "trajectory")


def test_phase_portrait_needs_a_two_dimensional_model():
    with pytest.raises(ValueError, match="2-D state"):
        plot.phase_portrait(nd.RateRNN(3), (0, 1), (0, 1))
    from neurodyn.models import WilsonCowan

    with pytest.raises(ValueError, match="x_range"):
        plot.phase_portrait(WilsonCowan(), (1, 0), (0, 1))
    other = nd.find_fixed_points(nd.RateRNN(4, dtype=torch.float64), torch.zeros(1, 4, dtype=torch.float64))
    for kwargs, match in (({"fixed_points": other}, "fixed_points are 4-D but the model's state is 2-D"),
                          ({"density": 0}, "density must be an int >= 2"), ({"starts": True}, "starts must be"),
                          ({"duration": -1.0}, "duration must be a positive number")):
        with pytest.raises(ValueError, match=match):
            plot.phase_portrait(WilsonCowan(), (0, 1), (0, 1), **kwargs)


def test_phase_portrait_of_a_two_vector_state_and_of_trajectories_that_blow_up():
    """A 2-unit network written as one state variable (no nullclines: they need two scalar variables), and
    dx/dt = x^2, whose trajectories from x > 0 blow up in finite time: drawn until shortly before."""
    net = nd.Equations("dr/dt = -r + tanh(W @ r)", {"W": [[1.5, -0.5], [0.8, 1.2]]}, state_sizes={"r": 2})
    ax = plot.phase_portrait(net, (-1, 1), (-1, 1), starts=2)
    assert len(_gid_lines(ax, "trajectory")) == 2 and not [a for a in ax.lines if "nullcline" in str(a.get_gid())]
    blow_up = nd.Equations("dx/dt = x**2\ndy/dt = -y", dtype=torch.float64)
    ax = plot.phase_portrait(blow_up, (-1, 1), (-1, 1), starts=torch.tensor([[0.5, 0.5], [-0.5, 0.5]]))
    paths = [line.get_xydata() for line in _gid_lines(ax, "trajectory")]
    assert len(paths) == 2 and all(np.isfinite(p).all() for p in paths)
    assert paths[0][-1, 0] > 5 and abs(paths[1][-1, 0]) < 0.1  # x = 0.5/(1 - 0.5 t) leaves the window; x < 0 decays


def _integrator_trials():
    """Trajectories of a perfect 2-D line attractor along u, and the fixed points where they end."""
    from neurodyn.analysis import find_fixed_points

    u = torch.tensor([0.6, 0.8], dtype=torch.float64)
    model = nd.LinearIntegrator(2, 1, direction=u, tau=0.1, dtype=torch.float64)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    starts = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = nd.simulate(model, t, None, starts)
    return u, traj, find_fixed_points(model, traj.flat()[:, -1])


def test_trajectories_in_state_coordinates_with_fixed_points_and_line():
    from neurodyn.analysis import line_attractor

    u, traj, fps = _integrator_trials()
    ax = plot.trajectories(traj, pca=False, fixed_points=fps, line=line_attractor(fps))
    paths = _gid_lines(ax, "trajectory")
    assert len(paths) == 4
    np.testing.assert_allclose(paths[2].get_xdata(), traj["r"][2, :, 0].numpy())
    assert plot.fixed_point_markers(ax) == len(fps) == 4
    assert {line.get_label() for line in _gid_lines(ax, "fixed-points")} == {"marginal"}
    (segment,) = _gid_lines(ax, "line-attractor")
    step = np.array([np.diff(segment.get_xdata())[0], np.diff(segment.get_ydata())[0]])
    assert abs(step @ u.numpy()) / np.linalg.norm(step) == pytest.approx(1.0)
    # the segment spans every fixed point's position along the line
    along = fps.states.numpy() @ u.numpy()
    ends = np.stack([segment.get_xdata(), segment.get_ydata()], 1) @ u.numpy()
    assert ends.min() <= along.min() and ends.max() >= along.max()


def test_trajectories_checks_its_arguments():
    u, traj, _ = _integrator_trials()
    with pytest.raises(ValueError, match="n_components"):
        plot.trajectories(traj, n_components=4)
    with pytest.raises(ValueError, match="D=2 < n_components=3"):
        plot.trajectories(traj, pca=False, n_components=3)
    with pytest.raises(ValueError, match="one value per trial"):
        plot.trajectories(traj, pca=False, color_by=torch.zeros(3))


def test_trajectories_projects_trials_and_fixed_points_on_the_same_principal_components():
    from neurodyn.analysis import find_fixed_points, line_attractor

    g = torch.Generator().manual_seed(2)
    u = torch.nn.functional.normalize(torch.randn(6, generator=g, dtype=torch.float64), dim=0)
    model = nd.LinearIntegrator(6, 1, direction=u, tau=0.1, dtype=torch.float64)
    traj = nd.simulate(model, torch.linspace(0, 0.5, 51, dtype=torch.float64), None,
                       torch.randn(5, 6, generator=g, dtype=torch.float64))
    fps = find_fixed_points(model, traj.flat()[:, -1])
    ax = plot.trajectories(traj, fixed_points=fps, line=line_attractor(fps), n_components=3)
    assert ax.name == "3d"
    # independent reference: numpy SVD of the centred samples, axes compared up to sign
    samples = traj.flat().reshape(-1, 6).numpy()
    mean = samples.mean(0)
    axes_ = np.linalg.svd(samples - mean, full_matrices=False)[2][:3]
    first = _gid_lines(ax, "trajectory")[0]
    drawn = np.stack(first.get_data_3d(), 1)
    expected = (traj.flat()[0].numpy() - mean) @ axes_.T
    np.testing.assert_allclose(np.abs(drawn), np.abs(expected), atol=1e-8)
    points = np.concatenate([np.stack(line.get_data_3d(), 1) for line in _gid_lines(ax, "fixed-points")])
    np.testing.assert_allclose(np.sort(np.abs(points[:, 0])), np.sort(np.abs((fps.states.numpy() - mean) @ axes_[0])),
                               atol=1e-8)
    assert len(_gid_lines(ax, "line-attractor")) == 1 and plot.fixed_point_markers(ax) == len(fps)


def test_bifurcation_of_the_hopf_normal_form_from_continuation():
    from neurodyn.analysis import continuation
    from neurodyn.equations import Equations

    # dx = mu x - y - x r^2, dy = x + mu y - y r^2: the origin is stable for mu < 0, a Hopf at mu = 0
    model = Equations("dx/dt = mu * x - y - x * (x**2 + y**2)\ndy/dt = x + mu * y - y * (x**2 + y**2)",
                      params={"mu": -1.0}, dtype=torch.float64)
    branch = continuation(model, "mu", span=(-1.0, 1.0), init=torch.zeros(2, dtype=torch.float64))
    ax = plot.bifurcation(branch)
    (stable,), (unstable,) = _gid_lines(ax, "branch-stable"), _gid_lines(ax, "branch-unstable")
    assert stable.get_linestyle() == "-" and unstable.get_linestyle() == "--"
    assert np.all(stable.get_xdata()[:-1] < 0) and np.all(unstable.get_xdata()[1:] > 0)
    (hopf,) = _gid_lines(ax, "bifurcation-hopf")
    np.testing.assert_allclose(hopf.get_xdata(), [0.0], atol=1e-3)
    assert not _gid_lines(ax, "bifurcation-fold") and ax.get_xlabel() == "mu"


def test_bifurcation_marks_branch_points():
    params = torch.linspace(0, 1, 11)
    branch = SimpleNamespace(params=params, states=params[:, None] ** 2, stable=params < 0.5,
                             bifurcations=[SimpleNamespace(kind="branch point", param=0.5, state=torch.tensor([0.25]))])
    ax = plot.bifurcation(branch)
    (marker,) = _gid_lines(ax, "bifurcation-branch point")
    assert marker.get_xdata().tolist() == [0.5] and marker.get_ydata().tolist() == [0.25]
    plt.close(ax.figure)


def test_trajectories_of_a_numpy_array():
    """QA: a numpy array was taken for a Trajectory (both have .flat) and crashed."""
    data = np.random.default_rng(0).standard_normal((4, 50, 10))
    ax = plot.trajectories(data, pca=False)  # the first two state dimensions, as given
    paths = [line.get_xydata() for line in ax.get_lines() if line.get_gid() == "trajectory"]
    assert len(paths) == 4
    for path, trial in zip(paths, data, strict=True):
        np.testing.assert_allclose(path, trial[:, :2])
    plt.close("all")


def test_spectrum_and_bifurcation_arguments_are_named():
    """QA: index=1.5 raised IndexError, a list of FixedPoints AttributeError, var='x' a bare TypeError."""
    model = nd.Equations("dx/dt = -x + y\ndy/dt = -2*y", {}, dtype=torch.float64)
    fps = nd.find_fixed_points(model, torch.randn(3, 2, dtype=torch.float64))
    for index in (1.5, "a"):
        with pytest.raises(TypeError, match="index must be an int"):
            plot.eigenspectrum(fps, index=index)
    with pytest.raises(TypeError, match="fps must be a FixedPoints"):
        plot.eigenspectrum([fps])
    cubic = nd.Equations("dx/dt = mu + x - x**3/3", {"mu": 0.0}, dtype=torch.float64)
    branch = nd.continuation(cubic, "mu", (-1.0, 1.0), init=torch.tensor([-1.5], dtype=torch.float64))
    with pytest.raises(TypeError, match="var must be an int"):
        plot.bifurcation(branch, var="x")
    plt.close("all")
