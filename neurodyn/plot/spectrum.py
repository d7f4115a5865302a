"""Eigenvalue spectra of linearizations at fixed points (continuous time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import axes, to_numpy


def eigenspectrum(fps: Any, *, index: int | list[int] | None = None, ax: Any = None) -> Any:
    """Eigenvalues ``lambda`` of the Jacobian at each fixed point, in the complex plane.

    Continuous time: a fixed point is stable iff ``max Re(lambda) < 0``, so the
    imaginary axis ``Re(lambda) = 0`` is drawn as the stability boundary.
    Eigenvalues of stable points are filled, those of unstable points open.

    Args:
        fps: a ``FixedPoints`` (uses ``.eigvals (K, D)`` and ``.is_stable (K,)``).
        index: which fixed points to draw (default all).
        ax: axes to draw on (default a new figure).

    Returns:
        The Axes; one ``PathCollection`` per fixed point, with gid ``"eigenvalues"``.
    """
    if not hasattr(fps, "eigvals"):
        raise TypeError(f"fps must be a FixedPoints (one network's; of an Ensemble's list, pass one element); got "
                        f"{type(fps).__name__}")
    eigvals = np.atleast_2d(to_numpy(fps.eigvals))
    stable = np.atleast_1d(to_numpy(fps.is_stable)).astype(bool)
    if eigvals.shape[0] == 0:
        raise ValueError("fps holds no fixed points; nothing to plot (find_fixed_points found none)")
    chosen = range(eigvals.shape[0]) if index is None else np.atleast_1d(index).tolist()
    for k in chosen:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"index must be an int or a list of ints (fixed-point indices); got {index!r}")
        if not 0 <= k < eigvals.shape[0]:
            raise ValueError(f"index {k} is out of range for {eigvals.shape[0]} fixed points")
    ax = axes(ax)
    for k in chosen:
        lam = eigvals[k]
        color = f"C{k % 10}"
        ax.scatter(lam.real, lam.imag, s=18, gid="eigenvalues", label=f"fixed point {k}",
                   facecolors=color if stable[k] else "none", edgecolors=color)
    ax.axvline(0.0, color="black", linewidth=1.0, gid="imaginary-axis")
    ax.axhline(0.0, color="0.7", linewidth=0.5)
    ax.set(xlabel=r"Re $\lambda$ (1/s)", ylabel=r"Im $\lambda$ (1/s)",
           title="Jacobian eigenvalues (stable: Re $\\lambda$ < 0)")
    return ax
