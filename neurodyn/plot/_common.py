"""Shared helpers of the plot module: axes creation, array conversion, fixed-point styles."""

from __future__ import annotations

from typing import Any

import numpy as np

# Marker style of each stability class (continuous time): filled = stable,
# open = unstable, half-filled = saddle; circles for nodes, diamonds for foci.
STABILITY_STYLES: dict[str, dict[str, Any]] = {
    "stable node": {"marker": "o", "color": "black", "fillstyle": "full"},
    "stable focus": {"marker": "D", "color": "black", "fillstyle": "full"},
    "saddle": {"marker": "o", "color": "black", "fillstyle": "left"},
    "unstable node": {"marker": "o", "color": "black", "fillstyle": "none"},
    "unstable focus": {"marker": "D", "color": "black", "fillstyle": "none"},
    "marginal": {"marker": "s", "color": "tab:orange", "fillstyle": "full"},
}
FIXED_POINT_GID = "fixed-points"


def axes(ax: Any = None, projection: str | None = None) -> Any:
    """``ax`` itself, or the Axes of a new figure (pyplot-managed, so notebooks display it)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5, 4))
    return fig.add_subplot(projection=projection)


def to_numpy(value: Any) -> np.ndarray:
    """A detached CPU NumPy copy of a tensor or array-like."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_complex():
            return value.resolve_conj().numpy()
        return value.numpy()
    return np.asarray(value)


def draw_fixed_points(ax: Any, points: np.ndarray, stability: list[str], **kwargs: Any) -> list[Any]:
    """One ``Line2D`` of markers per stability class present, with gid ``"fixed-points"``.

    ``points`` is ``(K, 2)`` or ``(K, 3)`` in the axes' coordinates.
    """
    if len(points) != len(stability):
        raise ValueError(f"got {len(points)} fixed points but {len(stability)} stability labels")
    artists = []
    for kind in dict.fromkeys(stability):
        if kind not in STABILITY_STYLES:
            raise ValueError(f"unknown stability class {kind!r}; expected one of {list(STABILITY_STYLES)}")
        rows = points[[s == kind for s in stability]]
        style = {**STABILITY_STYLES[kind], "markersize": 8, "markeredgewidth": 1.5, **kwargs}
        (line,) = ax.plot(*rows.T, linestyle="none", label=kind, gid=FIXED_POINT_GID, zorder=5, **style)
        artists.append(line)
    return artists


def fixed_point_markers(ax: Any) -> int:
    """Number of fixed-point markers drawn on ``ax`` (what tests and users count)."""
    return sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_gid() == FIXED_POINT_GID)
