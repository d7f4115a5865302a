r"""Fixed points ``F(y*) = 0`` of a model's vector field, with their linear stability.

Two methods, both batched over all starting states at once:

* ``"newton"``: Newton's method on ``F(y) = 0`` with the exact Jacobian ``J``,
  globalized by Powell's dogleg trust region (the method of MINPACK's
  ``hybrj`` behind ``scipy.optimize.fsolve``): steps blend the Newton step
  ``J delta = -F`` with steepest descent on ``q`` inside a radius that adapts
  to how well the linearization predicts ``q``. Where ``J`` is singular, as on
  a line attractor, a Levenberg–Marquardt step stands in for Newton's. One
  batched Jacobian and one batched factorization per accepted step, over the
  starts still active: converged starts leave the batch, and so do starts
  that stall (at slow points) or make no real headway (``q`` not halved in 10
  iterations), which are reported as not converged.
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
from ..validation import as_int, as_real
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
    points are those with a small ``start_q`` above ``tol``. ``inputs (K, n_in)``
    is the constant input of each point (several when ``x`` was given per start).
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
    inputs: Tensor | None = None

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
    check_model(model, one_network=True)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    tol, unique_tol, lr = (as_real(name, value, gt=0) for name, value in
                           (("tol", tol), ("unique_tol", unique_tol), ("lr", lr)))
    if marginal_tol is not None:
        marginal_tol = as_real("marginal_tol", marginal_tol, ge=0, expected="None (automatic) or a number >= 0")
    max_iter = as_int("max_iter", DEFAULT_MAX_ITER[method] if max_iter is None else max_iter, 1)
    if exclude_outliers is not None:
        exclude_outliers = as_real("exclude_outliers", exclude_outliers, gt=0, expected="> 0 or None")
    t = as_real("t", t)
    y0 = flat_states(model, init, "init")
    xc = constant_input(model, x, y0.shape[0]).expand(y0.shape[0], -1)
    with torch.no_grad():
        drive = model.input_drive(xc).expand(y0.shape[0], -1)
    if method == "newton":
        y, q, iters = _damped_newton(model, y0, drive, t, tol, max_iter)
    else:
        y, q, iters = _adam(model, y0, drive, t, tol, max_iter, lr)
    ok = q < tol
    if not torch.isfinite(q).any():
        warnings.warn(f"find_fixed_points: the vector field is NaN or infinite at all {len(q)} starts; check the "
                      "model's parameters (a zero time constant?) and init", stacklevel=2)
    elif not ok.any():
        if method == "adam":
            advice = (f"Adam's first steps move every coordinate by about lr={lr:g}, which can throw starts far "
                      "from a nearby fixed point when the states are smaller than that: try a smaller lr, or "
                      "method='newton'")
        elif iters >= max_iter:
            advice = "raise max_iter or tol"
        else:
            advice = "starts that stop halving q are retired as slow points: try more or other starts, or a larger tol"
        warnings.warn(f"find_fixed_points: none of {len(q)} starts reached q < tol={tol:g} in {iters} "
                      f"iterations (smallest q = {float(q.min()):.3g}); " + advice
                      + (", or analyse model.double()" if model.dtype != torch.float64 else ""), stacklevel=2)
    n_outliers = 0
    keep = ok
    if exclude_outliers is not None:
        center = y0.mean(0)
        scale = (y0 - center).norm(dim=-1).mean()
        if scale > 0:
            far = (y - center).norm(dim=-1) > exclude_outliers * scale
            n_outliers = int((ok & far).sum())
            keep = ok & ~far
        else:
            warnings.warn("find_fixed_points: exclude_outliers needs starts that differ (their spread sets the "
                          "scale); all starts are the same point, so no point was excluded", stacklevel=2)
    index = torch.nonzero(keep).squeeze(1)
    index = index[_unique(y[index], q[index], xc[index], unique_tol)]
    states, qs = y[index].detach(), q[index].detach()
    dim = states.shape[1]
    with torch.no_grad():
        J = field_and_jacobian(model, states, drive[index], t)[1].contiguous() if len(index) else states.new_zeros(
            0, dim, dim)
    return FixedPoints(states=states, q=qs, jacobians=J, shapes=dict(model.state_shapes), n_starts=len(q),
                       n_unconverged=int((~ok).sum()), n_outliers=n_outliers, iterations=iters,
                       method=method, marginal_tol=marginal_tol, start_states=y.detach(), start_q=q.detach(),
                       inputs=xc[index].detach())


def _unique(y: Tensor, q: Tensor, x: Tensor, radius: float) -> Tensor:
    """Indices of points kept greedily in order of increasing ``q``, each farther than ``radius`` from those kept
    under the same input ``x`` (points of different inputs are different fixed points)."""
    order = torch.argsort(q)
    y, x = y[order], x[order]
    # the exact distances: cdist's matrix-product shortcut (above 25 points) is off by ~1e-2 in float32
    distance = torch.cdist(y, y, compute_mode="donot_use_mm_for_euclid_dist")
    close = ((distance <= radius) & (x[:, None] == x[None]).all(-1)).cpu().numpy()
    kept: list[int] = []
    for i in range(len(order)):
        if not close[i, kept].any():
            kept.append(i)
    return order[torch.tensor(kept, dtype=torch.long, device=order.device)]


def speed(model: Model, y: Tensor, drive: Tensor, t: float) -> Tensor:
    """``q = 1/2 |F(y)|^2 (B,)`` at the flat states ``y (B, D)`` (NaN/Inf kept as inf)."""
    q = 0.5 * evaluate_field(model, y, drive, t).pow(2).sum(-1)
    return torch.nan_to_num(q, nan=math.inf, posinf=math.inf)  # (posinf would default to the largest float)


@torch.no_grad()
def _damped_newton(model: Model, y: Tensor, drive: Tensor, t: float, tol: float, max_iter: int,
                   window: int = 10, lag: int = 5, creep: float = 1e-2) -> tuple[Tensor, Tensor, int]:
    """Powell's dogleg trust region over all starts at once; returns (states, q, iterations).

    Each start keeps a trust radius ``Delta``. Its step is the Newton step
    ``J delta = -F`` if that fits in the radius, the Cauchy (steepest-descent)
    step ``-(|g|^2/|J g|^2) g`` with ``g = J^T F`` cut to the radius if that
    does not, and otherwise the point where the segment between them leaves the
    radius (Powell 1970; MINPACK's ``hybrj``, which ``scipy.optimize.fsolve``
    runs). A step is accepted when ``q`` falls by more than ``1e-4`` of the
    decrease the linear model predicts; the radius shrinks to ``|delta|/4``
    when the prediction was poor (ratio < 1/4) and doubles when it was good
    (> 3/4). Where ``J`` is (near) singular, as on a line attractor, the
    Newton step is replaced by the Levenberg–Marquardt step
    ``-(J^T J + lam I)^{-1} J^T F``, ``lam = 1e-2 |F| ||J||_F`` (Fan & Yuan 2005).

    One Jacobian and one factorization per accepted step (``g`` and ``J g``
    come from autodiff through the vector field): both steps and their images
    under ``J`` are cached, so a rejected step only shrinks the radius. A start
    is retired one (polishing) step after it reaches ``q < tol``, or as
    stalled at a slow point (a local minimum of ``q`` above ``tol``) when its
    ``q`` fell by less than the fraction ``creep`` over its last ``lag``
    accepted steps, has not halved in ``window`` iterations, or its radius has
    collapsed below ``1e-14 (1 + |y|)``. The ``window`` rule retires starts
    creeping along a valley of ``q`` toward a slow point, which cost most of
    the work while rarely reaching a root: on a random N = 256, g = 1.5 tanh
    network (128 starts) ``window = 10`` instead of 30 takes 3279 instead of
    7170 start-iterations, converges 42 instead of 45 starts and finds the
    same 10 unique fixed points (the same on 3 further seeds).
    """
    y = y.clone()
    q = speed(model, y, drive, t)
    idx = torch.nonzero(torch.isfinite(q)).squeeze(1)  # the active starts, with compact copies of their state
    if not len(idx):
        return y, q, 0
    ya, qa, da = y[idx], q[idx], drive[idx]
    Fa, steps = _steps(model, ya, da, t)
    radius = 10 * (1 + ya.norm(dim=-1))
    ref, last = qa.clone(), torch.zeros_like(qa)
    past = qa[:, None].repeat(1, lag)  # q after each of the last `lag` accepted steps, a ring buffer
    accepted = torch.ones_like(qa, dtype=torch.long)
    iters = 0
    while len(idx) and iters < max_iter:
        iters += 1
        converged = qa < tol  # these take one more (polishing) step, then retire
        newton, cauchy, j_newton, j_cauchy = steps
        a, b = _dogleg(newton, cauchy, radius)
        delta = a[:, None] * newton + b[:, None] * cauchy
        predicted = qa - 0.5 * (Fa + a[:, None] * j_newton + b[:, None] * j_cauchy).pow(2).sum(-1)
        trial = ya + delta
        q_trial = speed(model, trial, da, t)
        ratio = (qa - q_trial) / predicted
        better = (q_trial < qa) & (ratio > 1e-4)
        step = delta.norm(dim=-1)
        radius = torch.where(ratio < 0.25, 0.25 * step, torch.where(ratio > 0.75, torch.maximum(radius, 2 * step),
                                                                     radius))
        ya[better], qa[better] = trial[better], q_trial[better]
        moved = better & ~converged  # a polished start retires below: no new steps for it
        if moved.any():
            Fa[moved], fresh = _steps(model, ya[moved], da[moved], t)
            for cached, new in zip(steps, fresh, strict=True):
                cached[moved] = new
        progress = qa < 0.5 * ref
        ref, last = torch.where(progress, qa, ref), torch.where(progress, iters, last)
        slot = (accepted % lag)[:, None]
        creeping = better & (accepted >= lag) & (qa > (1 - creep) * past.gather(1, slot).squeeze(1))
        past.scatter_(1, slot, torch.where(better, qa, past.gather(1, slot).squeeze(1))[:, None])
        accepted += better
        collapsed = radius < 1e-14 * (1 + ya.norm(dim=-1))
        retire = converged | creeping | collapsed | (iters - last >= window)
        if retire.any():
            y[idx[retire]], q[idx[retire]] = ya[retire], qa[retire]
            keep = ~retire
            idx, ya, Fa, qa, da, radius, ref, last, past, accepted = (
                v[keep] for v in (idx, ya, Fa, qa, da, radius, ref, last, past, accepted))
            steps = tuple(v[keep] for v in steps)
    y[idx], q[idx] = ya, qa
    return y, q, iters


def _steps(model: Model, y: Tensor, drive: Tensor, t: float) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``F`` and the dogleg's ingredients at ``y (B, D)``: the Newton step (LM where ``J`` is near
    singular), the Cauchy step, and their images under ``J``, each ``(B, D)``."""
    F, J = field_and_jacobian(model, y, drive, t)
    newton = -solve(J, F)
    singular = ~torch.isfinite(newton).all(-1) | (newton.norm(dim=-1) > 1e6 * (1 + y.norm(dim=-1)))
    j_newton = -F.clone()
    if singular.any():
        Js, Fs = J[singular], F[singular]
        lam = 1e-2 * Fs.norm(dim=-1) * Js.flatten(1).norm(dim=-1)
        eye = torch.eye(J.shape[-1], dtype=J.dtype, device=J.device)
        lm = -solve(Js.mT @ Js + lam[:, None, None] * eye, (Js.mT @ Fs.unsqueeze(-1)).squeeze(-1))
        lm = torch.nan_to_num(lm, nan=0.0, posinf=0.0, neginf=0.0)
        newton[singular], j_newton[singular] = lm, (Js @ lm.unsqueeze(-1)).squeeze(-1)
    g, Jg = _gradient_products(model, y, drive, t, F)
    scale = torch.nan_to_num(g.pow(2).sum(-1) / Jg.pow(2).sum(-1), nan=0.0, posinf=0.0)[:, None]
    return F, (newton, -scale * g, j_newton, -scale * Jg)


