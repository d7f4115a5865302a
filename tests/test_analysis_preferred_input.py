"""Preferred-input optimization (primer Eq. 31): analytic optima of linear units, gradients, bad input."""

import math

import pytest
import torch
from torch import nn

import neurodyn as nd
from neurodyn.analysis.preferred_input import input_activity, preferred_input
from neurodyn.errors import DivergenceError
from neurodyn.models.base import Model

D64 = torch.float64


class Relax(Model):
    """tau dr/dt = -r + W_in x: the rate relaxes to the linear drive."""

    state_vars = {"r": 3}
    n_in = 4

    def __init__(self, W_in: torch.Tensor, tau: float = 0.1) -> None:
        super().__init__()
        self.W_in = nn.Parameter(W_in)
        self.tau = tau

    def input_drive(self, x):
        return x @ self.W_in.T

    def vector_field(self, t, state, drive):
        return self.State((drive - state.r) / self.tau)

    @property
    def timescale(self) -> float:
        return self.tau


def linear_rnn(n: int = 4, n_in: int = 3, n_out: int = 0) -> nd.RateRNN:
    """tau dr/dt = -r + W_in x (W = 0, linear f): at steady state r = W_in x."""
    W_in = torch.randn(n, n_in, dtype=D64)
    return nd.RateRNN(n, n_in, n_out, activation="linear", W=torch.zeros(n, n, dtype=D64), W_in=W_in,
                      W_out=torch.randn(n_out, n, dtype=D64), tau=0.1)


STEADY = torch.linspace(0, 2.0, 41, dtype=D64)  # 20 tau; Euler factor 1 - 0.5^40 of the steady state


def test_linear_unit_at_steady_state_reaches_the_bound_along_w():
    model = linear_rnn()
    w = model.W_in.detach()[2]
    res = preferred_input(model, 2, STEADY, bound=2.0, lr=0.5, steps=300, generator=torch.Generator().manual_seed(1))
    assert res.converged and res.steps < 300
    torch.testing.assert_close(res.x, 2.0 * w / w.norm(), atol=1e-4, rtol=0)
    assert res.activity == pytest.approx(2.0 * float(w.norm()), rel=1e-8)
    assert res.history[-1] == pytest.approx(res.activity) and res.history[-1] > res.history[0]
    # another random start reaches the same optimum
    other = preferred_input(model, 2, STEADY, bound=2.0, lr=0.5, steps=300, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(other.x, res.x, atol=1e-4, rtol=0)


def test_a_unit_the_input_cannot_reach_is_reported_not_converged():
    model = linear_rnn()
    with torch.no_grad():
        model.W_in[2] = 0.0  # unit 2 gets no input (W = 0): its activity is the same for every x
    with pytest.warns(UserWarning, match="does not change with the input"):
        res = preferred_input(model, 2, STEADY, bound=2.0, generator=torch.Generator().manual_seed(1))
    assert not res.converged and res.steps == 0


def test_time_varying_input_of_a_relaxing_unit_reaches_the_analytic_optimum():
    model = Relax(torch.randn(3, 4, dtype=D64))
    w = model.W_in.detach()[1]
    t = torch.linspace(0, 0.1, 11, dtype=D64)  # one tau: every sample still matters
    res = preferred_input(model, 1, t, time_varying=True, bound=1.5, lr=10.0, steps=2000)
    assert res.converged and res.x.shape == (11, 4)
    torch.testing.assert_close(res.x[:-1], (1.5 * w / w.norm()).expand(10, 4), atol=1e-4, rtol=0)
    assert torch.equal(res.x[-1], torch.zeros(4, dtype=D64))  # held after t[-1]: cannot act
    # Euler: r_K = sum_k h (1-h)^(K-1-k) w.x_k with h = dt/tau = 0.1, K = 10 steps
    assert res.activity == pytest.approx(1.5 * float(w.norm()) * (1 - 0.9**10), rel=1e-8)
    # constant input averaged over a window: the same direction
    const = preferred_input(model, 1, t, window=(0.05, 0.1), bound=1.5, lr=10.0, steps=2000)
    torch.testing.assert_close(const.x, 1.5 * w / w.norm(), atol=1e-4, rtol=0)


def test_population_weights_indices_and_readout_targets():
    model = linear_rnn(n_out=2)
    W_in, W_out = model.W_in.detach(), model.W_out.detach()
    v = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=D64)
    cases = [(v, {}, W_in.T @ v), ([0, 3], {}, W_in[[0, 3]].mean(0)),
             (1, {"target": "output"}, (W_out @ W_in)[1])]
    for spec, kwargs, direction in cases:
        res = preferred_input(model, spec, STEADY, lr=0.5, steps=300, **kwargs)
        assert res.converged
        torch.testing.assert_close(res.x, direction / direction.norm(), atol=1e-4, rtol=0)


