r"""Linear stability of fixed points in continuous time.

A fixed point ``y*`` of ``dy/dt = F(y)`` is stable iff every eigenvalue of
``J = dF/dy(y*)`` has ``Re(lambda) < 0`` (Strogatz, *Nonlinear Dynamics and
Chaos*, ch. 6). Real parts within ``tol`` of 0 count as zero, never exact
float equality.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .linalg import single_thread, solve

CLASSES = ("stable node", "stable focus", "unstable node", "unstable focus", "saddle", "marginal")


def eig_with_left(J: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eigenvalues ``(B, D)``, right eigenvectors ``V`` and left eigenvectors ``L`` (columns).

    ``L = inv(V)^H`` so that ``L[:, :, i]^H V[:, :, j] = delta_ij``: the left
    eigenvector projects a state onto the right eigenvector's mode (the
    "selection vector" of Mante et al. 2013). A (nearly) defective ``J`` (a
    Jordan block) has no such ``L``: a warning says so. Runs single-threaded on CPU,
    where batched ``eig`` is many times faster than with contended threads.
    """
    if J.device.type == "cpu":
        with single_thread():
            lam, V = torch.linalg.eig(J)
    else:
        lam, V = torch.linalg.eig(J)
    eye = torch.eye(J.shape[-1], dtype=V.dtype, device=V.device).expand_as(V)
    L = solve(V, eye).mH.resolve_conj()
    # |L[:, i]| is the condition number of eigenvalue i (|V[:, i]| = 1): huge where J is (nearly) defective,
    # a Jordan block, whose left and right eigenvectors are orthogonal and cannot be scaled to L^H V = I
    condition = torch.linalg.vector_norm(L, dim=-2).amax(dim=-1) if J.shape[-1] else L.new_zeros(J.shape[:-2]).real
    bad = ~(condition < torch.finfo(condition.dtype).eps ** -0.5)
    if bad.any():
        warnings.warn(f"the Jacobian at {int(bad.sum())} point(s) is (nearly) defective (eigenvalue condition number "
                      f"up to {float(condition.max()):.1e}): a repeated eigenvalue with too few eigenvectors, whose "
                      "left eigenvectors are not defined by left^H right = I; treat them (and line_attractor's "
                      "'left') as unreliable there", stacklevel=3)
    return lam, V, L


def default_tol(eigvals: Tensor) -> Tensor:
    """Zero tolerance on ``Re(lambda)``: ``sqrt(eps) * max(1, max |lambda|)`` per point ``(B,)``."""
    eps = torch.finfo(eigvals.real.dtype).eps
    scale = eigvals.abs().amax(dim=-1).clamp(min=1.0) if eigvals.shape[-1] else torch.ones(eigvals.shape[:-1])
    return eps**0.5 * scale


def classify(eigvals: Tensor, tol: Tensor | float | None = None) -> list[str]:
    """Stability class of each point from its eigenvalues ``(B, D)``.

    With ``re = Re(lambda)``: any ``re > tol`` is unstable ("saddle" if also
    some ``re < -tol``, else "unstable node"/"unstable focus"); otherwise any
    ``|re| <= tol`` is "marginal"; otherwise stable. Node or focus follows the
    dominant eigenvalue (largest ``re``): a focus when its ``|Im| > tol``.
    """
    if tol is None:
        tol = default_tol(eigvals)
    tol = torch.as_tensor(tol, dtype=eigvals.real.dtype).expand(eigvals.shape[0])
    out = []
    for lam, eps in zip(eigvals, tol, strict=True):
        re = lam.real
        lead = lam[int(torch.argmax(re))]
        spiral = "focus" if float(lead.imag.abs()) > eps else "node"
        if (re > eps).any():
            out.append("saddle" if (re < -eps).any() else f"unstable {spiral}")
        elif (re.abs() <= eps).any():
            out.append("marginal")
        else:
            out.append(f"stable {spiral}")
    return out


def is_stable(eigvals: Tensor, tol: Tensor | float | None = None) -> Tensor:
    """``(B,)`` bool: ``max Re(lambda) < -tol`` (strictly stable in continuous time)."""
    tol = default_tol(eigvals) if tol is None else torch.as_tensor(tol, dtype=eigvals.real.dtype)
    return eigvals.real.amax(dim=-1) < -tol
