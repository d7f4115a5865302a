"""Shared connectivity (masks, density, autapses, W_fix, initializers) and the regularizers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.models import Connectivity

f64 = torch.float64


def test_mask_holds_through_training_and_given_W_is_exact():
    n = 6
    mask = torch.rand(n, n) < 0.5
    W = torch.randn(n, n, dtype=f64) * mask
    model = nd.RateRNN(n, 1, 1, W=W, mask=mask)
    torch.testing.assert_close(model.W, W)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        traj = nd.simulate(model, torch.linspace(0, 0.3, 4, dtype=f64), torch.ones(2, 1, dtype=f64),
                           torch.rand(2, n, dtype=f64))
        traj.outputs.pow(2).sum().backward()
        opt.step()
    assert not torch.allclose(model.W, W)
    assert (model.W[~mask] == 0).all()


def test_random_density_and_no_autapses():
    n = 100
    conn = Connectivity(n, density=0.2, autapses=False, g=1.0, dtype=f64)
    assert conn.density == pytest.approx(0.2 * (n - 1) / n, abs=0.02)
    W = conn()
    assert (torch.diagonal(W) == 0).all()
    # Gaussian init on the mask scaled by 1/sqrt(p n): spectral radius ~ g (circular law)
    radius = torch.linalg.eigvals(W).abs().max().item()
    assert radius == pytest.approx(1.0, abs=0.2)
    assert (W[conn.mask == 0] == 0).all()


def test_fixed_plus_trainable_split():
    n = 5
    W_fix = torch.randn(n, n, dtype=f64)
    W_train = torch.randn(n, n, dtype=f64)
    model = nd.RateRNN(n, W=W_train, W_fix=W_fix)
    torch.testing.assert_close(model.W, W_train + W_fix)
    assert "recurrent.W_fix" in dict(model.named_buffers())
    assert all("W_fix" not in name for name, _ in model.named_parameters())
    model.W.sum().backward()
    torch.testing.assert_close(model.recurrent.weight.grad, torch.ones(n, n, dtype=f64))


@pytest.mark.parametrize("init", ["identity", "orthogonal", "gaussian"])
def test_initializers(init):
    n = 64
    W = Connectivity(n, g=1.3, init=init, dtype=f64)().detach()
    if init == "identity":
        torch.testing.assert_close(W, torch.eye(n, dtype=f64))
    elif init == "orthogonal":
        torch.testing.assert_close(W @ W.T, 1.3**2 * torch.eye(n, dtype=f64))
    else:
        assert W.std().item() == pytest.approx(1.3 / n**0.5, rel=0.05)


def test_callable_init_and_dale_signs():
    n = 4
    sign = torch.tensor([1.0, 1.0, -1.0, 1.0])
    conn = Connectivity(n, init=lambda shape: torch.full(shape, -2.0), sign=sign, dtype=f64)
    torch.testing.assert_close(conn(), 2.0 * sign.to(f64).expand(n, n))


def test_identity_rnn_holds_its_state():
    # Le et al. 2015: with W = I and relu, tau dr/dt = -r + relu(r) = 0 for r >= 0
    model = nd.RateRNN(3, activation="relu", init="identity", b=torch.zeros(3))
    r0 = torch.tensor([[0.2, 1.0, 3.0]])
    traj = nd.simulate(model, torch.linspace(0, 1, 5), state0=r0, dt=0.01)
    torch.testing.assert_close(traj["r"][:, -1], r0)


def test_connectivity_bad_input():
    with pytest.raises(ValueError, match="mask"):
        nd.RateRNN(3, mask=torch.ones(3, 4))
    with pytest.raises(ValueError, match="mask"):
        nd.RateRNN(3, mask=torch.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="density"):
        nd.RateRNN(3, density=0.0)
    with pytest.raises(ValueError, match="density"):
        nd.RateRNN(3, density=1.5)
    with pytest.raises(ValueError, match="mask or density"):
        nd.RateRNN(3, density=0.5, mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="W_fix"):
        nd.RateRNN(3, W_fix=torch.ones(2, 2))
    with pytest.raises(ValueError, match="init"):
        nd.RateRNN(3, init="xavier")
    with pytest.raises(ValueError, match="balanced"):
        nd.RateRNN(3, init="balanced")
    with pytest.raises(ValueError, match="tau"):
        nd.RateRNN(3, tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        nd.RateRNN(3, tau=-0.1)
    with pytest.raises(ValueError, match="sign"):
        nd.RateRNN(3, sign=torch.tensor([1.0, 0.0, -1.0]))


def test_regularizers_match_their_formulas():
    W = torch.randn(4, 4, dtype=f64, requires_grad=True)
    W_fix, M = torch.randn(4, 4, dtype=f64), torch.rand(4, 4, dtype=f64)
    r = torch.rand(2, 7, 4, dtype=f64)
    assert nd.l2_weights(W, 0.3).item() == pytest.approx(0.3 * (W**2).sum().item())
    assert nd.l1_sparsity([W, W_fix], 0.5).item() == pytest.approx(0.5 * (W.abs().sum() + W_fix.abs().sum()).item())
    sel = nd.selective_training(W, W_fix, M, 2.0)
    assert sel.item() == pytest.approx(2.0 * (M * (W - W_fix) ** 2).sum().item())
    (g,) = torch.autograd.grad(sel, W)
    torch.testing.assert_close(g, 4.0 * M * (W - W_fix))
    assert nd.l2_rates(r, 0.1).item() == pytest.approx(0.1 * (r**2).mean().item())
    model = nd.RateRNN(3, 2, 1)
    expected = sum((p**2).sum() for p in (model.recurrent.weight, model.W_in, model.W_out))
    assert nd.l2_weights(model).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="beta"):
        nd.l1_sparsity(W, -1.0)
    with pytest.raises(ValueError, match="same shape"):
        nd.selective_training(W, W_fix, torch.ones(3, 3))


def test_numbers_may_be_numpy_scalars_or_0d_tensors_but_not_bools():
    for density in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5), 1):
        torch.manual_seed(0)
        assert nd.RateRNN(20, density=density).recurrent.density == pytest.approx(float(density), abs=0.15)
    torch.manual_seed(0)
    reference = nd.RateRNN(6, g=1.2, dtype=f64).W
    for g in (np.float32(1.2), torch.tensor(1.2, dtype=f64), np.int64(1)):
        torch.manual_seed(0)
        torch.testing.assert_close(nd.RateRNN(6, g=g, dtype=f64).W, reference * float(g) / 1.2, rtol=1e-6, atol=0)
    assert nd.RateRNN(np.int64(4), torch.tensor(2), np.int32(1)).W_in.shape == (4, 2)
    assert nd.l1_sparsity(torch.ones(2, 2), np.float32(0.5)).item() == 2.0
    assert nd.l2_weights(torch.ones(2, 2), torch.tensor(0.25)).item() == 1.0
    for kwargs, name in ((dict(density=True), "density"), (dict(g=True), "g"), (dict(n_in=True), "n_in"),
                         (dict(n_in=2.0), "n_in"), (dict(density=torch.tensor([0.5])), "density")):
        with pytest.raises(TypeError, match=f"^{name} must be"):
            nd.RateRNN(3, **kwargs)
    with pytest.raises(TypeError, match="^beta must be"):
        nd.l2_rates(torch.ones(2, 2), False)
    with pytest.raises(TypeError, match="^tau must"):
        nd.RateRNN(3, tau=True)


def test_given_arrays_keep_their_precision_and_numpy_is_accepted():
    W, mask = np.random.default_rng(0).normal(size=(3, 3)), np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    model = nd.RateRNN(3, W=W * mask, mask=mask, W_fix=np.eye(3))
    assert model.dtype == f64  # a float64 numpy W sets the precision, as a float64 tensor does
    torch.testing.assert_close(model.W, torch.from_numpy(W * mask + np.eye(3)), rtol=0, atol=0)
    assert nd.RateRNN(3, W=W.astype(np.float32)).dtype == torch.float32
    assert nd.RateRNN(3, W=[[0.0] * 3] * 3).dtype == torch.get_default_dtype()  # a list sets no precision
    with pytest.raises(TypeError, match="^W must be"):
        nd.RateRNN(3, W="eye")


def test_given_W_must_already_have_the_mask_structure():
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=f64)
    with pytest.raises(ValueError, match=r"W is nonzero where the mask allows no synapse, at \(0, 1\), \(1, 0\)"):
        nd.RateRNN(2, W=W, mask=torch.eye(2))
    with pytest.raises(ValueError, match=r"autapses=False allows no synapse, at \(0, 0\), \(1, 1\)"):
        nd.RateRNN(2, W=W, autapses=False)
    with pytest.raises(ValueError, match=r"Dale's law at \(0, 1\)"):
        nd.RateRNN(2, W=W, sign=torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(nd.RateRNN(2, W=W * (1 - torch.eye(2, dtype=f64)), autapses=False).W,
                               W * (1 - torch.eye(2, dtype=f64)))
    # density draws a random mask that sparsifies the given W (documented): kept entries are W's own
    torch.manual_seed(0)
    big = torch.randn(30, 30, dtype=f64)
    sparse = nd.RateRNN(30, W=big, density=0.3).W.detach()
    assert ((sparse == 0) | (sparse == big)).all() and 0.2 < (sparse != 0).double().mean() < 0.4


def test_identity_init_needs_the_diagonal():
    with pytest.raises(ValueError, match=r'init="identity" needs the diagonal .* units \[0, 1, 2\].*W would be 0'):
        nd.RateRNN(3, autapses=False, init="identity")
    mask = torch.ones(3, 3)
    mask[1, 1] = 0
    with pytest.raises(ValueError, match=r"units \[1\].*partly 0"):
        nd.RateRNN(3, mask=mask, init="identity")


def test_l2_weights_of_a_module_counts_connection_weights_only():
    n = 3
    model = nd.HebbianRNN(n, 1, 1, eta=torch.ones(n, n), learn_eta=True, learn_tau=True, tau=torch.full((n,), 0.1))
    expected = sum((p**2).sum() for p in (model.recurrent.weight, model.W_in, model.W_out))
    assert nd.l2_weights(model).item() == pytest.approx(expected.item())  # not eta (n, n), tau or b
    ensemble = nd.Ensemble([nd.RateRNN(n, 1, 1, learn_tau=True) for _ in range(2)])  # stacked (K, ...) names
    stacked = ensemble.stacked
    expected = sum((p**2).sum() for p in (stacked.recurrent__weight, stacked.W_in, stacked.W_out))
    assert nd.l2_weights(ensemble).item() == pytest.approx(expected.item())


def test_weight_penalties_of_a_model_count_only_the_synapses_its_mask_keeps():
    """QA: l1_sparsity(RateRNN(6, density=0.5)) was 21.19, summing masked-out entries of W~ too; sum |W| is 10.39.
    A fixed W_fix is not trained, so it is not penalized."""
    torch.manual_seed(0)
    model = nd.RateRNN(6, 2, 1, density=0.5, W_fix=torch.randn(6, 6), dtype=f64)
    trained = model.W - model.recurrent.W_fix
    assert (trained == 0).sum() >= 15  # the mask removes about half the entries
    expected = trained.abs().sum() + model.W_in.abs().sum() + model.W_out.abs().sum()
    assert nd.l1_sparsity(model).item() == pytest.approx(expected.item())
    (g,) = torch.autograd.grad(nd.l2_weights(model), model.recurrent.weight)
    assert (g[model.recurrent.mask == 0] == 0).all()


def test_weight_penalties_of_an_ensemble_equal_the_sum_over_its_networks():
    torch.manual_seed(0)
    networks = [nd.RateRNN(6, 2, 1, density=0.5, dtype=f64) for _ in range(3)]
    ensemble = nd.Ensemble(networks)
    for penalty in (nd.l1_sparsity, nd.l2_weights):
        assert penalty(ensemble).item() == pytest.approx(sum(penalty(m).item() for m in networks))
    (g,) = torch.autograd.grad(nd.l1_sparsity(ensemble), ensemble.stacked["recurrent__weight"])
    assert (g[torch.stack([m.recurrent.mask for m in networks]) == 0] == 0).all()
