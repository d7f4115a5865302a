"""EIRateRNN: Dale's law by construction, balanced initialization, per-population parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neurodyn as nd

f64 = torch.float64


def _check_dale(model):
    W = model.W.detach()
    exc = model.excitatory
    assert (W[:, exc] >= 0).all() and (W[:, ~exc] <= 0).all()


def test_dale_signs_hold_after_adam_steps():
    model = nd.EIRateRNN(8, 2, 3, 2)
    _check_dale(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.2)
    t = torch.linspace(0, 0.3, 7)
    target = torch.randn(4, 7, 2)
    W0 = model.W.detach().clone()
    for _ in range(20):
        opt.zero_grad()
        traj = nd.simulate(model, t, torch.randn(4, 7, 3), dt=0.01)
        (traj.outputs - target).pow(2).mean().backward()
        opt.step()
        _check_dale(model)
    flipped = (model.recurrent.weight.detach() < 0).any()  # the raw W~ changed sign somewhere,
    assert flipped and not torch.allclose(model.W.detach(), W0)  # yet the effective W kept Dale's law


def test_balanced_initialization():
    n_e, n_i = 80, 20
    model = nd.EIRateRNN(n_e, n_i, g=1.5)
    W = model.W.detach().double()
    assert torch.linalg.eigvals(W).abs().max().item() == pytest.approx(1.5, rel=1e-4)
    exc_in, inh_in = W[:, :n_e].sum(1), W[:, n_e:].sum(1)
    # mean excitatory and inhibitory input to a unit cancel (Song, Yang & Wang 2016)
    assert (exc_in + inh_in).mean().abs().item() < 0.1 * exc_in.mean().item()  # unbalanced: 0.75


def test_equations_35_36_and_per_population_parameters():
    n_e, n_i = 2, 1
    W = torch.tensor([[0.5, 0.2, -0.7], [0.1, 0.0, -0.3], [0.4, 0.6, -0.2]], dtype=f64)
    W_in = torch.tensor([[1.0], [0.5], [0.2]], dtype=f64)
    model = nd.EIRateRNN(n_e, n_i, 1, 1, W=W, W_in=W_in, tau_e=0.02, tau_i=0.01, activation="relu",
                         activation_i="tanh", readout="excitatory", W_out=torch.tensor([[1.0, 1.0, 0.0]], dtype=f64))
    torch.testing.assert_close(model.W, W)
    r = torch.tensor([[0.3, 0.1, 0.4]], dtype=f64)
    x = torch.tensor([[0.7]], dtype=f64)
    I = r @ W.T + x @ W_in.T  # noqa: E741
    expected = torch.cat([(-r[:, :2] + torch.relu(I[:, :2])) / 0.02, (-r[:, 2:] + torch.tanh(I[:, 2:])) / 0.01], 1)
    torch.testing.assert_close(model.vector_field(0.0, model.State(r), model.input_drive(x))[0], expected)
    # Euler step equals the hand-written discrete update
    dt = 1e-3
    traj = nd.simulate(model, torch.tensor([0.0, dt], dtype=f64), x, r, dt=dt)
    torch.testing.assert_close(traj["r"][:, 1], r + dt * expected)
    # read out from excitatory units only
    torch.testing.assert_close(model.output(model.State(r)), r[:, :2].sum(1, keepdim=True))
    assert model.timescale == pytest.approx(0.01)


def test_excitatory_readout_gets_no_inhibitory_gradient():
    model = nd.EIRateRNN(3, 2, 1, 1, readout="excitatory")
    traj = nd.simulate(model, torch.linspace(0, 0.2, 5), torch.ones(1, 1), torch.rand(1, 5), dt=0.01)
    traj.outputs.sum().backward()
    assert (model.W_out.grad[:, 3:] == 0).all() and (model.W_out.grad[:, :3] != 0).all()


def test_ei_bad_input():
    with pytest.raises(ValueError, match="n_e"):
        nd.EIRateRNN(0, 2)
    with pytest.raises(ValueError, match="n_i"):
        nd.EIRateRNN(2, -1)
    with pytest.raises(ValueError, match="tau_i"):
        nd.EIRateRNN(2, 1, tau_i=0.0)
    with pytest.raises(ValueError, match="tau"):
        nd.EIRateRNN(2, 1, tau=-0.1)
    with pytest.raises(ValueError, match="readout"):
        nd.EIRateRNN(2, 1, readout="inhibitory")
    with pytest.raises(ValueError, match="Dale"):
        nd.EIRateRNN(1, 1, W=torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match="mask"):
        nd.EIRateRNN(2, 1, mask=torch.ones(2, 2))


@pytest.mark.parametrize("init,p", [("gaussian", 1.0), ("gaussian", 0.5), ("orthogonal", 1.0), ("orthogonal", 0.5)])
def test_what_g_sets_under_dales_law_matches_the_eigenvalues(init, p):
    # |W~| has mean g sqrt(2/pi)/sqrt(p n): one outlier g_eff sqrt(2/pi) (n_E - n_I) sqrt(p/n) plus a bulk of
    # radius g_eff sqrt(1 - 2p/pi) (Rajan & Abbott 2006); orthogonal with a mask acts as gaussian with g sqrt(p)
    n_e, n_i, g = 320, 80, 1.5
    n, g_eff = n_e + n_i, g * (p**0.5 if init == "orthogonal" else 1.0)
    torch.manual_seed(0)
    W = nd.EIRateRNN(n_e, n_i, g=g, init=init, density=None if p == 1 else p).W.detach().double()
    outlier, bulk = torch.linalg.eigvals(W).abs().sort(descending=True).values[:2].tolist()
    assert outlier == pytest.approx(g_eff * (2 / math.pi) ** 0.5 * (n_e - n_i) * (p / n) ** 0.5, rel=0.03)
    assert bulk == pytest.approx(g_eff * (1 - 2 * p / math.pi) ** 0.5, rel=0.15)
    if init == "orthogonal":  # without Dale's law, a masked orthogonal draw has radius ~ g sqrt(p)
        radius = torch.linalg.eigvals(nd.RateRNN(n, g=g, init=init, density=p).W.detach().double()).abs().max()
        assert radius.item() == pytest.approx(g * p**0.5, rel=0.06)


def test_ei_arguments_are_checked_not_silently_changed():
    with pytest.raises(ValueError, match=r'readout="excitatory" .* nonzero inhibitory columns \(columns 2\.\.2\)'):
        nd.EIRateRNN(2, 1, 0, 1, readout="excitatory", W_out=torch.ones(1, 3))
    with pytest.raises(TypeError, match="remove sign="):
        nd.EIRateRNN(4, 1, sign=torch.ones(5))
    with pytest.raises(TypeError, match="^n_e must be an int"):
        nd.EIRateRNN(4.0, 1)
    assert nd.EIRateRNN(np.int64(4), np.int32(1)).n == 5
    model = nd.EIRateRNN(4, 1, tau_e=np.float32(0.05), tau_i=torch.tensor(0.02))
    assert model.dtype == torch.get_default_dtype()  # tau_e/tau_i do not switch the model to float64
    torch.testing.assert_close(model.tau, torch.tensor([0.05] * 4 + [0.02]))
    assert nd.EIRateRNN(4, 1, tau_e=0.05, dtype=f64).tau.dtype == f64
