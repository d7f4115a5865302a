"""d′ selectivity and sorting units/connectivity by it (primer Fig. 7, Song et al. 2016)."""

import math

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.analysis.selectivity import dprime, dprime_by_condition, sort_by_selectivity
from neurodyn.data import Recording

D64 = torch.float64


def numpy_dprime(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pooled = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)
    return (a.mean(0) - b.mean(0)) / pooled


def test_dprime_matches_the_formula_with_and_without_a_time_window():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, (7, 5)), rng.normal(0.0, 0.5, (12, 5))
    np.testing.assert_allclose(dprime(a, b).numpy(), numpy_dprime(a, b), rtol=1e-12)
    assert dprime(torch.from_numpy(a).float(), torch.from_numpy(b).float()).dtype == torch.float32
    seq_a, seq_b = rng.normal(size=(6, 10, 4)), rng.normal(0.3, 1.0, (9, 10, 4))
    t = torch.linspace(0, 0.9, 10, dtype=D64)
    got = dprime(torch.from_numpy(seq_a), torch.from_numpy(seq_b), t=t, window=(0.25, 0.6))  # t_3..t_6
    np.testing.assert_allclose(got.numpy(), numpy_dprime(seq_a[:, 3:7].mean(1), seq_b[:, 3:7].mean(1)), rtol=1e-12)
    np.testing.assert_allclose(dprime(seq_a, seq_b).numpy(), numpy_dprime(seq_a.mean(1), seq_b.mean(1)), rtol=1e-12)
    np.testing.assert_allclose(dprime(seq_b, seq_a).numpy(), -dprime(seq_a, seq_b).numpy(), rtol=1e-12)


def test_zero_variance_rule():
    a = np.array([[0.0, 1.0, 2.0, 1.0], [0.0, 1.0, 2.0, 3.0]])
    b = np.array([[0.0, 3.0, 1.0, 1.0], [0.0, 3.0, 1.0, 3.0]])
    assert dprime(a, b).tolist() == [0.0, -math.inf, math.inf, 0.0]


def test_labelled_trials_of_a_trajectory_an_array_and_a_recording_agree():
    gen = torch.Generator().manual_seed(0)
    model = nd.RateRNN(5, 2, 1, W_in=torch.randn(5, 2, dtype=D64))
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 1, 0])
    x = torch.stack([labels.to(D64), 1 - labels.to(D64)], 1) + 0.3 * torch.randn(8, 2, generator=gen, dtype=D64)
    t = torch.linspace(0, 0.5, 11, dtype=D64)
    traj = nd.simulate(model, t, x)
    r = traj["r"].detach()
    direct = dprime(r[labels == 1], r[labels == 0], t=t, window=(0.2, 0.5))
    assert (direct.abs() > 0.5).any()
    torch.testing.assert_close(dprime_by_condition(traj, labels, 1, 0, window=(0.2, 0.5)), direct)
    torch.testing.assert_close(dprime_by_condition(r, labels.numpy(), 1, 0, t=t, window=(0.2, 0.5)), direct)
    names = np.where(labels.numpy() == 1, "left", "right")
    torch.testing.assert_close(dprime_by_condition(r, names, "left", "right", t=t, window=(0.2, 0.5)), direct)
    y = traj.outputs.detach()
    torch.testing.assert_close(dprime_by_condition(traj, labels, 1, 0, var="outputs"),
                               dprime(y[labels == 1], y[labels == 0]))
    recording = Recording(t=t, rates=r, trials={"choice": labels})
    torch.testing.assert_close(dprime_by_condition(recording, "choice", 1, 0, window=(0.2, 0.5)), direct)


