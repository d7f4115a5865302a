"""Task variance of each unit and clustering of units by their task profiles (primer Fig. 5).

Yang, Joglekar, Song, Newsome & Wang (2019), "Task representations in neural
networks trained to perform many cognitive tasks", Nat. Neurosci. 22:297. For
unit ``i`` and task ``A`` with activity ``r[b, k, i]`` on trial ``b`` at time
step ``k``, the task variance is the variance across trials (stimulus
conditions) at each time, averaged over the analysed times ``K_A``::

    TV[A, i] = 1/|K_A| sum_{k in K_A} 1/B_k sum_b (r[b, k, i] - rbar[k, i])^2,   rbar[k, i] = mean_b r[b, k, i]

(``B_k`` trials present at step ``k``; times with fewer than two are skipped).
Units whose summed variance over tasks does not exceed ``threshold`` are
inactive; the others are normalized by their maximum over tasks,
``values[A, i] = TV[A, i] / max_A TV[A, i]`` in [0, 1]. Units are then grouped
by hierarchical clustering of these profiles, the number of clusters chosen by
the silhouette score, as in Yang et al.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.cluster.hierarchy import cut_tree, leaves_list, linkage
from scipy.spatial.distance import pdist, squareform
from torch import Tensor

from ..data.recording import Recording
from ..errors import ArgumentTypeError
from ..selection import state_var, unit_indices
from ..simulate import simulate
from ..tasks.base import Task, TaskBatch, check_batch_size
from ..trajectory import Trajectory
from ._activity import as_float, source_activity
from ._checks import check_model

METHODS = ("ward", "average")


@dataclass
class TaskVariance:
    """Task variance of ``N`` units in ``n_tasks`` tasks.

    ``values (n_tasks, N)``: the profiles, normalized per unit by its maximum
    over tasks when ``normalized`` (0 for inactive units), else equal to
    ``raw``; ``raw (n_tasks, N)``: the unnormalized task variance; ``active
    (N,)``: units whose summed variance over tasks exceeds ``threshold``;
    ``units (N,)``: each column's index in the original activity; ``tasks``:
    the task names, one per row.
    """

    tasks: list[str]
    values: Tensor
    raw: Tensor
    active: Tensor
    units: Tensor
    threshold: float
    normalized: bool

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_units(self) -> int:
        return self.values.shape[1]


@dataclass
class UnitClusters:
    """Clusters of units by their task-variance profiles.

    ``labels (N,)``: cluster 0..n_clusters-1 of each unit (-1 for inactive
    units), clusters numbered by their preferred task (the argmax of their
    summed profile), as Yang et al. did; ``order (n_active,)``: the active
    units' columns sorted by cluster, then by the dendrogram's leaf order;
    ``silhouette``: the mean silhouette score of each number of clusters tried;
    ``linkage``: scipy's ``(n_active - 1, 4)`` linkage matrix over the active units.
    """

    labels: Tensor
    order: Tensor
    n_clusters: int
    silhouette: dict[int, float]
    linkage: np.ndarray


def task_variance(
    model: Any,
    tasks: Mapping[str, Task] | Sequence[Task],
    *,
    batch_size: int = 64,
    var: str | None = None,
    epochs: str | Sequence[str] | None = None,
    units: Any = None,
    normalize: bool = True,
    threshold: float = 1e-3,
    input_noise: bool = False,
    seed: int = 0,
    solver: str = "euler",
    dt: float | None = None,
) -> TaskVariance:
    """Each unit's (normalized) task variance in every task (Yang et al. 2019).

    For each task, ``batch_size`` trials are sampled (one ``torch.Generator``
    seeded with ``seed``, used for the tasks in turn), the model is run on
    them with :func:`neurodyn.simulate` (``solver``, ``dt``; no recurrent
    noise), and :func:`task_variance_from_activity` is applied to state
    variable ``var`` (default the first, e.g. ``"r"``).

    Args:
        tasks: ``{name: Task}`` or a list of tasks (named by their class).
            Every task must have the model's ``n_in``.
        epochs: the epoch name(s) whose time steps are analysed; default every
            epoch except fixation (names containing "fix"), as Yang et al.
        units: indices of the units to keep (default all).
        input_noise: keep the tasks' input noise; by default trials are
            noiseless, as in Yang et al., so that the variance is across stimulus conditions.
        threshold: units with ``sum_A TV[A, i] <= threshold`` are inactive (Yang et al.: 1e-3).
    """
    model = check_model(model)
    named = _named_tasks(tasks)
    batch_size = check_batch_size(batch_size)
    variable = state_var(model, var)
    generator = torch.Generator().manual_seed(int(seed))
    activity, masks = {}, {}
    for name, task in named.items():
        if task.n_in != model.n_in:
            raise ValueError(f"task {name!r} has n_in={task.n_in} but the model has n_in={model.n_in}; give tasks "
                             "that share the model's input space (e.g. padded, with rule inputs), or simulate them "
                             "yourself and call task_variance_from_activity")
        if not input_noise and task.sigma > 0:
            task = copy.copy(task)
            task.sigma = 0.0
        batch = task.sample(batch_size, generator).to(model.device, model.dtype)
        with torch.no_grad():
            traj = simulate(model, batch.t, batch.x, solver=solver, dt=dt)
        activity[name] = traj[variable]
        masks[name] = epoch_mask(batch, epochs)
    return task_variance_from_activity(activity, masks, units=units, normalize=normalize, threshold=threshold)


def task_variance_from_activity(
    activity: Mapping[str, Any] | Sequence[Any],
    mask: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    var: str | None = None,
    units: Any = None,
    normalize: bool = True,
    threshold: float = 1e-3,
) -> TaskVariance:
    """Task variance from activity already recorded or simulated, one entry per task.

    ``activity`` maps each task name to a ``(B, T, N)`` tensor or array, a
    :class:`~neurodyn.Trajectory` (state variable ``var``, default the first)
    or a :class:`~neurodyn.data.Recording` (its firing rates); a list is
    named "0", "1", ... Every task needs the same ``N``; ``B`` and ``T`` may
    differ. ``mask`` gives, per task, the ``(B, T)`` samples to use (e.g.
    an epoch, or the samples inside trials of unequal length); default all.
    See the module docstring for the formula, ``threshold`` and normalization.
    """
    named = _as_mapping(activity, "activity")
    masks = {} if mask is None else _as_mapping(mask, "mask")
    extra = [k for k in masks if k not in named]
    if extra:
        raise ValueError(f"mask has tasks {extra} that are not in activity {list(named)}")
    arrays = {name: _activity_tensor(name, value, var) for name, value in named.items()}
    widths = {name: a.shape[2] for name, a in arrays.items()}
    if len(set(widths.values())) > 1:
        raise ValueError(f"every task needs the same number of units N; got {widths}")
    n = next(iter(widths.values()))
    index = torch.arange(n) if units is None else unit_indices(units, n, "units", "the activity")
    if index.numel() == 0:
        raise ValueError("units is empty; give at least one unit index (or None for all)")
    raw = torch.stack([_variance(a[..., index], _sample_mask(name, masks.get(name), a.shape[:2]), name)
                       for name, a in arrays.items()])
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0; got {threshold!r}")
    active = raw.sum(0) > threshold
    values = raw
    if normalize:
        peak = raw.max(0).values
        values = torch.where(active, raw / torch.where(active, peak, torch.ones_like(peak)), torch.zeros_like(raw))
    return TaskVariance(tasks=list(arrays), values=values, raw=raw, active=active, units=index,
                        threshold=float(threshold), normalized=bool(normalize))


def epoch_mask(batch: TaskBatch, epochs: str | Sequence[str] | None = None) -> Tensor:
    """The ``(B, T)`` samples of ``batch`` inside the chosen ``epochs`` (default: all but fixation).

    Uses ``batch.info["epochs"]`` (``{name: (B, 2)`` [start, stop) steps``}``);
    a batch without epochs contributes all its samples (and ``epochs`` must be None).
    """
    windows = batch.info.get("epochs") or {}
    steps = batch.t.shape[0]
    if not windows:
        if epochs is not None:
            raise ValueError(f"epochs={epochs!r} was given but the task's trials have no epochs; use epochs=None")
        return torch.ones(batch.batch_size, steps, dtype=torch.bool)
    if epochs is None:
        chosen = [name for name in windows if "fix" not in name.lower()] or list(windows)
    else:
        chosen = [epochs] if isinstance(epochs, str) else list(epochs)
        missing = [name for name in chosen if name not in windows]
        if not chosen or missing:
            raise ValueError(f"epochs must name some of the task's epochs {list(windows)}; got {epochs!r}")
    k = torch.arange(steps)
    inside = torch.zeros(batch.batch_size, steps, dtype=torch.bool)
    for name in chosen:
        window = windows[name].cpu()
        inside |= (k >= window[:, :1]) & (k < window[:, 1:])
    return inside


def cluster_units(
    tv: TaskVariance,
    n_clusters: int | None = None,
    *,
    method: str = "ward",
    metric: str = "euclidean",
    max_clusters: int = 30,
) -> UnitClusters:
    """Hierarchical clustering of the active units' task-variance profiles (Yang et al. 2019, Fig. 5).

    ``method`` is scipy's linkage, "ward" (Euclidean only) or "average" (any
    ``scipy.spatial.distance.pdist`` ``metric``). With ``n_clusters=None`` the
    number of clusters ``k`` in ``2..min(max_clusters, n_active - 1)`` that
    maximizes the mean silhouette score (:func:`silhouette_score`) is chosen
    (the smallest such ``k`` on ties); the tree is cut into exactly ``k``
    clusters (``scipy.cluster.hierarchy.cut_tree``).
    """
    if not isinstance(tv, TaskVariance):
        raise ArgumentTypeError(f"tv must be a TaskVariance (from task_variance); got {type(tv).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "ward" and metric != "euclidean":
        raise ValueError(f'method="ward" needs metric="euclidean"; got {metric!r} (use method="average")')
    columns = torch.nonzero(tv.active).flatten().numpy()
    n_active = len(columns)
    if n_active < 2:
        raise ValueError(f"clustering needs at least 2 active units; got {n_active} (lower tv's threshold)")
    profiles = tv.values[:, columns].T.numpy()
    distances = pdist(profiles, metric=metric)
    tree = linkage(distances, method=method)
    square = squareform(distances)
    scores: dict[int, float] = {}
    if n_clusters is None:
        if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 2:
            raise ValueError(f"max_clusters must be an int >= 2; got {max_clusters!r}")
        candidates = range(2, min(max_clusters, n_active - 1) + 1)
        if not candidates:
            raise ValueError(f"choosing the number of clusters needs at least 3 active units; got {n_active}, "
                             "give n_clusters")
        cuts = {k: cut_tree(tree, n_clusters=k).ravel() for k in candidates}
        scores = {k: _silhouette(square, labels) for k, labels in cuts.items()}
        n_clusters = max(scores, key=lambda k: (scores[k], -k))
        raw = cuts[n_clusters]
    else:
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) \
                or not 1 <= n_clusters <= n_active:
            raise ValueError(f"n_clusters must be an int in [1, n_active={n_active}]; got {n_clusters!r}")
        n_clusters = int(n_clusters)
        raw = cut_tree(tree, n_clusters=n_clusters).ravel()
        if 2 <= n_clusters < n_active:
            scores[n_clusters] = _silhouette(square, raw)
    rank = np.empty(n_active, dtype=np.int64)
    rank[leaves_list(tree)] = np.arange(n_active)
    key = {c: (int(profiles[raw == c].sum(0).argmax()), int(rank[raw == c].min())) for c in np.unique(raw)}
    relabel = {c: i for i, c in enumerate(sorted(key, key=key.get))}
    local = np.array([relabel[c] for c in raw], dtype=np.int64)
    labels = torch.full((tv.n_units,), -1, dtype=torch.long)
    labels[torch.as_tensor(columns)] = torch.as_tensor(local)
    order = torch.as_tensor(columns[np.lexsort((rank, local))])
    return UnitClusters(labels=labels, order=order, n_clusters=n_clusters, silhouette=scores, linkage=tree)


def silhouette_score(points: Any, labels: Any, *, metric: str = "euclidean") -> float:
    """Mean silhouette ``s_i = (b_i - a_i) / max(a_i, b_i)`` of ``points (n, d)`` clustered by ``labels (n,)``.

    ``a_i``: mean distance to the other members of its cluster; ``b_i``: the
    smallest mean distance to another cluster; ``s_i = 0`` in a singleton
    cluster (Rousseeuw 1987). Needs ``2 <= n_clusters <= n - 1``.
    """
    x = np.asarray(points.detach().cpu() if isinstance(points, Tensor) else points, dtype=np.float64)
    lab = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels).ravel()
    if x.ndim != 2 or lab.shape[0] != x.shape[0]:
        raise ValueError(f"points must be (n, d) and labels (n,); got {x.shape} and {lab.shape}")
    k = len(np.unique(lab))
    if not 2 <= k <= x.shape[0] - 1:
        raise ValueError(f"the silhouette needs 2 <= n_clusters <= n - 1 = {x.shape[0] - 1}; got {k} clusters")
    if not np.isfinite(x).all():
        raise ValueError("points contain NaN or Inf")
    return _silhouette(squareform(pdist(x, metric=metric)), lab)


def _silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    _, member = np.unique(labels, return_inverse=True)
    onehot = np.eye(member.max() + 1)[member]
    sums = distances @ onehot
    sizes = onehot.sum(0)
    own = np.arange(len(member)), member
    a = sums[own] / np.maximum(sizes[member] - 1, 1)
    mean = sums / sizes
    mean[own] = np.inf
    b = mean.min(1)
    spread = np.maximum(a, b)
    s = np.where((sizes[member] > 1) & (spread > 0), (b - a) / np.where(spread > 0, spread, 1), 0.0)
    return float(s.mean())


def _named_tasks(tasks: Any) -> dict[str, Task]:
    named = _as_mapping(tasks, "tasks", lambda i, task: type(task).__name__)
    for name, task in named.items():
        if not isinstance(task, Task):
            raise ArgumentTypeError(f"tasks[{name!r}] must be a neurodyn Task; got {type(task).__name__}")
    return named


def _as_mapping(value: Any, name: str, label: Any = None) -> dict[str, Any]:
    """``{name: item}`` from a mapping or a sequence (items named by ``label(i, item)``, default ``str(i)``)."""
    if isinstance(value, Mapping):
        out = {str(k): v for k, v in value.items()}
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = {}
        for i, item in enumerate(value):
            key = label(i, item) if label else str(i)
            out[key if key not in out else f"{key} ({i})"] = item
    else:
        raise ArgumentTypeError(f"{name} must be a dict {{task: ...}} or a list; got {type(value).__name__}")
    if not out:
        raise ValueError(f"{name} is empty; give at least one task")
    return out


def _activity_tensor(name: str, value: Any, var: str | None) -> Tensor:
    if not isinstance(value, (Trajectory, Recording, Tensor, np.ndarray, list, tuple)):
        raise ArgumentTypeError(f"activity[{name!r}] must be a (B, T, N) tensor or array, a Trajectory or a "
                                f"Recording; got {type(value).__name__}")
    if not isinstance(value, (Trajectory, Recording)):
        value, var = as_float(value, f"activity[{name!r}]"), None
        if value.dim() != 3:
            raise ValueError(f"activity[{name!r}] must be (B, T, N); got shape {tuple(value.shape)}")
    value = source_activity(value, var, None)[0].cpu()
    if value.shape[0] < 2 or value.shape[1] < 1 or value.shape[2] < 1:
        raise ValueError(f"activity[{name!r}] must be (B, T, N) with B >= 2 trials; got shape {tuple(value.shape)}")
    return value


def _sample_mask(name: str, value: Any, shape: torch.Size) -> Tensor:
    if value is None:
        return torch.ones(shape, dtype=torch.bool)
    if not isinstance(value, Tensor):
        value = torch.as_tensor(np.asarray(value))
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"mask[{name!r}] must be (B, T)={tuple(shape)} like its activity; got {tuple(value.shape)}")
    return value.detach().cpu() > 0


def _variance(a: Tensor, inside: Tensor, name: str) -> Tensor:
    """``(N,)``: the variance across trials at each time (samples ``inside``), averaged over times."""
    if not torch.isfinite(a[inside]).all():
        raise ValueError(f"activity[{name!r}] contains NaN or Inf inside the mask/epochs; the simulation or "
                         "recording diverged (padding outside the mask may be NaN)")
    a = torch.where(inside[..., None], a, 0.0)  # NaN padding outside the mask would poison the sums
    w = inside.to(a.dtype)[..., None]
    count = w.sum(0)
    used = count[:, 0] >= 2
    if not used.any():
        raise ValueError(f"task {name!r} has no time step with at least 2 trials inside the mask/epochs; "
                         "give more trials or a wider mask")
    mean = (w * a).sum(0) / count.clamp_min(1)
    var = (w * (a - mean) ** 2).sum(0) / count.clamp_min(1)
    return var[used].mean(0)
