"""Phase portraits of two-dimensional models."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DivergenceError
from ..simulate import simulate
from ..state import unflatten
from ..validation import as_int, as_real
from ._common import axes, draw_fixed_points, to_numpy


def phase_portrait(
    model: Any,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    x: Tensor | None = None,
    fixed_points: Any = True,
    nullclines: bool = True,
    starts: Tensor | int = 6,
    duration: float | None = None,
    density: int = 21,
    ax: Any = None,
    generator: torch.Generator | None = None,
) -> Any:
    """Vector field, nullclines, fixed points and sample trajectories of a 2-D model.

    The plane is ``(state[0], state[1])`` of the flat state; arrows show the
    direction of ``d state/dt = F(state, x)`` (normalized length, colour = speed).
    Fixed points are marked by stability class (filled: stable, open:
    unstable, half-filled: saddle; circles: nodes, diamonds: foci).

    Args:
        model: a Model with a 2-D flat state (e.g. ``WilsonCowan``, ``WongWang``,
            a two-variable ``Equations``).
        x_range, y_range: the plotted window of the two state variables.
        x: constant input ``(n_in,)`` or ``(1, n_in)`` (default zero).
        fixed_points: True to find them with ``find_fixed_points`` from a grid of
            starts in the window, a ``FixedPoints`` to draw, or False/None.
        nullclines: draw every branch of both nullclines (``neurodyn.nullclines``; models with two
            scalar state variables, not one of size 2).
        starts: initial states ``(K, 2)`` of sample trajectories, or how many to
            draw from random starts in the window (0: none). One that blows up in
            finite time is drawn until shortly before.
        duration: how long to integrate them (default 30 x the model's timescale).
        density: arrows per side.

    Returns:
        The Axes. Artists carry gids: ``"vector-field"``, ``"nullcline-<var>"``,
        ``"trajectory"``, ``"fixed-points"``.
    """
    names = list(model.state_vars)
    if model.dim != 2:
        raise ValueError(f"phase_portrait needs a model with a 2-D state; {type(model).__name__} has "
                         f"D={model.dim} ({model.state_vars}); project it first or use trajectories()")
    for name, span in (("x_range", x_range), ("y_range", y_range)):
        if len(span) != 2 or not span[0] < span[1]:
            raise ValueError(f"{name} must be (low, high) with low < high; got {span!r}")
    density = as_int("density", density, 2)  # arrows per side
    if duration is not None:
        duration = as_real("duration", duration, gt=0, expected="a positive number of seconds or None")
    if fixed_points not in (True, False, None) and getattr(fixed_points, "states", None) is not None \
            and fixed_points.states.shape[-1] != model.dim:
        raise ValueError(f"fixed_points are {fixed_points.states.shape[-1]}-D but the model's state is "
                         f"{model.dim}-D; pass the model's own find_fixed_points result")
    x = _constant_input(model, x)
    ax = axes(ax)
    with torch.no_grad():
        _draw_vector_field(ax, model, x, x_range, y_range, density)
        if nullclines and len(names) == 2:
            _draw_nullclines(ax, model, x, names, x_range, y_range)
        _draw_trajectories(ax, model, x, x_range, y_range, starts, duration, generator)
    if fixed_points is True:
        fixed_points = _find_fixed_points(model, x, x_range, y_range)
    if fixed_points:  # None, False and an empty FixedPoints draw nothing
        draw_fixed_points(ax, to_numpy(fixed_points.states)[:, :2], list(fixed_points.stability))
    labels = names if len(names) == 2 else ["state[0]", "state[1]"]
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    ax.set(xlim=x_range, ylim=y_range, xlabel=labels[0], ylabel=labels[1], title=f"{type(model).__name__} phase plane")
    return ax


def _constant_input(model: Any, x: Tensor | None) -> Tensor:
    if x is None:
        return torch.zeros(1, model.n_in, device=model.device, dtype=model.dtype)
    x = torch.as_tensor(x, device=model.device, dtype=model.dtype).reshape(1, -1)
    if x.shape[1] != model.n_in:
        raise ValueError(f"x must be a constant input with n_in={model.n_in} values; got {x.shape[1]}")
    return x


def _flat_field(model: Any, flat: Tensor, x: Tensor) -> Tensor:
    """``F(state, x)`` for a batch of flat states ``(B, 2)``."""
    drive = model.input_drive(x.expand(flat.shape[0], -1))
    return torch.cat([v.reshape(flat.shape[0], -1) for v in model.vector_field(0.0, unflatten(flat, model), drive)], -1)


def _draw_vector_field(ax: Any, model: Any, x: Tensor, x_range, y_range, density: int) -> None:
    gx, gy = np.meshgrid(np.linspace(*x_range, density), np.linspace(*y_range, density))
    flat = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), device=model.device, dtype=model.dtype)
    field = to_numpy(_flat_field(model, flat, x)).astype(float)
    # Scale each component to the window so arrows point the way the trajectories do on screen.
    u, v = field[:, 0] / np.ptp(x_range), field[:, 1] / np.ptp(y_range)
    speed = np.hypot(u, v)
    norm = np.where(speed > 0, speed, 1.0)
    ax.quiver(gx.ravel(), gy.ravel(), u / norm, v / norm, np.log10(speed + 1e-12), cmap="Greys",
              angles="xy", pivot="mid", alpha=0.6, gid="vector-field")


def _draw_nullclines(ax: Any, model: Any, x: Tensor, names: list[str], x_range, y_range) -> None:
    from ..equations import nullclines as find_nullclines

    result = find_nullclines(model, names[0], names[1], x_range, y_range, x=x)
    for k, (var, branches) in enumerate(result.items()):
        for i, branch in enumerate(branches):
            points = to_numpy(branch)
            ax.plot(points[:, 0], points[:, 1], color=f"C{k}", linewidth=2, gid=f"nullcline-{var}",
                    label=f"d{var}/dt = 0" if i == 0 else None)


def _draw_trajectories(ax: Any, model: Any, x: Tensor, x_range, y_range, starts: Tensor | int,
                       duration: float | None, generator: torch.Generator | None) -> None:
    if isinstance(starts, bool):
        raise ValueError(f"starts must be an int >= 0 or a (K, 2) tensor; got {starts!r}")
    if isinstance(starts, int):
        if starts < 0:
            raise ValueError(f"starts must be >= 0 or a (K, 2) tensor; got {starts}")
        if starts == 0:
            return
        low = torch.tensor([x_range[0], y_range[0]], dtype=model.dtype)
        high = torch.tensor([x_range[1], y_range[1]], dtype=model.dtype)
        starts = low + (high - low) * torch.rand(starts, 2, generator=generator, dtype=model.dtype)
    starts = torch.as_tensor(starts, dtype=model.dtype).to(model.device)
    if starts.dim() != 2 or starts.shape[1] != 2:
        raise ValueError(f"starts must be an int or a (K, 2) tensor of initial states; got shape {tuple(starts.shape)}")
    duration = 30.0 * model.timescale if duration is None else duration
    for start in starts:
        path = to_numpy(_until_blow_up(model, x, start[None], duration)).astype(float)
        ax.plot(path[:, 0], path[:, 1], color="tab:purple", linewidth=1.0, alpha=0.8, gid="trajectory")
        ax.plot(path[0, 0], path[0, 1], marker=".", color="tab:purple", gid="trajectory-start")


def _until_blow_up(model: Any, x: Tensor, start: Tensor, duration: float, tries: int = 20) -> Tensor:
    """The flat path ``(301, 2)`` from ``start (1, 2)`` over ``duration``, halved until no state is infinite."""
    for _ in range(tries):
        t = torch.linspace(0.0, duration, 301, device=model.device, dtype=model.dtype)
        try:
            return simulate(model, t, x, start, solver="rk4", dt=min(duration / 300, model.timescale / 10)).flat()[0]
        except DivergenceError:
            duration /= 2
    return start


def _find_fixed_points(model: Any, x: Tensor, x_range, y_range) -> Any:
    from ..analysis import find_fixed_points

    gx, gy = np.meshgrid(np.linspace(*x_range, 8), np.linspace(*y_range, 8))
    init = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), device=model.device, dtype=model.dtype)
    return find_fixed_points(model, init, x=x)
