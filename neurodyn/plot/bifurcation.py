"""Bifurcation diagrams of a continued fixed-point branch."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import axes, to_numpy

BIFURCATION_STYLES = {
    "fold": {"marker": "s", "color": "tab:red", "label": "fold (limit point)"},
    "hopf": {"marker": "*", "color": "tab:blue", "label": "Hopf", "markersize": 12},
    "branch point": {"marker": "D", "color": "tab:green", "label": "branch point"},
}


def bifurcation(branch: Any, var: int = 0, *, ax: Any = None, color: str = "black", label: str | None = None) -> Any:
    """A fixed-point branch against its parameter: stable parts solid, unstable dashed.

    Folds (limit points, a real eigenvalue crossing 0), Hopf points (a
    complex pair crossing the imaginary axis) and branch points (a real
    eigenvalue crossing 0 without a fold, e.g. a pitchfork) are marked where
    the branch found them.

    Args:
        branch: a ``Branch`` from ``neurodyn.continuation`` (uses ``.params (P,)``,
            ``.states (P, D)``, ``.stable (P,)`` and ``.bifurcations``).
        var: which flat state component to plot on the y axis.

    Returns:
        The Axes; branch segments are ``Line2D`` with gid ``"branch-stable"``
        (linestyle ``"-"``) or ``"branch-unstable"`` (``"--"``), bifurcation
        markers have gid ``"bifurcation-fold"`` / ``"bifurcation-hopf"`` / ``"bifurcation-branch point"``.
    """
    params = to_numpy(branch.params).astype(float).reshape(-1)
    states = to_numpy(branch.states).astype(float)
    states = states.reshape(len(params), -1)
    stable = to_numpy(branch.stable).astype(bool).reshape(-1)
    if isinstance(var, bool) or not isinstance(var, (int, np.integer)):
        raise TypeError(f"var must be an int, the index of a flat state component; got {var!r}")
    if not 0 <= var < states.shape[1]:
        raise ValueError(f"var must index a state component in [0, {states.shape[1]}); got {var}")
    if len(params) < 2:
        raise ValueError(f"the branch has {len(params)} point(s); continuation must return at least 2 to draw")
    y = states[:, var]
    ax = axes(ax)
    # Contiguous runs of equal stability; each run shares its end point with the next, so the curve is unbroken.
    cuts = np.flatnonzero(stable[1:] != stable[:-1]) + 1
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(params)], strict=True):
        is_stable = bool(stable[start])
        end = min(stop + 1, len(params))
        ax.plot(params[start:end], y[start:end], color=color, linestyle="-" if is_stable else "--",
                gid="branch-stable" if is_stable else "branch-unstable")
    for kind, style in BIFURCATION_STYLES.items():
        found = [b for b in branch.bifurcations if b.kind == kind]
        if found:
            xs = [float(b.param) for b in found]
            ys = [_value_at(b, params, y, var) for b in found]
            ax.plot(xs, ys, linestyle="none", gid=f"bifurcation-{kind}", zorder=5,
                    **{"markersize": 9, **style})
    ax.set(xlabel=getattr(branch, "name", None) or "parameter", ylabel=label or f"state[{var}]",
           title="bifurcation diagram (solid: stable, dashed: unstable)")
    return ax


def _value_at(point: Any, params: np.ndarray, y: np.ndarray, var: int) -> float:
    """The state component at a bifurcation: its own state when it has one, else the nearest branch point."""
    state = getattr(point, "state", None)
    if state is not None:
        return float(to_numpy(state).reshape(-1)[var])
    return float(y[int(np.argmin(np.abs(params - float(point.param))))])
