"""Pseudo-arclength continuation: folds and Hopf bifurcations against their analytic locations."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import fsolve

import neurodyn as nd
from neurodyn.analysis.jacobian import evaluate_field
from neurodyn.models import Model

D64 = torch.float64


class HopfNormalForm(Model):
    """dx = mu x - y - x (x^2 + y^2), dy = x + mu y - y (x^2 + y^2): supercritical Hopf at mu = 0, frequency 1."""

    state_vars = {"x": 1, "y": 1}

    def __init__(self, mu: float = -1.0) -> None:
        super().__init__()
        self.register_buffer("mu", torch.tensor(mu, dtype=D64))

    def vector_field(self, t, state, drive):
        x, y = state
        r2 = x**2 + y**2
        return self.State(self.mu * x - y - x * r2, x + self.mu * y - y * r2)

    @property
    def timescale(self) -> float:
        return 1.0


def test_folds_of_the_cubic_are_found_around_the_s_curve():
    model = nd.Equations("dx/dt = mu + x - x**3/3", params={"mu": -1.0}, dtype=D64)
    branch = nd.continuation(model, "mu", (-1.0, 1.0), init=torch.tensor([-2.1], dtype=D64))
    folds = sorted(b.param for b in branch.bifurcations if b.kind == "fold")
    assert [b.kind for b in branch.bifurcations] == ["fold", "fold"]
    assert folds == pytest.approx([-2 / 3, 2 / 3], abs=1e-6)
    fold_states = sorted(float(b.state[0]) for b in branch.bifurcations)
    assert fold_states == pytest.approx([-1.0, 1.0], abs=1e-5)
    x, mu = branch.states[:, 0], branch.params
    torch.testing.assert_close(mu, x**3 / 3 - x, rtol=0, atol=1e-10)  # every point is on F = 0
    torch.testing.assert_close(branch.stable, (1 - x**2) < 0)  # stable iff f'(x) = 1 - x^2 < 0
    assert float(mu[0]) == -1.0 and float(mu[-1]) == pytest.approx(1.0, abs=1e-12)
    assert float(x[-1]) > 1.5  # followed the S through both folds onto the upper branch
    assert float(model.mu) == -1.0  # restored


def test_continuation_in_an_input_component():
    model = nd.Equations("dx/dt = I + x - x**3/3", inputs=("I",), params={"c": 1.0}, dtype=D64)
    branch = nd.continuation(model, "x[0]", (1.0, -1.0), init=torch.tensor([2.1], dtype=D64))
    assert sorted(b.param for b in branch.bifurcations) == pytest.approx([-2 / 3, 2 / 3], abs=1e-6)
    assert float(branch.params[-1]) == pytest.approx(-1.0)


def test_hopf_of_the_normal_form():
    model = HopfNormalForm()
    branch = nd.continuation(model, "mu", (-1.0, 1.0), init=torch.tensor([0.1, -0.1], dtype=D64))
    assert [b.kind for b in branch.bifurcations] == ["hopf"]
    hopf = branch.bifurcations[0]
    assert abs(hopf.param) < 1e-6 and hopf.frequency == pytest.approx(1.0, abs=1e-6)
    assert branch.stable[0] and not branch.stable[-1]
    torch.testing.assert_close(branch.states, torch.zeros_like(branch.states), rtol=0, atol=1e-10)
    torch.testing.assert_close(branch.eigvals[:, 0].real, branch.params)  # lambda = mu +- i


def test_wilson_cowan_branch_in_a_model_parameter_has_valid_points():
    model = nd.WilsonCowan(dtype=D64)
    branch = nd.continuation(model, "I_ext_E", (0.0, 0.5), init=torch.tensor([0.9384, 0.6725], dtype=D64))
    drive = torch.zeros(1, 2, dtype=D64)
    for p, y in zip(branch.params[::5], branch.states[::5], strict=True):
        model.I_ext_E.fill_(float(p))
        F = torch.cat(model.vector_field(0.0, model.State(y[:1][None], y[1:][None]), drive), -1)
        assert F.abs().max() < 1e-9
    model.I_ext_E.fill_(0.0)


def test_bad_continuation_input():
    model = HopfNormalForm()
    init = torch.zeros(2, dtype=D64)
    with pytest.raises(ValueError, match=r"valid names are \['mu'\]"):
        nd.continuation(model, "nu", (-1.0, 1.0), init)
    with pytest.raises(ValueError, match="start != stop"):
        nd.continuation(model, "mu", (0.5, 0.5), init)
    with pytest.raises(ValueError, match="D=2"):
        nd.continuation(model, "mu", (-1.0, 1.0), torch.zeros(3, dtype=D64))
    with pytest.raises(ValueError, match="NaN"):
        nd.continuation(model, "mu", (-1.0, 1.0), torch.tensor([math.nan, 0.0], dtype=D64))
    no_root = nd.Equations("dx/dt = mu + x**2", params={"mu": 1.0}, dtype=D64)
    with pytest.raises(ValueError, match="not near a fixed point"):
        nd.continuation(no_root, "mu", (1.0, 2.0), torch.tensor([0.5], dtype=D64))
    wc = nd.WilsonCowan(dtype=D64)
    with pytest.raises(ValueError, match="x must be"):
        nd.continuation(wc, "x[0]", (0.0, 1.0), init, x=torch.zeros(3, dtype=D64))
    with pytest.raises(ValueError, match=r"x has shape \(2,\)"):
        nd.continuation(wc, "x[5]", (0.0, 1.0), init)


def test_indexed_tensor_parameters_of_a_rate_rnn():
    W = torch.tensor([[0.5, 0.0], [0.0, -1.0]], dtype=D64)
    model = nd.RateRNN(2, activation="linear", W=W, tau=0.1)
    branch = nd.continuation(model, "b[0]", (0.0, 1.0), init=torch.zeros(2, dtype=D64))
    torch.testing.assert_close(branch.states[:, 0], 2 * branch.params)  # r* = b / (1 - w)
    assert not branch.bifurcations and branch.stable.all()
    weight = nd.continuation(model, "recurrent.weight[1, 1]", (-1.0, 0.5), init=torch.zeros(2, dtype=D64))
    assert weight.stable.all() and float(model.W[1, 1].detach()) == -1.0
    with pytest.raises(ValueError, match=r"b has shape \(2,\); pick one element, e.g. b\[0\]"):
        nd.continuation(model, "b", (0.1, 0.2), init=torch.zeros(2, dtype=D64))


def test_default_step_follows_a_hysteresis_loop_without_jumping_branches():
    # dr/dt = -r + s(w r + I): on the branch I = logit(r) - w r, folds where w r (1 - r) = 1.
    w = 6.0
    model = nd.Equations("dr/dt = -r + sigmoid(w*r + I)", {"w": w, "I": -5.0}, dtype=D64)
    branch = nd.continuation(model, "I", (-5.0, -1.0), init=torch.tensor([0.00698], dtype=D64))
    r_fold = (1 + np.array([-1.0, 1.0]) * math.sqrt(1 - 4 / w)) / 2
    I_fold = np.log(r_fold / (1 - r_fold)) - w * r_fold  # -2.58491, -3.41509
    assert [b.kind for b in branch.bifurcations] == ["fold", "fold"]
    assert sorted(b.param for b in branch.bifurcations) == pytest.approx(sorted(I_fold), abs=1e-6)
    r, drive = branch.states[:, 0], branch.params
    torch.testing.assert_close(drive, torch.log(r / (1 - r)) - w * r, rtol=0, atol=1e-9)
    torch.testing.assert_close(branch.stable, w * r * (1 - r) < 1)
    assert float(r.diff().abs().max()) < 0.1  # no jump from the low to the high stable branch
    assert float(r[-1]) > 0.9 and float(drive[-1]) == pytest.approx(-1.0)


def _scipy_singular(model: Model, name: str, guess: np.ndarray, to_state=lambda z: z) -> np.ndarray:
    """``(z, p)`` with ``F(y, p) = 0`` and ``det dF/dy = 0`` at ``y = to_state(z)``, by scipy fsolve.

    ``dF/dy`` by central differences; ``to_state`` restricts ``y`` (to a symmetric subspace), and the
    first ``len(z)`` components of ``F`` are solved.
    """
    buffer, n = getattr(model, name), len(guess) - 1

    def F(y: np.ndarray, p: float) -> np.ndarray:
        buffer.fill_(p)
        drive = model.input_drive(torch.zeros(1, model.n_in, dtype=D64))
        return evaluate_field(model, torch.as_tensor(y)[None], drive)[0].numpy()

    def g(z: np.ndarray) -> list[float]:
        y, p = to_state(z[:-1]), z[-1]
        J = np.column_stack([(F(y + 1e-6 * e, p) - F(y - 1e-6 * e, p)) / 2e-6 for e in np.eye(len(y))])
        return [*F(y, p)[:n], np.linalg.det(J)]

    return fsolve(g, guess, xtol=1e-13)


@pytest.mark.parametrize("coherence, span", [(20.0, (0.0, 60.0)), (10.0, (0.0, 80.0))])
def test_wong_wang_fold_of_the_spontaneous_state_matches_scipy(coherence, span):
    # The default step once jumped over this fold (c' = 20) or crashed landing on the span's end (c' = 10).
    model = nd.WongWang(coherence=coherence, dtype=D64)
    init = nd.find_fixed_points(model, torch.tensor([[0.1, 0.1]], dtype=D64)).states[0]
    branch = nd.continuation(model, "mu0", span, init)
    assert [b.kind for b in branch.bifurcations] == ["fold"]
    fold = branch.bifurcations[0]
    ref = _scipy_singular(model, "mu0", np.r_[fold.state.numpy(), fold.param])
    assert fold.param == pytest.approx(ref[-1], abs=1e-6)  # 6.734045 (c' = 20), 7.940285 (c' = 10)
    assert fold.param < 10.0  # on the spontaneous branch, not a far one
    assert float(branch.params[-1]) == 0.0  # turned at the fold and came back along the saddle branch


def test_pitchforks_of_the_symmetric_wong_wang_branch_are_located():
    # c' = 0: the symmetric state loses and regains stability at two pitchforks (dp/ds keeps its sign).
    model = nd.WongWang(coherence=0.0, dtype=D64)
    init = nd.find_fixed_points(model, torch.tensor([[0.1, 0.1]], dtype=D64)).states[0]
    branch = nd.continuation(model, "mu0", (0.0, 60.0), init)
    assert [b.kind for b in branch.bifurcations] == ["branch point", "branch point"]
    for point in branch.bifurcations:
        symmetric = _scipy_singular(model, "mu0", np.r_[point.state[0].item(), point.param], lambda z: np.r_[z, z])
        assert point.param == pytest.approx(symmetric[-1], abs=1e-6)  # 10.676806, 43.018187
        assert float(point.state[0]) == pytest.approx(float(point.state[1]), abs=1e-9)
    low, high = (b.param for b in branch.bifurcations)
    torch.testing.assert_close(branch.stable, (branch.params < low) | (branch.params > high))


def _two_oscillators(shift: float) -> nd.Equations:
    """Hopf normal forms in (x, y) at mu = 0 (frequency 1) and in (u, v) at mu = shift (frequency 3)."""
    return nd.Equations(f"""
