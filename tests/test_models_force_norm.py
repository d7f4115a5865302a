"""ForceRNN (output feedback, Eqs. 28-30) and DivisiveNormalization (Eq. 37)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodyn as nd

f64 = torch.float64


def test_force_feedback_equals_low_rank_matrix_eq30():
    n, n_out = 6, 2
    W, W_out = torch.randn(n, n, dtype=f64), torch.randn(n_out, n, dtype=f64)
    b_out, w_fb = torch.randn(n_out, dtype=f64), torch.randn(n, n_out, dtype=f64)
    force = nd.ForceRNN(n, n_out, n_in=1, W=W, W_out=W_out, b_out=b_out, w_fb=w_fb, b=torch.randn(n, dtype=f64))
    torch.testing.assert_close(force.W_eff, W + w_fb @ W_out)
    plain = nd.RateRNN(n, 1, tau=0.01, W=force.W_eff.detach(), W_in=force.W_in.detach(),
                       b=force.bias_eff.detach())
    r, x = torch.randn(3, n, dtype=f64), torch.randn(3, 1, dtype=f64)
    torch.testing.assert_close(force.vector_field(0.0, force.State(r), force.input_drive(x)),
                               plain.vector_field(0.0, plain.State(r), plain.input_drive(x)))
    # Euler step equals Eq. 27 with the feedback written out
    dt = 1e-3
    traj = nd.simulate(force, torch.tensor([0.0, dt], dtype=f64), x, r, dt=dt)
    y = r @ W_out.T + b_out
    expected = r + dt / force.tau * (-r + torch.tanh(r @ W.T + x @ force.W_in.T + y @ w_fb.T + force.bias))
    torch.testing.assert_close(traj["r"][:, 1], expected)


def test_force_defaults_follow_sussillo_abbott():
    n = 300
    model = nd.ForceRNN(n, g=1.5, p=0.1)
    assert (model.W_out == 0).all() and model.w_fb.abs().max() <= 1 and model.w_fb.shape == (n, 1)
    assert model.recurrent.density == pytest.approx(0.1, abs=0.01)
    assert torch.linalg.eigvals(model.W.detach().double()).abs().max().item() == pytest.approx(1.5, abs=0.15)
    assert model.timescale == pytest.approx(0.01)
    # W_out is the trained readout; w_fb is fixed
    assert model.W_out.requires_grad and "w_fb" in dict(model.named_buffers())


def test_force_bad_input():
    with pytest.raises(ValueError, match="n_out"):
        nd.ForceRNN(5, 0)
    with pytest.raises(ValueError, match="w_fb"):
        nd.ForceRNN(5, 1, w_fb=torch.ones(4, 1))
    with pytest.raises(ValueError, match=r"^p must be .* \(0, 1\]; got 0.0"):
        nd.ForceRNN(5, p=0.0)
    with pytest.raises(ValueError, match="tau"):
        nd.ForceRNN(5, tau=0.0)
    with pytest.raises(TypeError, match="^p must be"):
        nd.ForceRNN(5, p=True)
    model = nd.ForceRNN(5, tau=torch.tensor(0.01, dtype=f64), p=np.float32(0.5))  # a float64 tau sets the precision
    assert model.dtype == f64 and model.W_out.dtype == f64 and model.w_fb.dtype == f64


def test_divisive_normalization_formula_and_steady_state():
    n, gamma, sigma = 4, 2.0, 0.5
    b = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=f64)
    norm = nd.DivisiveNormalization(gamma, sigma)
    model = nd.RateRNN(n, W=torch.zeros(n, n, dtype=f64), b=b, activation=norm)
    r_end = nd.simulate(model, torch.linspace(0, 5, 3, dtype=f64), solver="dopri5", rtol=1e-10, atol=1e-12)["r"]
    expected = torch.relu(gamma * b / (b.sum() + sigma))
    torch.testing.assert_close(r_end[0, -1], expected)
    torch.testing.assert_close(norm(b[None])[0], expected)


def test_divisive_normalization_with_a_pool_matrix_in_a_recurrent_network():
    n = 4
    pool = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=f64)
    norm = nd.DivisiveNormalization(1.5, 1.0, f="softplus", pool=pool)
    W = 0.2 * torch.rand(n, n, dtype=f64)
    b = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=f64)
    model = nd.RateRNN(n, W=W, b=b, activation=norm, tau=0.05)
    r = nd.simulate(model, torch.linspace(0, 3, 3, dtype=f64), solver="dopri5", rtol=1e-10, atol=1e-12)["r"][0, -1]
    current = W @ r + b
    pooled = torch.stack([current[:2].sum()] * 2 + [current[2:].sum()] * 2)
    torch.testing.assert_close(r, torch.nn.functional.softplus(1.5 * current / (pooled + 1.0)))


def test_divisive_normalization_bad_input_and_training():
    with pytest.raises(ValueError, match="pool"):
        nd.DivisiveNormalization(pool=torch.ones(3, 4))
    with pytest.raises(ValueError, match="pool"):
        nd.DivisiveNormalization(pool=torch.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="units"):
        nd.RateRNN(4, activation=nd.DivisiveNormalization(pool=torch.ones(3, 3)))
    for sigma in (-1.0, 0.0):  # sigma = 0 would give 0/0 = NaN on a zero input
        with pytest.raises(ValueError, match="sigma must be > 0"):
            nd.DivisiveNormalization(sigma=sigma)
    pool = np.eye(3)  # a numpy pool matrix is accepted
    torch.testing.assert_close(nd.DivisiveNormalization(pool=pool)(torch.ones(1, 3)), torch.full((1, 3), 0.5))
    norm = nd.DivisiveNormalization(trainable=True)
    model = nd.RateRNN(3, 1, 1, activation=norm, b=torch.ones(3))
    nd.simulate(model, torch.linspace(0, 0.3, 4), torch.ones(1, 1), dt=0.01).outputs.sum().backward()
    assert norm.gamma.grad is not None and norm.sigma.grad is not None


@pytest.mark.parametrize("solver", ["euler", "dopri5"])
def test_divisive_normalization_reports_a_pooled_input_below_minus_sigma(solver):
    """QA: pooled input -1.02 with sigma = 1 gave r* = 25.5 (a negative current over a negative denominator),
    while the docstring promised a reported divergence. Above -sigma the rates stay the rectified formula."""
    def network(bias):
        norm = nd.DivisiveNormalization(gamma=1.0, sigma=1.0, f="relu")
        return nd.RateRNN(2, W=torch.zeros(2, 2, dtype=torch.float64),
                          b=torch.full((2,), bias, dtype=torch.float64), activation=norm, tau=0.1)

    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    options = {"solver": solver, "dt": 0.01} if solver == "euler" else {"solver": solver}
    assert nd.simulate(network(-0.49), t, **options)["r"][0, -1].tolist() == [0.0, 0.0]
    r = nd.simulate(network(0.5), t, **options)["r"][0, -1]
    torch.testing.assert_close(r, torch.full((2,), 0.25, dtype=torch.float64), atol=1e-4, rtol=0)  # 0.5 / 2
    with pytest.raises(nd.DivergenceError):
        nd.simulate(network(-0.51), t, **options)
