r"""Fixed points ``F(y*) = 0`` of a model's vector field, with their linear stability.

Two methods, both batched over all starting states at once:

* ``"newton"``: damped Newton on ``F(y) = 0`` with the exact Jacobian ``J``.
  The Newton step ``J delta = -F`` is taken while it lowers ``q`` and is no
  longer than ``10 (1 + |y|)``; after one that fails (far from a root, or where
  ``J`` is singular, as on a line attractor) a Levenberg–Marquardt step
  ``delta = -(J^T J + lam I)^{-1} J^T F`` with ``lam = mu |F| ||J||_F``
  (Fan & Yuan 2005); ``mu`` shrinks after a step that lowers ``q`` and grows
  after one that does not. Each iteration is one batched solve and one batched
  Jacobian over the starts still active: converged and stalled starts leave the batch.
* ``"adam"``: Sussillo & Barak (2013) minimize the speed
  ``q(y) = 1/2 |F(y)|^2`` by gradient descent (Adam), as in Golub & Sussillo's
  FixedPointFinder. It also reaches slow points (small ``q > 0``). Each
  start's learning rate (initially 1.0) is halved whenever its ``q`` plateaus:
  at a constant rate Adam's steps do not shrink and ``q`` stalls near ``1e-8``.

A start has converged when ``q < tol``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from ..models.base import Model
from ..state import unflatten
from ._checks import check_model, constant_input, flat_states
from .jacobian import evaluate_field, field_and_jacobian
from .linalg import solve
from .stability import classify, eig_with_left, is_stable

METHODS = ("newton", "adam")
DEFAULT_MAX_ITER = {"newton": 200, "adam": 10_000}


@dataclass(repr=False)
class FixedPoints:
    """Converged, deduplicated fixed points and their linearization.

    ``states (K, D)`` flat, ``q (K,)`` with ``q = 1/2 |F|^2``, ``jacobians
    (K, D, D)``. Eigen-decompositions are computed on first access:
    ``eigvals (K, D)`` complex, right ``eigvecs`` and ``left_eigvecs`` (columns,
    ``left^H right = I``), ``stability`` (names from
    :data:`neurodyn.analysis.stability.CLASSES`) and ``is_stable`` (``max Re
    lambda < -tol``). ``n_unconverged`` starts did not reach ``q < tol`` and
    ``n_outliers`` were excluded as outliers. ``start_states (B, D)`` and
    ``start_q (B,)`` are where every start ended (converged or not): slow
    points are those with a small ``start_q`` above ``tol``.
    """

    states: Tensor
    q: Tensor
    jacobians: Tensor
    shapes: dict[str, tuple[int, ...]]
    n_starts: int
    n_unconverged: int
    n_outliers: int = 0
    iterations: int = 0
    method: str = "newton"
    marginal_tol: float | None = None
    start_states: Tensor | None = None
    start_q: Tensor | None = None

    def __len__(self) -> int:
        return self.states.shape[0]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k}: {self.stability.count(k)}" for k in dict.fromkeys(self.stability))
        return (f"FixedPoints({len(self)} unique from {self.n_starts} starts by {self.method!r}, "
                f"{self.n_unconverged} not converged, {self.n_outliers} outliers; {kinds or 'none'})")

    @property
    def named(self) -> Any:
        """The states as a named tuple of ``(K, *shape)`` tensors."""
        return unflatten(self.states, self.shapes)

    @cached_property
    def _eig(self) -> tuple[Tensor, Tensor, Tensor]:
        return eig_with_left(self.jacobians)

    @property
    def eigvals(self) -> Tensor:
        return self._eig[0]

    @property
    def eigvecs(self) -> Tensor:
        return self._eig[1]

    @property
    def left_eigvecs(self) -> Tensor:
        return self._eig[2]

    @cached_property
    def stability(self) -> list[str]:
        return classify(self.eigvals, self.marginal_tol)

    @cached_property
    def is_stable(self) -> Tensor:
        return is_stable(self.eigvals, self.marginal_tol)


def find_fixed_points(
    model: Model,
    init: Any,
    x: Any = None,
    *,
    method: str = "newton",
    tol: float = 1e-10,
    max_iter: int | None = None,
    unique_tol: float = 1e-3,
    exclude_outliers: float | None = None,
    lr: float = 1.0,
    t: float = 0.0,
    marginal_tol: float | None = None,
) -> FixedPoints:
    """Find the fixed points of ``model`` reached from the starting states ``init``.

    Args:
        init: starting states, flat ``(B, D)`` or a named state (see
            :func:`neurodyn.analysis.sample_states` to draw them from a trajectory).
        x: a constant input ``(n_in,)`` or ``(B, n_in)``; None is zero input.
        method: "newton" (damped Newton with a Levenberg–Marquardt fallback,
            exact Jacobian) or "adam" (Sussillo & Barak q-minimization).
        tol: a start has converged when ``q = 1/2 |F|^2 < tol``. In float32 ``q``
            cannot go far below ``(1e-7 |F| scale)^2``: analyse a ``model.double()``.
        max_iter: iterations (default 200 for newton, 10000 for adam).
        unique_tol: converged points closer than this (Euclidean) are one point.
        exclude_outliers: drop points farther from the centroid of ``init`` than
            this many times the mean distance of ``init`` to it (FixedPointFinder's
            ``outlier_distance_scale``); None keeps all.
        lr: Adam's initial learning rate (1.0, as in FixedPointFinder).
        t: the time at which the vector field is evaluated.
        marginal_tol: ``|Re lambda|`` below which an eigenvalue counts as zero;
            default ``sqrt(eps) max(1, |lambda|max)``.
    """
    check_model(model)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    for name, value in (("tol", tol), ("unique_tol", unique_tol), ("lr", lr)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number; got {value!r}")
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else max_iter
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")
    if exclude_outliers is not None and not exclude_outliers > 0:
        raise ValueError(f"exclude_outliers must be > 0 or None; got {exclude_outliers!r}")
    y0 = flat_states(model, init, "init")
    xc = constant_input(model, x, y0.shape[0])
    with torch.no_grad():
        drive = model.input_drive(xc).expand(y0.shape[0], -1)
    if method == "newton":
        y, q, iters = _damped_newton(model, y0, drive, t, tol, max_iter)
    else:
        y, q, iters = _adam(model, y0, drive, t, tol, max_iter, lr)
    ok = q < tol
    if not ok.any():
        warnings.warn(f"find_fixed_points: none of {len(q)} starts reached q < tol={tol:g} in {iters} "
                      f"iterations (smallest q = {float(q.min()):.3g}); raise max_iter or tol"
                      + (", or analyse model.double()" if model.dtype != torch.float64 else ""), stacklevel=2)
    n_outliers = 0
    keep = ok
    if exclude_outliers is not None:
        center = y0.mean(0)
        scale = (y0 - center).norm(dim=-1).mean().clamp(min=torch.finfo(y0.dtype).tiny)
        far = (y - center).norm(dim=-1) > exclude_outliers * scale
        n_outliers = int((ok & far).sum())
        keep = ok & ~far
    index = torch.nonzero(keep).squeeze(1)
    index = index[_unique(y[index], q[index], unique_tol)]
    states, qs = y[index].detach(), q[index].detach()
    dim = states.shape[1]
    with torch.no_grad():
        J = field_and_jacobian(model, states, drive[index], t)[1] if len(index) else states.new_zeros(0, dim, dim)
    return FixedPoints(states=states, q=qs, jacobians=J, shapes=dict(model.state_shapes), n_starts=len(q),
                       n_unconverged=int((~ok).sum()), n_outliers=n_outliers, iterations=iters,
                       method=method, marginal_tol=marginal_tol, start_states=y.detach(), start_q=q.detach())


def _unique(y: Tensor, q: Tensor, radius: float) -> Tensor:
    """Indices of points kept greedily in order of increasing ``q``, each farther than ``radius`` from those kept."""
    order = torch.argsort(q)
    close = (torch.cdist(y[order], y[order]) <= radius).cpu().numpy()
    kept: list[int] = []
    for i in range(len(order)):
        if not close[i, kept].any():
            kept.append(i)
    return order[torch.tensor(kept, dtype=torch.long, device=order.device)]


def speed(model: Model, y: Tensor, drive: Tensor, t: float) -> Tensor:
    """``q = 1/2 |F(y)|^2 (B,)`` at the flat states ``y (B, D)`` (NaN/Inf kept as inf)."""
    q = 0.5 * evaluate_field(model, y, drive, t).pow(2).sum(-1)
    return torch.nan_to_num(q, nan=math.inf)


def _damped_newton(model: Model, y: Tensor, drive: Tensor, t: float, tol: float, max_iter: int,
                   window: int = 30, lag: int = 5, creep: float = 1e-2) -> tuple[Tensor, Tensor, int]:
    """Newton with a Levenberg–Marquardt fallback, all starts at once; returns (states, q, iterations).

    Each iteration costs one batched linear solve and one batched Jacobian, over
    the active starts only: a start takes a Newton step after a step that
    lowered ``q`` and an LM step after one that did not. A start is retired
    from the batch one (polishing) iteration after it reaches ``q < tol``, or
    as stalled at a slow point (a local minimum of ``q`` above ``tol``) when
    its ``q`` fell by less than the fraction ``creep`` over its last ``lag``
    accepted steps, has not halved in ``window`` iterations, or its damping
    ``mu`` exceeds ``1e12`` (rejected steps raise ``mu`` until one is accepted).
    Newton halves the error per step even at a singular root, so a start
    converging to a root is never retired this way.
    """
    y = y.clone()
    with torch.no_grad():
        F, J = field_and_jacobian(model, y, drive, t)
    q = torch.nan_to_num(0.5 * F.pow(2).sum(-1), nan=math.inf)
    idx = torch.nonzero(torch.isfinite(q)).squeeze(1)  # the active starts, with compact copies of their state
    ya, Fa, Ja, qa, da = y[idx], F[idx], J[idx], q[idx], drive[idx]
    mu = torch.full_like(qa, 1e-2)
    newton = torch.ones_like(qa, dtype=torch.bool)
    ref, last = qa.clone(), torch.zeros_like(qa)
    past = qa[:, None].repeat(1, lag)  # q after each of the last `lag` accepted steps, a ring buffer
    accepted = torch.ones_like(qa, dtype=torch.long)
    eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    iters = 0
    while len(idx) and iters < max_iter:
        iters += 1
        converged = qa < tol  # these take one more (polishing) step, then retire
        delta = torch.empty_like(ya)
        lm = ~newton
        if newton.any():
            delta[newton] = -solve(Ja[newton], Fa[newton])
        if lm.any():
            Jl, Fl = Ja[lm], Fa[lm]
            lam = mu[lm] * Fl.norm(dim=-1) * Jl.flatten(1).norm(dim=-1)
            delta[lm] = -solve(Jl.mT @ Jl + lam[:, None, None] * eye, (Jl.mT @ Fl.unsqueeze(-1)).squeeze(-1))
        # a near-singular J gives huge Newton steps: the LM step is taken there instead
        valid = torch.isfinite(delta).all(-1) & (lm | (delta.norm(dim=-1) <= 10 * (1 + ya.norm(dim=-1))))
        trial = ya + torch.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
        with torch.no_grad():
            better = valid & (speed(model, trial, da, t) < qa)
        mu = torch.where(lm, torch.where(better, (mu / 3).clamp(min=1e-12), mu * 4), mu)
        newton = better
        if better.any():
            with torch.no_grad():
                Fa[better], Ja[better] = field_and_jacobian(model, trial[better], da[better], t)
            ya[better] = trial[better]
            qa[better] = 0.5 * Fa[better].pow(2).sum(-1)
        progress = qa < 0.5 * ref
        ref, last = torch.where(progress, qa, ref), torch.where(progress, iters, last)
        slot = (accepted % lag)[:, None]
        creeping = better & (accepted >= lag) & (qa > (1 - creep) * past.gather(1, slot).squeeze(1))
        past.scatter_(1, slot, torch.where(better, qa, past.gather(1, slot).squeeze(1))[:, None])
        accepted += better
        retire = converged | creeping | (mu >= 1e12) | (iters - last >= window)
        if retire.any():
            y[idx[retire]], q[idx[retire]] = ya[retire], qa[retire]
            keep = ~retire
            idx, ya, Fa, Ja, qa, da = idx[keep], ya[keep], Fa[keep], Ja[keep], qa[keep], da[keep]
            mu, newton, ref, last, past, accepted = (mu[keep], newton[keep], ref[keep], last[keep], past[keep],
                                                     accepted[keep])
    y[idx], q[idx] = ya, qa
    return y, q, iters


def _adam(model: Model, y0: Tensor, drive: Tensor, t: float, tol: float, max_iter: int, lr: float,
          patience: int = 300, threshold: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8) -> tuple[Tensor, Tensor, int]:
    """Sussillo & Barak q-minimization with Adam (Kingma & Ba 2015), one learning rate per start.

    Each start's rate is halved when its best ``q`` has not dropped by the
    factor ``1 - threshold`` for ``patience`` iterations (starts are independent
    problems, so one stuck at a slow point does not slow the others down).
    Converged starts (``q < tol``) are frozen.
    """
    y = y0.clone()
    m, v = torch.zeros_like(y), torch.zeros_like(y)
    rate = torch.full((len(y),), lr, dtype=y.dtype, device=y.device)
    best_y, best_q = y0.clone(), torch.full_like(rate, math.inf)
    ref_q, last = torch.full_like(rate, math.inf), torch.zeros(len(y), dtype=torch.long, device=y.device)
    iters = 0
    while True:
        y.requires_grad_(True)
        q = speed(model, y, drive, t)
        (grad,) = torch.autograd.grad(q.sum(), y)
        y = y.detach()
        q = q.detach()
        improved = q < best_q
        best_q = torch.where(improved, q, best_q)
        best_y[improved] = y[improved]
        active = best_q >= tol
        if not active.any() or iters >= max_iter:
            break
        iters += 1
        progress = best_q < ref_q * (1 - threshold)
        ref_q = torch.where(progress, best_q, ref_q)
        last = torch.where(progress, iters, last)
        stalled = iters - last > patience
        rate = torch.where(stalled, rate / 2, rate)
        last = torch.where(stalled, iters, last)
        m.mul_(betas[0]).add_((1 - betas[0]) * grad)
        v.mul_(betas[1]).add_((1 - betas[1]) * grad.square())
        m_hat, v_hat = m / (1 - betas[0] ** iters), v / (1 - betas[1] ** iters)
        y = y - (active * rate)[:, None] * m_hat / (v_hat.sqrt() + eps)
    return best_y, best_q, iters