def _gradient_products(model: Model, y: Tensor, drive: Tensor, t: float, F: Tensor) -> tuple[Tensor, Tensor]:
    """``g = J^T F`` and ``J g (B, D)`` at the flat states ``y (B, D)``, without forming ``J``.

    Both come from one graph: ``g(u) = J^T u`` by a backward pass through the
    vector field, then ``J g = d(g(u) . g)/du`` by a second one (reverse mode
    twice: cheaper than a matrix-vector product with each state's own ``J``).
    """
    with torch.enable_grad():
        z, u = y.detach().requires_grad_(True), F.detach().requires_grad_(True)
        field = evaluate_field(model, z, drive, t)
        if not field.requires_grad:  # F does not depend on the state: J = 0
            return torch.zeros_like(y), torch.zeros_like(y)
        (g,) = torch.autograd.grad(field, z, u, create_graph=True, materialize_grads=True)
        if not g.requires_grad:
            return g.detach(), torch.zeros_like(y)
        (Jg,) = torch.autograd.grad(g, u, g.detach(), materialize_grads=True)
    return g.detach(), Jg


def _dogleg(newton: Tensor, cauchy: Tensor, radius: Tensor) -> tuple[Tensor, Tensor]:
    """Powell's dogleg step inside the trust radius, as the weights ``(a, b)`` of ``a newton + b cauchy``."""
    n_newton, n_cauchy = newton.norm(dim=-1), cauchy.norm(dim=-1)
    d = newton - cauchy
    p, r, c = d.pow(2).sum(-1), (cauchy * d).sum(-1), n_cauchy.pow(2) - radius.pow(2)
    tau = ((-r + (r.pow(2) - p * c).clamp(min=0).sqrt()) / p).nan_to_num(0.0).clamp(0, 1)
    inside, beyond = n_newton <= radius, n_cauchy >= radius
    zero = torch.zeros_like(tau)
    a = torch.where(inside, 1.0, torch.where(beyond, zero, tau))
    b = torch.where(inside, zero, torch.where(beyond, (radius / n_cauchy).nan_to_num(0.0), 1 - tau))
    return a, b


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
