"""RDM, RSA, CKA, linear predictivity and condition responses against direct numpy/scipy formulas."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, spearmanr

from neurodyn.analysis.similarity import (
    ConditionResponses,
    cka,
    condition_responses,
    linear_predictivity,
    rdm,
    rsa,
)
from neurodyn.data.recording import Recording
from neurodyn.models.rate_rnn import RateRNN
from neurodyn.simulate import simulate

RNG = np.random.default_rng(0)


def _random(d=12, n=7, seed=0):
    return np.random.default_rng(seed).standard_normal((d, n))


def _orthogonal(n, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q


# ---- numpy references -------------------------------------------------------------------------------------------

def _cka_reference(x, y, kernel="linear", sigma=1.0):
    """Kornblith et al. 2019: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with H = I - 11^T/D."""
    def gram(r):
        if kernel == "linear":
            return r @ r.T
        sq = squareform(pdist(r, "sqeuclidean"))
        return np.exp(-sq / (2 * sigma**2 * np.median(sq)))

    h = np.eye(len(x)) - 1 / len(x)
    k, l_ = h @ gram(x) @ h, h @ gram(y) @ h
    return np.trace(k @ l_) / np.sqrt(np.trace(k @ k) * np.trace(l_ @ l_))


def _ridge_reference(x, y, x_new, lam):
    """Ridge with unpenalized intercept via lstsq on the augmented system [1 X; 0 sqrt(lam) I] b = [Y; 0]."""
    n, p = x.shape
    a = np.block([[np.ones((n, 1)), x], [np.zeros((p, 1)), np.sqrt(lam) * np.eye(p)]])
    b = np.vstack([y, np.zeros((p, y.shape[1]))])
    coef = np.linalg.lstsq(a, b, rcond=None)[0]
    return np.hstack([np.ones((len(x_new), 1)), x_new]) @ coef


def _scaled(x, ridge):
    xc = x - x.mean(0)
    return ridge * np.sum(xc**2) / x.shape[1]


def _predictivity_reference(x, y, cv, ridge, order):
    predicted = np.empty_like(y)
    for test in np.array_split(order, cv):
        train = np.setdiff1d(np.arange(len(x)), test)
        xt, yt = x[train], y[train]
        ridges = np.atleast_1d(ridge)
        if len(ridges) > 1:  # brute-force leave-one-out on the training rows
            errors = []
            for r in ridges:
                lam = _scaled(xt, r)
                err = 0.0
                for i in range(len(xt)):
                    keep = np.arange(len(xt)) != i
                    err += np.sum((_ridge_reference(xt[keep], yt[keep], xt[i:i + 1], lam) - yt[i]) ** 2)
                errors.append(err)
            ridges = ridges[[int(np.argmin(errors))]]
        predicted[test] = _ridge_reference(xt, yt, x[test], _scaled(xt, ridges[0]))
    return np.array([pearsonr(predicted[:, j], y[:, j])[0] for j in range(y.shape[1])])


# ---- RDM ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_rdm_matches_scipy_pdist(metric):
    r = _random(10, 6)
    got = rdm(r, metric)
    assert got.dtype == torch.float64 and got.shape == (10, 10)
    np.testing.assert_allclose(got.numpy(), squareform(pdist(r, metric)), atol=1e-12)
    assert torch.equal(got, got.T) and torch.all(got.diagonal() == 0)


def test_rdm_accepts_float32_tensor_and_condition_responses():
    r = _random(5, 4)
    from_tensor = rdm(torch.tensor(r, dtype=torch.float32))
    np.testing.assert_allclose(from_tensor.numpy(), squareform(pdist(r.astype(np.float32), "correlation")),
                               atol=1e-6)
    wrapped = ConditionResponses(torch.tensor(r), np.arange(5), torch.ones(5, dtype=torch.long))
    assert torch.equal(rdm(wrapped), rdm(r))


# ---- RSA ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_rsa_matches_scipy(method, metric):
    r1, r2 = _random(9, 5, seed=1), _random(9, 8, seed=2)
    reference = spearmanr if method == "spearman" else pearsonr
    expected = reference(pdist(r1, metric), pdist(r2, metric))[0]
    assert rsa(r1, r2, method=method, metric=metric) == pytest.approx(expected, abs=1e-12)


def test_rsa_spearman_averages_tied_ranks():
    # Euclidean distances of points on a grid are heavily tied.
    r1 = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0], [0, 2]], dtype=float)
    r2 = _random(6, 3, seed=3)
    expected = spearmanr(pdist(r1), pdist(r2))[0]
    assert len(np.unique(pdist(r1))) < len(pdist(r1))
    assert rsa(r1, r2, metric="euclidean") == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_rsa_identity_permutation_and_scale(method):
    r = _random(8, 6, seed=4)
    assert rsa(r, r, method=method) == pytest.approx(1.0, abs=1e-12)
    other = _random(8, 4, seed=5)
    base = rsa(r, other, method=method)
    assert base < 0.9  # independent representations are not similar: the invariances below are not trivial
    permuted = r[:, np.random.default_rng(6).permutation(6)]
    assert rsa(permuted, other, method=method) == pytest.approx(base, abs=1e-12)
    assert rsa(7.5 * r, other, method=method) == pytest.approx(base, abs=1e-12)
    assert rsa(r, other * 0.01, method=method, metric="euclidean") == pytest.approx(
        rsa(r, other, method=method, metric="euclidean"), abs=1e-12)


# ---- CKA ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,sigma", [("linear", 1.0), ("rbf", 1.0), ("rbf", 0.4)])
def test_cka_matches_numpy_hsic(kernel, sigma):
    x, y = _random(15, 6, seed=7), _random(15, 9, seed=8)
    assert cka(x, y, kernel=kernel, sigma=sigma) == pytest.approx(_cka_reference(x, y, kernel, sigma), abs=1e-12)


def test_linear_cka_feature_space_formula():
    x, y = _random(20, 5, seed=9), _random(20, 30, seed=10)  # N2 > D: the Gram form must still agree
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert cka(x, y) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cka_invariances_and_range(kernel):
    x, y = _random(16, 6, seed=11), _random(16, 6, seed=12)
    value = cka(x, y, kernel=kernel)
    assert 0 < value < 0.95
    assert cka(x, x, kernel=kernel) == pytest.approx(1.0, abs=1e-12)
    assert cka(x @ _orthogonal(6), y, kernel=kernel) == pytest.approx(value, abs=1e-12)
    assert cka(x, 3.7 * y, kernel=kernel) == pytest.approx(value, abs=1e-12)
    # Linear CKA is not invariant to a general invertible map: a non-orthogonal one changes it.
    if kernel == "linear":
        stretch = np.diag([10.0, 1, 1, 1, 1, 0.1])
        assert abs(cka(x @ stretch, y) - value) > 1e-3


# ---- linear predictivity -----------------------------------------------------------------------------------------

def test_linear_predictivity_recovers_linear_map_and_rejects_noise():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((60, 10))
    y = x @ rng.standard_normal((10, 7)) + 2.0 + 1e-3 * rng.standard_normal((60, 7))
    scores = linear_predictivity(x, y, cv=5)
    assert scores.shape == (7,) and scores.dtype == torch.float64
    assert scores.min() > 0.99
    noise = rng.standard_normal((60, 7))
    assert linear_predictivity(x, noise, cv=5).abs().max() < 0.5


@pytest.mark.parametrize("seed", [None, 0, 3])
def test_linear_predictivity_matches_numpy_ridge(seed):
    x, y = _random(23, 6, seed=14), _random(23, 4, seed=15)
    y = y + x[:, :4]
    order = np.arange(23) if seed is None else torch.randperm(23, generator=torch.Generator().manual_seed(seed)).numpy()
    got = linear_predictivity(x, y, cv=4, ridge=0.3, seed=seed)
    np.testing.assert_allclose(got.numpy(), _predictivity_reference(x, y, 4, 0.3, order), atol=1e-10)


def test_linear_predictivity_more_units_than_conditions_matches_numpy():
    x, y = _random(12, 40, seed=16), _random(12, 3, seed=17)
    y = y + x[:, :3]
    got = linear_predictivity(x, y, cv=3, ridge=0.05, seed=None)
    np.testing.assert_allclose(got.numpy(), _predictivity_reference(x, y, 3, 0.05, np.arange(12)), atol=1e-10)


def test_linear_predictivity_ridge_grid_matches_bruteforce_leave_one_out():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((18, 8))
    y = x[:, :3] + 0.8 * rng.standard_normal((18, 3))
    grid = [1e-3, 0.1, 1.0, 30.0]
    got = linear_predictivity(x, y, cv=3, ridge=grid, seed=None)
    np.testing.assert_allclose(got.numpy(), _predictivity_reference(x, y, 3, grid, np.arange(18)), atol=1e-10)
    # the selection is not vacuous: the grid result differs from at least one fixed penalty
    assert any(not np.allclose(got.numpy(), linear_predictivity(x, y, cv=3, ridge=r, seed=None).numpy())
               for r in grid)


def test_linear_predictivity_independent_of_r1_scale():
    x, y = _random(15, 5, seed=19), _random(15, 2, seed=20)
    torch.testing.assert_close(linear_predictivity(x, y), linear_predictivity(1e3 * x, y), rtol=1e-9, atol=1e-12)


# ---- condition responses -----------------------------------------------------------------------------------------

def test_condition_responses_from_array_window_and_labels():
    rng = np.random.default_rng(21)
    data = rng.standard_normal((7, 10, 3))
    labels = np.array([2, 0, 2, 1, 0, 2, 1])
    t = np.linspace(0.0, 0.9, 10)
    out = condition_responses(data, labels, window=(0.2, 0.5), t=t)
    in_window = (t >= 0.2 - 1e-12) & (t <= 0.5 + 1e-12)
    assert in_window.sum() == 4
    expected = np.stack([data[labels == c][:, in_window].mean((0, 1)) for c in (0, 1, 2)])
    np.testing.assert_allclose(out.responses.numpy(), expected, atol=1e-14)
    assert list(out.conditions) == [0, 1, 2] and out.n_trials.tolist() == [2, 2, 3]
    whole = condition_responses(data, labels)  # no window: every sample
    np.testing.assert_allclose(whole.responses.numpy()[0], data[labels == 0].mean((0, 1)), atol=1e-14)


def test_condition_responses_string_labels_sorted():
    data = np.arange(24, dtype=float).reshape(4, 2, 3)
    out = condition_responses(torch.tensor(data), ["right", "left", "right", "left"])
    assert list(out.conditions) == ["left", "right"]
    np.testing.assert_allclose(out.responses.numpy()[0], data[[1, 3]].mean((0, 1)))


def test_condition_responses_from_recording_column_and_counts():
    rng = np.random.default_rng(22)
    counts = rng.poisson(3.0, (6, 5, 4)).astype(float)
    t = torch.arange(5) * 0.1
    assert t.dtype == torch.float32  # window ends 0.1 and 0.3 sit on the float32 grid up to its rounding
    rec = Recording(t, counts=counts, trials={"coherence": torch.tensor([0.5, -0.5, 0.5, 0.1, -0.5, 0.1])})
    out = condition_responses(rec, "coherence", window=(0.1, 0.3))
    col = rec.trials["coherence"].numpy()
    assert np.array_equal(out.conditions, np.unique(col)) and len(out.conditions) == 3
    raw_mean = np.stack([counts[col == c][:, 1:4].mean((0, 1)) for c in out.conditions])
    np.testing.assert_allclose(out.responses.numpy(), raw_mean / rec.bin_width, rtol=1e-12)
    raw = condition_responses(rec, "coherence", window=(0.1, 0.3), var="counts")
    np.testing.assert_allclose(raw.responses.numpy(), raw_mean, rtol=1e-12)


def test_condition_responses_from_simulated_trajectory_feeds_rsa():
    torch.manual_seed(0)
    model = RateRNN(8, n_in=2, n_out=3).double()
    t = torch.linspace(0, 0.5, 26, dtype=torch.float64)
    levels = torch.tensor([-1.0, -0.5, 0.5, 1.0, -1.0, -0.5, 0.5, 1.0], dtype=torch.float64)
    x = torch.stack([levels, 0.3 * levels**2], 1)
    traj = simulate(model, t, x, solver="euler", dt=0.01)
    out = condition_responses(traj, levels, window=(0.3, 0.5))
    mask = (t >= 0.3 - 1e-12) & (t <= 0.5 + 1e-12)
    expected = torch.stack([traj["r"][levels == c][:, mask].mean((0, 1)) for c in (-1.0, -0.5, 0.5, 1.0)])
    torch.testing.assert_close(out.responses, expected.detach())
    readout = condition_responses(traj, levels, window=(0.3, 0.5), var="outputs")
    assert readout.responses.shape == (4, 3)
    assert rsa(out, out) == pytest.approx(1.0)
    assert -1 <= rsa(out, readout, method="pearson", metric="euclidean") <= 1


# ---- bad input ---------------------------------------------------------------------------------------------------

def test_different_numbers_of_conditions_rejected():
    x, y = _random(6, 3), _random(7, 3)
    for fn in (rsa, cka, linear_predictivity):
        with pytest.raises(ValueError, match="R1 has 6 conditions.*R2 has 7"):
            fn(x, y)


def test_condition_responses_grouped_differently_rejected():
    a = ConditionResponses(torch.tensor(_random(4, 3)), np.array([0, 1, 2, 3]), torch.ones(4))
    b = ConditionResponses(torch.tensor(_random(4, 3)), np.array([0, 1, 2, 4]), torch.ones(4))
    with pytest.raises(ValueError, match="different conditions"):
        rsa(a, b)


def test_rdm_needs_two_conditions():
    with pytest.raises(ValueError, match="responses has 1 condition.*>= 2"):
        rdm(_random(1, 5))
    with pytest.raises(ValueError, match="rsa needs >= 3"):
        rsa(_random(2, 5), _random(2, 5))
    with pytest.raises(ValueError, match=r"cka needs >= 3 \(with 2, the centred kernels have rank 1"):
        cka(_random(2, 5), _random(2, 7))  # (it scored 1.0 for any two random representations)
    assert cka(_random(6, 3), _random(6, 3), kernel="rbf", sigma=np.float32(0.5)) > 0  # numpy numbers are numbers


@pytest.mark.parametrize("call,match", [
    (lambda r: rdm(r, metric="cosine"), "metric must be one of"),
    (lambda r: rsa(r, r, method="kendall"), "method must be 'spearman' or 'pearson'"),
    (lambda r: rsa(r, r, metric="cityblock"), "metric must be one of"),
    (lambda r: cka(r, r, kernel="poly"), "kernel must be 'linear' or 'rbf'"),
    (lambda r: cka(r, r, kernel="rbf", sigma=0.0), "sigma must be a positive"),
    (lambda r: linear_predictivity(r, r, ridge=-1.0), "ridge must be a positive"),
    (lambda r: linear_predictivity(r, r, ridge=[]), "ridge must be a positive"),
])
def test_unknown_options_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call(_random(6, 3))


def test_non_2d_responses_rejected():
    with pytest.raises(ValueError, match=r"responses must be 2-D.*condition_responses"):
        rdm(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="R2 must be 2-D"):
        cka(_random(4, 3), np.zeros(4))
    with pytest.raises(TypeError, match="R1 must be"):
        rsa("abc", _random(4, 3))


def test_nan_responses_rejected():
    bad = _random(5, 3)
    bad[2, 1] = np.nan
    for call in (lambda: rdm(bad), lambda: rsa(_random(5, 3), bad), lambda: cka(bad, bad),
                 lambda: linear_predictivity(_random(5, 3), bad, cv=2)):
        with pytest.raises(ValueError, match="contains NaN"):
            call()


@pytest.mark.parametrize("cv", [1, 7, 2.5, True])
def test_bad_fold_count_rejected(cv):
    with pytest.raises(ValueError, match=r"cv must be an int in \[2, D=6\]"):
        linear_predictivity(_random(6, 3), _random(6, 2), cv=cv)


def test_undefined_correlations_rejected():
    flat_row = _random(5, 4)
    flat_row[3] = 1.0
    with pytest.raises(ValueError, match=r"conditions \[3\].*metric='euclidean'"):
        rdm(flat_row)
    y = _random(10, 3)
    y[:, 1] = 2.0
    with pytest.raises(ValueError, match=r"R2 is constant across conditions for units \[1\]"):
        linear_predictivity(_random(10, 4), y)
    with pytest.raises(ValueError, match="R1 is the same in every condition"):
        cka(np.ones((5, 3)), _random(5, 3))


def test_window_outside_trial_rejected():
    data = _random(4, 3).reshape(2, 2, 3)
    t = np.array([0.0, 1.0])
    for window in [(-0.1, 0.5), (0.5, 1.5), (0.8, 0.2)]:
        with pytest.raises(ValueError, match="window=.*inside the trial"):
            condition_responses(data, [0, 1], window=window, t=t)
    with pytest.raises(ValueError, match="contains no time sample"):
        condition_responses(data, [0, 1], window=(0.2, 0.4), t=t)


def test_condition_labels_rejected():
    data = _random(12, 3).reshape(4, 3, 3)
    with pytest.raises(ValueError, match=r"one label per trial, shape \(B=4,\)"):
        condition_responses(data, [0, 1, 0])
    with pytest.raises(ValueError, match="1 distinct value"):
        condition_responses(data, [5, 5, 5, 5])
    rec = Recording(torch.arange(3) * 0.1, rates=data, trials={"side": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"not a trials column; the columns are \['side'\]"):
        condition_responses(rec, "coherence")
    with pytest.raises(ValueError, match="t is taken from the Recording"):
        condition_responses(rec, "side", t=np.arange(3))
    with pytest.raises(ValueError, match="t must be the \\(T=3,\\) time grid"):
        condition_responses(data, [0, 1, 0, 1], t=np.arange(4))
    with pytest.raises(ValueError, match="source must be a Trajectory, a Recording or a \\(B, T, N\\) array"):
        condition_responses(data[0, 0], [0, 1, 0])


def _proportional_rows(seed=5):
    """Rows a, 2a, 3a, 0.7a and six random rows: exact ties of the correlation RDM that float rounds apart."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(30)
    return np.stack([a * k for k in (1, 2, 3, 0.7)] + list(rng.standard_normal((6, 30))))