def test_penalty_and_box_bounds_have_their_analytic_optima():
    model = linear_rnn()
    w = model.W_in.detach()[0]
    soft = preferred_input(model, 0, STEADY, bound=None, l2=4.0, lr=0.1, steps=500, tol=1e-14)
    torch.testing.assert_close(soft.x, w / 4.0, atol=1e-6, rtol=0)  # max of w.x - 2 |x|^2
    box = preferred_input(model, 0, STEADY, bound=0.3, norm="linf", lr=0.5, steps=300)
    torch.testing.assert_close(box.x, 0.3 * torch.sign(w), atol=1e-8, rtol=0)


def test_nonlinear_optimum_satisfies_the_kkt_condition():
    # at a maximum on the sphere |x| = bound the gradient points along x (Lagrange multiplier > 0)
    model = nd.RateRNN(6, 3, g=0.8, W_in=torch.randn(6, 3, dtype=D64))
    t = torch.linspace(0, 1.0, 11, dtype=D64)
    res = preferred_input(model, 4, t, window=(0.5, 1.0), lr=2.0, steps=500, tol=1e-14)
    assert res.converged
    x = res.x.clone().requires_grad_(True)
    a = input_activity(model, 4, t, x, window=(0.5, 1.0))
    (g,) = torch.autograd.grad(a, x)
    assert float(a.detach()) == pytest.approx(res.activity, rel=1e-12)
    assert float(res.x.norm()) == pytest.approx(1.0, rel=1e-12)
    assert float(g @ res.x / g.norm()) == pytest.approx(1.0, abs=1e-10)
    others = torch.nn.functional.normalize(torch.randn(20, 3, dtype=D64), dim=1)
    with torch.no_grad():
        assert max(float(input_activity(model, 4, t, y, window=(0.5, 1.0))) for y in others) < res.activity


def test_activity_gradient_matches_finite_differences():
    model = nd.RateRNN(5, 3, 2, g=1.2, W=1.2 * torch.randn(5, 5, dtype=D64) / math.sqrt(5))
    t = torch.linspace(0, 0.5, 11, dtype=D64)
    x = torch.randn(3, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: input_activity(model, [1, 3], t, x), (x,))
    seq = torch.randn(11, 3, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s: input_activity(model, torch.tensor([0.3, -1.0], dtype=D64), t, s, target="output",
                                 window=(0.2, 0.4), solver="rk4", gradient="checkpoint"), (seq,))


def test_steps_limit_and_reproducible_start():
    model = linear_rnn()
    runs = [preferred_input(model, 0, STEADY, steps=1, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert not runs[0].converged and runs[0].steps == 1 and runs[0].history.shape == (2,)
    assert torch.equal(runs[0].x, runs[1].x)
    x0 = torch.tensor([3.0, 4.0, 0.0], dtype=D64)  # outside the ball: projected first
    start = preferred_input(model, 0, STEADY, x0=x0, steps=1, lr=1e-300)
    torch.testing.assert_close(start.x, x0 / 5)


def test_divergence_is_reported():
    model = nd.RateRNN(2, 1, activation="linear", W=5 * torch.eye(2, dtype=D64), tau=0.1)
    with pytest.raises(DivergenceError, match="preferred_input diverged at step 0"):
        preferred_input(model, 0, torch.linspace(0, 60.0, 1201, dtype=D64))


def test_bad_input_is_rejected():
    model = linear_rnn()
    t = STEADY
    for unit in (4, -1, [0, 4], [1, 1], torch.zeros(3, dtype=D64), torch.zeros(4, dtype=D64), []):
        with pytest.raises(ValueError, match="unit_or_population"):
            preferred_input(model, unit, t)
    with pytest.raises(TypeError, match="unit_or_population"):
        preferred_input(model, "r", t)
    for bound in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="bound"):
            preferred_input(model, 0, t, bound=bound)
    with pytest.raises(ValueError, match="bound=None and l2=0"):
        preferred_input(model, 0, t, bound=None)
    for window in ((-1.0, 0.5), (0.5, 3.0), (1.0, 0.5), (0.51, 0.52), (0.0, 0.01)):
        with pytest.raises(ValueError, match="window"):
            preferred_input(model, 0, t, window=window)
    with pytest.raises(ValueError, match="target"):
        preferred_input(model, 0, t, target="v")
    with pytest.raises(ValueError, match="n_out=0"):
        preferred_input(model, 0, t, target="output")
    with pytest.raises(ValueError, match="x0 must have shape"):
        preferred_input(model, 0, t, x0=torch.zeros(2, dtype=D64), time_varying=False)
    with pytest.raises(ValueError, match="norm"):
        preferred_input(model, 0, t, norm="l1")
    with pytest.raises(ValueError, match="adjoint"):
        input_activity(model, 0, t, torch.zeros(3, dtype=D64), gradient="adjoint")
    with pytest.raises(ValueError, match="n_in=0"):
        preferred_input(nd.RateRNN(3, 0), 0, t.float())
