"""Task-variance tuning: the unit-by-task matrix with cluster bars (primer Fig. 5; Yang et al. 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.task_variance import TaskVariance, UnitClusters
from ..errors import ArgumentTypeError
from ._common import axes, to_numpy


def task_variance(tv: TaskVariance, clusters: UnitClusters | None = None, *, ax: Any = None,
                       cmap: str = "hot") -> Any:
    """The active units' task-variance profiles as an image: units on x, tasks on y, colour 0..1.

    With ``clusters`` (from :func:`neurodyn.analysis.task_variance.cluster_units`)
    the units follow ``clusters.order`` and a bar under the image marks each
    cluster in its own colour, numbered from 1 as in the primer's Fig. 5;
    without, the active units are shown in their original order.

    Returns:
        The Axes. The image (gid ``"task-variance"``) is ``(n_tasks, n_shown)``;
        the cluster bars (gid ``"cluster-bars"``) lie in a child axes below it.
    """
    if not isinstance(tv, TaskVariance):
        raise ArgumentTypeError(f"tv must be a TaskVariance; got {type(tv).__name__}")
    if clusters is not None and not isinstance(clusters, UnitClusters):
        raise ArgumentTypeError(f"clusters must be UnitClusters (from cluster_units) or None; "
                                f"got {type(clusters).__name__}")
    if clusters is not None and clusters.labels.shape[0] != tv.n_units:
        raise ValueError(f"clusters has {clusters.labels.shape[0]} units but tv has {tv.n_units}; "
                         "cluster this TaskVariance")
    order = to_numpy(clusters.order if clusters is not None else tv.active.nonzero().flatten())
    if len(order) == 0:
        raise ValueError("tv has no active unit to show; lower its threshold")
    shown = to_numpy(tv.values)[:, order]
    vmax = 1.0 if tv.normalized else float(shown.max()) or 1.0
    ax = axes(ax)
    image = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest",
                      gid="task-variance")
    ax.figure.colorbar(image, ax=ax, label="normalized task variance" if tv.normalized else "task variance")
    ax.set_yticks(np.arange(tv.n_tasks), tv.tasks)
    ax.set_xticks([])
    ax.set_title("units")
    if clusters is None:
        ax.set_xlabel("active units")
        return ax
    labels = to_numpy(clusters.labels)[order]
    bars = ax.inset_axes([0.0, -0.09, 1.0, 0.05])
    colors = _cluster_colors(clusters.n_clusters)
    for c in range(clusters.n_clusters):
        where = np.flatnonzero(labels == c)
        bars.broken_barh([(where[0] - 0.5, len(where))], (0, 1), color=colors[c], gid="cluster-bars")
        bars.text(where.mean(), -0.3, str(c + 1), ha="center", va="top", color=colors[c], fontsize=8)
    bars.set_xlim(-0.5, len(order) - 0.5)
    bars.set_ylim(0, 1)
    bars.axis("off")
    return ax


def _cluster_colors(n: int) -> list[Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [palette(i % palette.N) for i in range(n)]
