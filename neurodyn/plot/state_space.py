"""Trajectories in state space (PCA), with fixed points and a line attractor (primer Fig. 6B-C)."""

from __future__ import annotations

from typing import Any

import torch

from ..trajectory import Trajectory
from ._common import axes, draw_fixed_points, to_numpy


def trajectories(
    traj: Any,
    *,
    pca: bool = True,
    fixed_points: Any = None,
    line: Any = None,
    n_components: int = 2,
    color_by: Any = None,
    ax: Any = None,
    cmap: str = "viridis",
) -> Any:
    """Population trajectories, projected on their principal components.

    With ``pca=True`` the trajectories ``(B, T, D)`` are projected on their
    first ``n_components`` principal components (``neurodyn.pca``), and fixed
    points and the line attractor are projected into the same space. A triangle
    marks where each trajectory starts (as in the primer's Fig. 6B).

    Args:
        traj: a ``Trajectory`` (its flat state) or a ``(B, T, D)`` / ``(T, D)`` tensor.
        pca: project on principal components; else plot the first 2 or 3 state dimensions.
        fixed_points: a ``FixedPoints`` to draw, marked by stability class.
        line: a ``LineAttractor`` to draw as a segment along its direction, spanning its fixed points.
        n_components: 2 or 3 (a 3-D axes).
        color_by: ``(B,)`` values colouring the trials (e.g. f1), with a colorbar.

    Returns:
        The Axes. Artists carry gids ``"trajectory"``, ``"fixed-points"``, ``"line-attractor"``.
    """
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3; got {n_components}")
    data = traj.flat() if isinstance(traj, Trajectory) else torch.as_tensor(traj)
    if data.dim() == 2:
        data = data.unsqueeze(0)
    if data.dim() != 3:
        raise ValueError(f"traj must be a Trajectory or a (B, T, D) tensor; got shape {tuple(data.shape)}")
    data = data.detach()
    if data.shape[-1] < n_components:
        raise ValueError(f"the state has D={data.shape[-1]} < n_components={n_components}")
    project = _projector(data, n_components, pca)
    paths = to_numpy(project(data))
    ax = axes(ax, projection="3d" if n_components == 3 else None)
    colors = _trial_colors(ax, color_by, paths.shape[0], cmap)
    for k, path in enumerate(paths):
        ax.plot(*path.T, color=colors[k], linewidth=1.2, gid="trajectory")
        ax.plot(*path[:1].T, marker="^", color=colors[k], linestyle="none", gid="trajectory-start")
    if fixed_points is not None:
        points = to_numpy(project(torch.as_tensor(fixed_points.states).to(data)))
        draw_fixed_points(ax, points, list(fixed_points.stability))
    if line is not None:
        spread = float(data.reshape(-1, data.shape[-1]).std(0).norm())
        ends = _line_ends(line, min_half=0.25 * spread).to(data)
        ax.plot(*to_numpy(project(ends)).T, color="tab:orange", linewidth=2.5, gid="line-attractor",
                label="line attractor")
    prefix = "PC" if pca else "state "
    labels = {"xlabel": f"{prefix}1", "ylabel": f"{prefix}2"}
    if n_components == 3:
        labels["zlabel"] = f"{prefix}3"
    ax.set(**labels, title="state-space trajectories")
    return ax


def _projector(data: torch.Tensor, n_components: int, pca: bool):
    if not pca:
        return lambda z: z[..., :n_components]
    from ..analysis import pca as fit_pca

    return fit_pca(data.reshape(-1, data.shape[-1]), n_components).transform


def _trial_colors(ax: Any, color_by: Any, n_trials: int, cmap: str) -> list[Any]:
    if color_by is None:
        return [f"C{k % 10}" for k in range(n_trials)]
    import matplotlib as mpl

    values = to_numpy(color_by).astype(float).reshape(-1)
    if values.shape[0] != n_trials:
        raise ValueError(f"color_by must have one value per trial ({n_trials}); got {values.shape[0]}")
    norm = mpl.colors.Normalize(values.min(), values.max())
    mapping = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(mapping, ax=ax)
    return [mapping.to_rgba(v) for v in values]


def _line_ends(line: Any, min_half: float) -> torch.Tensor:
    """Two points spanning the line attractor: its centre plus the range of its points along the
    direction (+10 %), and at least ``min_half`` to each side so that a line through one point shows."""
    direction = torch.as_tensor(line.direction).reshape(-1)
    center = torch.as_tensor(line.center).to(direction)
    along = torch.as_tensor(line.projections).to(direction)
    low, high = float(along.min()), float(along.max())
    margin = 0.1 * (high - low)
    low, high = min(low - margin, -min_half), max(high + margin, min_half)
    return center + torch.tensor([low, high]).to(direction)[:, None] * direction