def test_rsa_spearman_treats_rounding_apart_distances_as_ties():
    x = _proportional_rows()
    dist = pdist(x, "correlation")
    assert len(np.unique(dist[:6])) > 1  # the six zero distances among a..0.7a are not all exactly equal
    expected = spearmanr(np.round(dist, 12), np.round(pdist(x @ np.diag(np.linspace(1, 2, 30)), "correlation"),
                                                    12))[0]
    assert rsa(x, x @ np.diag(np.linspace(1, 2, 30))) == pytest.approx(expected, abs=1e-12)
    assert rsa(x, 3 * x) == 1.0
    assert rsa(x, x[:, np.random.default_rng(0).permutation(30)]) == pytest.approx(1.0, abs=1e-12)


def _unbiased_hsic(k, l_):
    """Song et al. 2012 (JMLR 13:1393), Eq. 5, written out with traces."""
    n = k.shape[0]
    k, l_, one = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_)), np.ones(n)
    return (np.trace(k @ l_) + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l_ @ one) / (n * (n - 3))


def test_debiased_cka_matches_unbiased_hsic_and_scores_independent_populations_near_zero():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10, 1000)), rng.standard_normal((10, 1000))
    k, l_ = x @ x.T, y @ y.T
    expected = _unbiased_hsic(k, l_) / np.sqrt(_unbiased_hsic(k, k) * _unbiased_hsic(l_, l_))
    assert cka(x, y, debiased=True) == pytest.approx(expected, abs=1e-12)
    assert abs(expected) < 0.1 and cka(x, y) > 0.9  # the biased estimate's bias at D << N
    q = _orthogonal(1000)
    assert cka(x, 2 * x @ q, debiased=True) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="debiased cka needs >= 4"):
        cka(x[:3], y[:3], debiased=True)


