"""Pseudo-arclength continuation: folds and Hopf bifurcations against their analytic locations."""

import math

import pytest
import torch

import neurodyn as nd
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