dx/dt = mu*x - y - x*(x**2 + y**2)
dy/dt = x + mu*y - y*(x**2 + y**2)
du/dt = (mu - {shift})*u - 3*v - u*(u**2 + v**2)
dv/dt = 3*u + (mu - {shift})*v - v*(u**2 + v**2)
""", params={"mu": -1.0}, dtype=D64)


def test_two_hopfs_within_one_default_step_are_both_found():
    branch = nd.continuation(_two_oscillators(0.005), "mu", (-1.0, 1.0), torch.zeros(4, dtype=D64))
    assert [b.kind for b in branch.bifurcations] == ["hopf", "hopf"]
    assert [b.param for b in branch.bifurcations] == pytest.approx([0.0, 0.005], abs=1e-6)
    assert [b.frequency for b in branch.bifurcations] == pytest.approx([1.0, 3.0], abs=1e-6)


def test_a_stability_change_no_bifurcation_explains_is_warned():
    # Two pairs cross at the same mu = 0 (a degenerate double Hopf): one Hopf explains only two of the four.
    with pytest.warns(UserWarning, match=r"stability changed between mu=-?[0-9.e-]+ and [0-9.e-]+ \(0 -> 4"):
        branch = nd.continuation(_two_oscillators(0.0), "mu", (-1.0, 1.0), torch.zeros(4, dtype=D64))
    assert [b.kind for b in branch.bifurcations] == ["hopf"] and abs(branch.bifurcations[0].param) < 1e-5


class IntAttributeHopf(HopfNormalForm):
    """The normal form with ``mu`` a plain Python attribute (an int here) instead of a buffer."""

    def __init__(self, mu) -> None:
        Model.__init__(self)
        self.mu = mu
        self.register_buffer("anchor", torch.zeros((), dtype=D64))  # gives the model its dtype


@pytest.mark.parametrize("mu", [-1, torch.tensor(-1.0, dtype=D64)], ids=["int", "tensor"])
def test_a_numeric_attribute_is_swept_as_a_float(mu):
    model = IntAttributeHopf(mu)
    branch = nd.continuation(model, "mu", (-1.0, 1.0), init=torch.tensor([0.1, -0.1], dtype=D64))
    assert [b.kind for b in branch.bifurcations] == ["hopf"] and abs(branch.bifurcations[0].param) < 1e-6
    torch.testing.assert_close(branch.eigvals[:, 0].real, branch.params)  # the model ran at the non-integer mu
    assert model.mu is mu and model.mu == -1  # restored, as the same int or tensor object
    if isinstance(mu, torch.Tensor):
        assert mu.dtype == D64


def test_span_accepts_0d_tensors_and_numpy_scalars():
    model = HopfNormalForm()
    init = torch.tensor([0.1, -0.1], dtype=D64)
    ref = nd.continuation(model, "mu", (-1.0, 1.0), init)
    branch = nd.continuation(model, "mu", (torch.tensor(-1.0), np.array(1.0)), init)
    torch.testing.assert_close(branch.params, ref.params)
    for bad in [(torch.tensor([-1.0]), 1.0), (-1.0, torch.tensor(1.0 + 1j)), (True, 1.0), ("-1", 1.0)]:
        with pytest.raises(ValueError, match="two finite numbers"):
            nd.continuation(model, "mu", bad, init)


def test_a_family_of_centres_has_no_hopf_points():
    """Lotka-Volterra's coexistence point is a centre for every a (Re lambda = 0 exactly): round-off of 1e-16
    in Re made 6 false Hopf points."""
    model = nd.Equations("dx/dt = a*x - b*x*y\ndy/dt = -c*y + d*x*y", dict(a=0.7, b=0.3, c=1.3, d=0.7), dtype=D64)
    branch = nd.continuation(model, "a", (0.7, 2.0), init=torch.tensor([1.3 / 0.7, 0.7 / 0.3], dtype=D64))
    assert branch.bifurcations == [] and branch.params[-1] == pytest.approx(2.0)


def test_float32_continues_from_its_own_fixed_points():
    model = nd.WilsonCowan()  # float32
    fps = nd.find_fixed_points(model, torch.tensor([[0.9, 0.7]]))
    branch = nd.continuation(model, "wEE", (9.0, 8.0), init=fps.states[0])
    assert branch.states.dtype == torch.float32 and float(branch.params[-1]) == pytest.approx(8.0)
    exact = nd.continuation(nd.WilsonCowan(dtype=D64), "wEE", (9.0, 8.0), init=fps.states[0].double())
    torch.testing.assert_close(branch.states[-1].double(), exact.states[-1], rtol=0, atol=1e-4)  # same node at 8


def test_pitchfork_tip_reached_on_its_nontrivial_branch_is_a_fold_with_an_honest_warning():
    """mu = x^2 turns at mu = 0, where the stable branch x = sqrt(mu) meets x = -sqrt(mu) (also stable):
    the eigenvalue touches 0 without crossing, and the warning says so (it said "the stability changed")."""
    model = nd.Equations("dx/dt = mu*x - x**3", dict(mu=1.0), dtype=torch.float64)
    with pytest.warns(UserWarning, match="touches 0 without crossing"):
        branch = nd.continuation(model, "mu", (1.0, -1.0), init=torch.tensor([1.0], dtype=torch.float64))
    assert [b.kind for b in branch.bifurcations] == ["fold"]
    assert abs(branch.bifurcations[0].param) < 1e-6


def _cubic() -> nd.Equations:
    return nd.Equations("dx/dt = mu + x - x**3/3", {"mu": 0.0}, dtype=D64)


def _lower_root(mu: float) -> float:
    return float(min(r.real for r in np.roots([-1 / 3, 0, 1, mu]) if abs(r.imag) < 1e-9))


@pytest.mark.parametrize("below", [1e-6, 1e-4])
def test_a_fold_within_the_first_step_is_located(below):
    """QA: starting just below the fold at mu = 2/3 gave two copies of the start and no fold (the first step went
    around the fold and was projected back onto the start)."""
    start = 2 / 3 - below
    branch = nd.continuation(_cubic(), "mu", (start, 2.0), init=torch.tensor([_lower_root(start)], dtype=D64))
    assert [b.kind for b in branch.bifurcations] == ["fold"]
    assert branch.bifurcations[0].param == pytest.approx(2 / 3, abs=1e-9)
    assert float(branch.states[-1, 0]) > -1 > float(branch.states[0, 0])  # on to the middle branch


def test_starting_at_a_fold_or_sweeping_a_time_constant_to_zero_does_not_crash():
    """QA: both raised torch's LinAlgError (the bordered matrix singular at the fold, the field infinite at tau=0)."""
    with pytest.warns(UserWarning, match="continuation stopped"):
        branch = nd.continuation(_cubic(), "mu", (2 / 3, 2.0), init=torch.tensor([-1.0], dtype=D64))
    assert len(branch) >= 1
    ei = nd.Equations("""dE/dt = (-E + sigmoid(aE*(wEE*E - wEI*I + P - thE)))/tauE
dI/dt = (-I + sigmoid(aI*(wIE*E - wII*I - thI)))/tauI""",
                      dict(wEE=16., wEI=12., wIE=15., wII=3., aE=1.3, thE=4., aI=2., thI=3.7, tauE=1., tauI=5.,
                           P=2.), dtype=D64)
    fixed = torch.tensor([0.25827496419934387, 0.24532519794979663], dtype=D64)
    with pytest.warns(UserWarning, match="continuation stopped"):
        branch = nd.continuation(ei, "tauI", (5.0, 0.0), init=fixed)
    hopf = [b.param for b in branch.bifurcations if b.kind == "hopf"]
    assert hopf == [pytest.approx(nd.continuation(ei, "tauI", (5.0, 1e-3), init=fixed).bifurcations[0].param,
                                  abs=1e-8)]


