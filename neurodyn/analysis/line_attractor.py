r"""Line attractors: a line of (near-)fixed points with one eigenvalue near 0.

Along a line attractor the Jacobian has an eigenvalue ``lambda ~ 0`` whose
right eigenvector ``v`` points along the line; its left eigenvector ``l``
(``l^H v = 1``) is the "selection vector" of Mante et al. (2013): an input
pulse ``dx`` moves the state along the line by ``l . dx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from .fixed_points import FixedPoints
from .pca import pca


@dataclass
class LineAttractor:
    """A line through fixed points.

    ``direction (D,)`` unit vector, ``center (D,)`` the point the line passes
    through, ``eigval`` the eigenvalue nearest 0 at the fixed point nearest the
    center with its ``right`` and ``left`` eigenvectors (``left^H right = 1``),
    ``projections (K,)`` the fixed points' coordinates along the line,
    ``variance_fraction`` the fraction of their variance along it (NaN for one
    point) and ``alignment (K,)`` ``|cos|`` between the line and each point's
    own slowest right eigenvector.
    """

    direction: Tensor
    center: Tensor
    eigval: complex
    right: Tensor
    left: Tensor
    projections: Tensor
    variance_fraction: float
    alignment: Tensor


def _real_if_close(v: Tensor) -> Tensor:
    return v.real if v.is_complex() and bool((v.imag.abs() <= 1e-8 * v.abs().amax()).all()) else v


def _slow_modes(fps: FixedPoints) -> tuple[Tensor, Tensor, Tensor]:
    """Per point: eigenvalue nearest 0, its right eigenvector (unit, largest entry real >0) and left eigenvector."""
    k = fps.eigvals.abs().argmin(dim=-1)
    rows = torch.arange(len(fps))
    lam = fps.eigvals[rows, k]
    right = fps.eigvecs[rows, :, k]
    left = fps.left_eigvecs[rows, :, k]
    pivot = right.gather(1, right.abs().argmax(1, keepdim=True))
    phase = pivot / pivot.abs()
    return lam, right / phase, left * phase.conj()


def line_attractor(fps: FixedPoints) -> LineAttractor:
    """The line attractor through ``fps`` (from :func:`find_fixed_points`).

    One point: the line is its slowest eigenvector. Several: the first principal
    axis of the points, oriented along (and checked against, in ``alignment``)
    the local slow eigenvectors. It fits a line whatever the points are, and
    judges nothing: read ``eigval`` (near 0 and real for a line attractor; a
    complex pair is a slow rotation) and ``alignment`` (near 1 when the points
    lie along their slow directions; isolated attractors and saddles, or the
    points of a ring or plane attractor, are not a line).
    """
    if not isinstance(fps, FixedPoints):
        raise ArgumentTypeError(f"fps must be a FixedPoints result; got {type(fps).__name__}")
    if len(fps) == 0:
        raise ValueError("fps holds no fixed points; search from more starts or raise tol in find_fixed_points")
    lam, right, left = _slow_modes(fps)
    slow = right.real if right.is_complex() else right
    slow = slow / slow.norm(dim=-1, keepdim=True)
    center = fps.states.mean(0)
    ref = int((fps.states - center).norm(dim=-1).argmin())
    if len(fps) == 1:
        direction, fraction = slow[0], math.nan
    else:
        fit = pca(fps.states, 1)
        direction, fraction = fit.components[0], float(fit.explained_variance_ratio[0])
        if float(direction @ slow[ref]) < 0:
            direction = -direction
    return LineAttractor(
        direction=direction,
        center=center,
        eigval=complex(lam[ref]),
        right=_real_if_close(right[ref]),
        left=_real_if_close(left[ref]),
        projections=(fps.states - center) @ direction,
        variance_fraction=fraction,
        alignment=(slow @ direction).abs(),
    )