def test_cka_is_exact_on_a_large_baseline():
    x = _random(20, 50)
    y = x @ np.random.default_rng(2).standard_normal((50, 40))
    assert cka(x + 1e7, y - 3e6) == pytest.approx(cka(x, y), abs=1e-10)


@pytest.mark.parametrize("value", [0.1, 0.7, 1 / 3, 123.456])
def test_constant_responses_are_rejected_whatever_their_rounding(value):
    varying = _random(6, 4)
    with pytest.raises(ValueError, match=r"conditions \[1\] have the same response"):
        rdm([[1, 2, 3], [value] * 3, [3, 1, 2], [2, 3, 1]])
    with pytest.raises(ValueError, match="R1 is the same in every condition"):
        cka(np.full((6, 4), value), varying)
    with pytest.raises(ValueError, match="R1 is the same in every condition"):
        linear_predictivity(np.full((6, 4), value), varying, cv=3)
    y = varying.copy()
    y[:, 1] = value
    with pytest.raises(ValueError, match=r"R2 is constant across conditions for units \[1\]"):
        linear_predictivity(varying, y, cv=3)


def test_numpy_scalars_accepted_for_seed_and_ridge():
    x, y = _random(12, 4), _random(12, 3, seed=1)
    torch.testing.assert_close(linear_predictivity(x, y, seed=np.int64(3), ridge=np.float32(0.25)),
                               linear_predictivity(x, y, seed=3, ridge=0.25))
    with pytest.raises(TypeError, match="seed"):
        linear_predictivity(x, y, seed=1.5)


def test_condition_responses_from_per_trial_responses_and_array_window():
    a = np.random.default_rng(0).standard_normal((6, 5))
    out = condition_responses(a, [0, 1, 0, 1, 2, 2])
    torch.testing.assert_close(out.responses, torch.as_tensor(np.stack([a[[0, 2]].mean(0), a[[1, 3]].mean(0),
                                                                        a[[4, 5]].mean(0)])))
    with pytest.raises(ValueError, match="no time axis"):
        condition_responses(a, [0, 1, 0, 1, 2, 2], window=(0, 1))
    b = np.random.default_rng(1).standard_normal((4, 10, 3))
    for window in (np.array([2, 5]), torch.tensor([2.0, 5.0]), (torch.tensor(2.0), np.float32(5))):
        torch.testing.assert_close(condition_responses(b, [0, 1, 0, 1], window=window).responses,
                                   condition_responses(b, [0, 1, 0, 1], window=(2, 5)).responses)
    with pytest.raises(ValueError, match="strictly increasing"):
        condition_responses(b, [0, 1, 0, 1], window=(2, 5), t=np.arange(10)[::-1].copy())
    with pytest.raises(TypeError, match="conditions must be labels of one sortable kind"):
        condition_responses(b, [0, None, 0, 1])