def test_a_dict_init_may_hold_plain_numbers():
    """QA: {"x": 1.0, "y": 1.0} raised IndexError in continuation, find_fixed_points and jacobian."""
    brusselator = nd.Equations("dx/dt = a - (b+1)*x + x**2*y\ndy/dt = b*x - x**2*y", {"a": 1.0, "b": 1.0},
                               dtype=D64)
    branch = nd.continuation(brusselator, "b", (1.0, 3.0), init={"x": 1.0, "y": 1.0})
    assert [(b.kind, round(b.param, 6)) for b in branch.bifurcations] == [("hopf", 2.0)]  # b = 1 + a^2
    # J = [[-(b+1) + 2xy, x^2], [b - 2xy, -x^2]] at a = b = 1: one state, then a batch of two
    torch.testing.assert_close(nd.jacobian(brusselator, {"x": 1.0, "y": 1.0}),
                               torch.tensor([[[0.0, 1.0], [-1.0, -1.0]]], dtype=D64))
    torch.testing.assert_close(nd.jacobian(brusselator, {"x": [1.0, 2.0], "y": [1.0, 1.0]}),
                               torch.tensor([[[0.0, 1.0], [-1.0, -1.0]], [[2.0, 4.0], [-3.0, -4.0]]], dtype=D64))