def test_planted_selective_units_sort_first_and_last_and_w_is_permuted_consistently():
    gen = torch.Generator().manual_seed(2)
    n, trials = 12, 40
    labels = torch.arange(trials) % 2  # choice 1 = label 1
    rates = torch.randn(trials, n, generator=gen, dtype=D64)
    rates[:, [4, 9]] += 3.0 * labels[:, None]  # prefer choice 1
    rates[:, 6] += 3.0 * (1 - labels)  # prefers choice 2
    d = dprime_by_condition(rates, labels, 1, 0)
    W = torch.randn(n, n, generator=gen, dtype=D64)
    result = sort_by_selectivity(d, W)
    assert set(result.order[:2].tolist()) == {4, 9} and int(result.order[-1]) == 6
    assert sorted(result.order.tolist()) == list(range(n))
    assert torch.all(result.selectivity[:-1] >= result.selectivity[1:])
    torch.testing.assert_close(result.selectivity, d[result.order])
    for i in range(n):
        for j in range(n):
            assert result.W[i, j] == W[result.order[i], result.order[j]]
    # E/I groups as in Fig. 7: excitatory block first, each block sorted by selectivity
    sign = np.array([1] * 8 + [-1] * 4)
    grouped = sort_by_selectivity(d.numpy(), groups=sign)
    assert set(grouped.order[:8].tolist()) == set(range(8)) and int(grouped.order[0]) == 4
    assert set(grouped.order[8:].tolist()) == set(range(8, 12)) and int(grouped.order[8]) == 9
    for block in (grouped.selectivity[:8], grouped.selectivity[8:]):
        assert torch.all(block[:-1] >= block[1:])
    assert grouped.W is None
    # ties keep the original order
    assert sort_by_selectivity(torch.tensor([0.0, 1.0, 0.0, 1.0])).order.tolist() == [1, 3, 0, 2]


def test_bad_input_is_rejected():
    a, b = np.ones((3, 4)), np.zeros((5, 4))
    with pytest.raises(ValueError, match="at least 2 trials"):
        dprime(a[:1], b)
    with pytest.raises(ValueError, match="same"):
        dprime(a, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        dprime(np.where(np.eye(3, 4) > 0, np.nan, a), b)
    seq = np.zeros((3, 6, 4))
    with pytest.raises(ValueError, match="pass t"):
        dprime(seq, seq, window=(0.0, 1.0))
    t = torch.linspace(0, 1, 6, dtype=D64)
    with pytest.raises(ValueError, match="inside the trial"):
        dprime(seq, seq, t=t, window=(0.5, 1.5))
    with pytest.raises(ValueError, match="no time axis"):
        dprime(a, b, window=(0.0, 1.0))
    with pytest.raises(TypeError, match="activity_a"):
        dprime("1 2", b)
    with pytest.raises(TypeError, match="activity_a must be a numeric"):
        dprime([[1.0, "x"], [2.0, 3.0]], b)
    labels = np.array([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="condition_a=0 labels 1 trial"):
        dprime_by_condition(np.zeros((5, 4)), np.array([0, 1, 1, 1, 1]), 0, 1)
    with pytest.raises(ValueError, match="one label per trial"):
        dprime_by_condition(np.zeros((4, 4)), labels, 0, 1)
    with pytest.raises(ValueError, match="must differ"):
        dprime_by_condition(np.zeros((5, 4)), labels, 1, 1)
    with pytest.raises(ValueError, match="trials column"):
        dprime_by_condition(np.zeros((5, 4)), "choice", 0, 1)
    with pytest.raises(ValueError, match="no time axis"):
        dprime_by_condition(np.zeros((5, 4)), labels, 0, 1, window=(0.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        sort_by_selectivity(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        sort_by_selectivity(torch.tensor([0.0, 1.0]), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="one label per unit"):
        sort_by_selectivity(torch.tensor([0.0, 1.0]), groups=[1, 1, -1])


def test_dprime_of_constant_units_ignores_float_rounding():
    # the means of 3 and of 7 copies of 0.7 differ by 2e-16, and their variances are ~1e-32, not 0
    a, b = torch.full((3, 2), 0.7, dtype=torch.float64), torch.full((7, 2), 0.7, dtype=torch.float64)
    assert dprime(a, b).tolist() == [0.0, 0.0]
    third = torch.full((3, 1), 0.1, dtype=torch.float64) * 3
    assert dprime(third, torch.full((5, 1), 0.3, dtype=torch.float64)).tolist() == [0.0]
    assert dprime(a + 1, b).tolist() == [math.inf, math.inf]


def test_dprime_accepts_nested_lists():
    a, b = [[1.0, 2.0], [2.0, 3.0], [3.0, 3.0]], [[0.0, 1.0], [1.0, 2.0]]
    as64 = {"dtype": torch.float64}
    torch.testing.assert_close(dprime(a, b), dprime(torch.tensor(a, **as64), torch.tensor(b, **as64)))
