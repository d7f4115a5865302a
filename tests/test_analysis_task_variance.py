"""Task variance and clustering of units by task profiles (Yang et al. 2019; primer Fig. 5)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.analysis.task_variance import (
    TaskVariance,
    cluster_units,
    epoch_mask,
    silhouette_score,
    task_variance,
    task_variance_from_activity,
)
from neurodyn.data import Recording
from neurodyn.plot import task_variance as plot_task_variance
from neurodyn.tasks import ParametricWorkingMemory, PerceptualDecisionMaking

# Planted population: each group of units is driven in its own subset of 4 tasks.
GROUPS = {0: (0, 1), 1: (2,), 2: (1, 3)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _planted(per_group: int = 8, n_silent: int = 2, seed: int = 0):
    """Activity (B, T, N) per task: a unit of group g follows a stimulus-dependent signal in g's tasks and
    a trial-independent time course (plus small noise) elsewhere; the last ``n_silent`` units are constant."""
    rng = np.random.default_rng(seed)
    B, T = 12, 20
    groups = np.repeat(np.arange(len(GROUPS)), per_group)
    n = len(groups) + n_silent
    time = np.linspace(0, 1, T)
    activity = {}
    for task in range(4):
        stim = rng.normal(size=(B, 1))
        a = np.tile(np.sin(np.pi * time)[None, :, None], (B, 1, n)) + 0.02 * rng.normal(size=(B, T, n))
        for i, g in enumerate(groups):
            if task in GROUPS[g]:
                a[:, :, i] += rng.uniform(0.8, 1.2) * stim * np.sin(2 * np.pi * time)[None]
        a[:, :, len(groups):] = 0.5
        activity[f"task{task}"] = a
    return activity, groups


def _partition(labels):
    labels = np.asarray(labels)
    return {frozenset(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def _silhouette_by_definition(x, labels):
    n = len(x)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    s = np.zeros(n)
    for i in range(n):
        same = [j for j in range(n) if labels[j] == labels[i] and j != i]
        if not same:
            continue
        a = d[i, same].mean()
        b = min(d[i, labels == c].mean() for c in set(labels) if c != labels[i])
        s[i] = (b - a) / max(a, b)
    return s.mean()


def test_numbers_match_a_direct_numpy_computation_of_the_formula():
    rng = np.random.default_rng(1)
    activity = {"a": rng.normal(size=(7, 9, 5)), "b": 3 * rng.normal(size=(4, 6, 5)) ** 2}
    tv = task_variance_from_activity(activity)
    raw = np.stack([a.var(axis=0).mean(axis=0) for a in activity.values()])
    np.testing.assert_allclose(tv.raw.numpy(), raw, rtol=1e-12)
    np.testing.assert_allclose(tv.values.numpy(), raw / raw.max(0), rtol=1e-12)
    assert tv.tasks == ["a", "b"] and tv.active.all() and tv.values.max(0).values.eq(1).all()
    # a mask restricts the samples: trials of unequal length padded with junk, one epoch
    a = activity["a"]
    mask = np.ones(a.shape[:2], bool)
    mask[:3, 6:] = False  # three short trials
    padded = a.copy()
    padded[~mask] = 1e6
    masked = task_variance_from_activity({"a": padded}, {"a": mask}, normalize=False)
    expected = np.mean([a[mask[:, k], k].var(axis=0) for k in range(a.shape[1])], axis=0)
    np.testing.assert_allclose(masked.raw[0].numpy(), expected, rtol=1e-12)
    assert torch.equal(masked.values, masked.raw)
    # a subset of units, and the same numbers from a Recording
    sub = task_variance_from_activity(activity, units=[4, 0])
    np.testing.assert_allclose(sub.raw.numpy(), raw[:, [4, 0]], rtol=1e-12)
    assert sub.units.tolist() == [4, 0]
    rec = Recording(torch.arange(9.0), rates=torch.as_tensor(activity["a"]))
    np.testing.assert_allclose(task_variance_from_activity([rec]).raw[0].numpy(), raw[0], rtol=1e-12)


def test_a_unit_silent_in_a_task_has_zero_variance_there_and_inactive_units_are_flagged():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 8, 4)), rng.normal(size=(10, 8, 4))
    a[:, :, 1] = 0.0  # unit 1 silent in task A
    b[:, :, 3] = 0.0
    a[:, :, 3] = 2.0 + 1e-4 * rng.normal(size=(10, 8))  # unit 3: constant in A, silent in B -> negligible
    tv = task_variance_from_activity({"A": a, "B": b})
    assert tv.raw[0, 1] == 0 and tv.values[0, 1] == 0 and tv.values[1, 1] == 1
    assert tv.active.tolist() == [True, True, True, False]
    assert tv.values[:, 3].eq(0).all()
    assert task_variance_from_activity({"A": a, "B": b}, threshold=0).active.all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["ward", "average"])
def test_clustering_recovers_planted_groups_and_silhouette_finds_their_number(method, seed):
    activity, groups = _planted(seed=seed)
    tv = task_variance_from_activity(activity)
    assert tv.active.tolist() == [True] * len(groups) + [False, False]
    clusters = cluster_units(tv, method=method)
    assert clusters.n_clusters == len(GROUPS)
    assert max(clusters.silhouette, key=clusters.silhouette.get) == len(GROUPS)
    assert _partition(clusters.labels[: len(groups)]) == _partition(groups)
    assert clusters.labels[len(groups):].tolist() == [-1, -1]
    # clusters are numbered by their preferred task (argmax of the summed profile)
    preferred = [int(tv.values[:, clusters.labels == c].sum(1).argmax()) for c in range(clusters.n_clusters)]
    assert preferred == sorted(preferred)
    ordered = clusters.labels[clusters.order]
    assert torch.all(ordered[1:] >= ordered[:-1]) and sorted(clusters.order.tolist()) == list(range(len(groups)))


def test_silhouette_scores_follow_the_definition():
    activity, _ = _planted(per_group=5)
    tv = task_variance_from_activity(activity)
    chosen = cluster_units(tv, max_clusters=6)
    assert sorted(chosen.silhouette) == [2, 3, 4, 5, 6]
    profiles = tv.values[:, tv.active].T.numpy()
    for k in (2, 3, 5):
        labels = cluster_units(tv, n_clusters=k).labels[tv.active].numpy()
        assert len(np.unique(labels)) == k
        score = _silhouette_by_definition(profiles, labels)
        assert silhouette_score(profiles, labels) == pytest.approx(score, rel=1e-12)
        assert chosen.silhouette[k] == pytest.approx(score, rel=1e-12)


def test_silhouette_of_a_hand_computed_example():
    # clusters {0, 1} and {10}: s = (b - a) / max(a, b) with a = 1 and b = 10 or 9; a singleton scores 0
    x = np.array([[0.0], [1.0], [10.0]])
    s0, s1 = (10 - 1) / 10, (9 - 1) / 9
    assert silhouette_score(x, [0, 0, 1]) == pytest.approx((s0 + s1 + 0) / 3)
    with pytest.raises(ValueError, match="n_clusters"):
        silhouette_score(x, [0, 0, 0])


def test_task_variance_on_a_rate_rnn_and_two_tasks(one_thread):
    model = nd.RateRNN(24, n_in=3, n_out=3, g=1.2)
    tasks = {"decision": PerceptualDecisionMaking(dt=0.02), "memory": ParametricWorkingMemory(dt=0.02)}
    tv = task_variance(model, tasks, batch_size=16)
    assert isinstance(tv, TaskVariance)
    assert tv.tasks == ["decision", "memory"]
    assert tv.values.shape == tv.raw.shape == (2, 24) and tv.active.shape == (24,)
    assert tv.active.any() and torch.all((tv.values >= 0) & (tv.values <= 1))
    assert torch.allclose(tv.values[:, tv.active].max(0).values, torch.ones(1, dtype=tv.values.dtype))
    # reproducible, and equal to the same trials simulated by hand
    again = task_variance(model, list(tasks.values()), batch_size=16)
    assert again.tasks == ["PerceptualDecisionMaking", "ParametricWorkingMemory"]
    assert torch.equal(again.raw, tv.raw)
    generator = torch.Generator().manual_seed(0)
    activity, masks, decision = {}, {}, {}
    for name, task in tasks.items():
        task.sigma = 0.0  # task_variance runs noiseless trials by default
        batch = task.sample(16, generator)
        activity[name] = nd.simulate(model, batch.t, batch.x)
        masks[name] = epoch_mask(batch)
        decision[name] = epoch_mask(batch, "decision")
        fixation = batch.info["epochs"]["fixation"]
        assert not masks[name][0, : int(fixation[0, 1])].any() and masks[name][0, int(fixation[0, 1])]
    torch.testing.assert_close(task_variance_from_activity(activity, masks).raw, tv.raw)
    only_decision = task_variance(model, tasks, batch_size=16, epochs="decision")
    torch.testing.assert_close(only_decision.raw, task_variance_from_activity(activity, decision).raw)
    assert not torch.allclose(only_decision.raw, tv.raw)
    clusters = cluster_units(tv, n_clusters=2)
    assert clusters.labels.shape == (24,) and clusters.n_clusters == 2


def test_plot_draws_the_unit_by_task_matrix_with_cluster_bars():
    activity, groups = _planted()
    tv = task_variance_from_activity(activity)
    clusters = cluster_units(tv)
    ax = plot_task_variance(tv, clusters)
    (image,) = [im for im in ax.get_images() if im.get_gid() == "task-variance"]
    shown = image.get_array()
    assert shown.shape == (4, len(groups))
    np.testing.assert_array_equal(shown, tv.values[:, clusters.order].numpy())
    assert image.get_clim() == (0.0, 1.0)
    bars = [c for child in ax.child_axes for c in child.collections if c.get_gid() == "cluster-bars"]
    assert len(bars) == clusters.n_clusters
    assert sum(bar.get_paths()[0].get_extents().width for bar in bars) == pytest.approx(len(groups))
    assert [t.get_text() for t in ax.get_yticklabels()] == tv.tasks
    ax.figure.canvas.draw()
    plain = plot_task_variance(tv)
    assert plain.get_images()[0].get_array().shape == (4, len(groups))


def test_bad_input_raises_with_the_argument_named():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 6, 4))
    with pytest.raises(ValueError, match="empty"):
        task_variance_from_activity({})
    with pytest.raises(ValueError, match="empty"):
        task_variance(nd.RateRNN(4, n_in=3), [])
    with pytest.raises(ValueError, match="same number of units"):
        task_variance_from_activity({"a": a, "b": a[..., :3]})
    nan = a.copy()
    nan[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        task_variance_from_activity({"a": nan})
    with pytest.raises(ValueError, match="units contains index 4"):
        task_variance_from_activity({"a": a}, units=[0, 4])
    with pytest.raises(TypeError, match="units"):
        task_variance_from_activity({"a": a}, units=[0.5])
    with pytest.raises(ValueError, match="B >= 2"):
        task_variance_from_activity({"a": a[:1]})
    with pytest.raises(ValueError, match=r"mask\['a'\]"):
        task_variance_from_activity({"a": a}, {"a": np.ones((5, 5))})
    with pytest.raises(ValueError, match="threshold"):
        task_variance_from_activity({"a": a}, threshold=-1)
    with pytest.raises(TypeError, match="activity"):
        task_variance_from_activity({"a": "rates"})
    with pytest.raises(ValueError, match="n_in"):
        task_variance(nd.RateRNN(4, n_in=2), [PerceptualDecisionMaking()])
    with pytest.raises(TypeError, match="Task"):
        task_variance(nd.RateRNN(4, n_in=3), ["decision"])
    with pytest.raises(ValueError, match="epochs"):
        task_variance(nd.RateRNN(4, n_in=3), [PerceptualDecisionMaking()], epochs="response", batch_size=4)
    with pytest.raises(ValueError, match="var"):
        task_variance(nd.RateRNN(4, n_in=3), [PerceptualDecisionMaking()], var="v")
    tv = task_variance_from_activity({"a": a, "b": rng.normal(size=(5, 6, 4))})
    for k in (0, 5, 2.0):
        with pytest.raises(ValueError, match="n_clusters"):
            cluster_units(tv, n_clusters=k)
    with pytest.raises(ValueError, match="method"):
        cluster_units(tv, method="single")
    with pytest.raises(ValueError, match="ward"):
        cluster_units(tv, metric="cosine")
    with pytest.raises(ValueError, match="max_clusters"):
        cluster_units(tv, max_clusters=1)
    with pytest.raises(TypeError, match="TaskVariance"):
        cluster_units(tv.values)
    silent = task_variance_from_activity({"a": np.zeros((3, 4, 3))})
    with pytest.raises(ValueError, match="active"):
        cluster_units(silent)
    with pytest.raises(ValueError, match="active"):
        plot_task_variance(silent)



def test_nan_padding_outside_the_mask_is_ignored():
    """Trials of unequal length padded with NaN: only the masked samples count (and NaN inside is an error)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5, 10, 3, generator=gen, dtype=torch.float64)
    a[:, 7:] = math.nan
    mask = torch.ones(5, 10, dtype=torch.bool)
    mask[:, 7:] = False
    other = torch.randn(4, 8, 3, generator=gen, dtype=torch.float64)
    tv = task_variance_from_activity({"A": a, "B": other}, {"A": mask})
    torch.testing.assert_close(tv.raw[0], a[:, :7].var(0, unbiased=False).mean(0))
    with pytest.raises(ValueError, match="NaN or Inf inside the mask"):
        task_variance_from_activity({"A": a, "B": other})
