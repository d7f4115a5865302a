"""Adaptive and adjoint integration, delegated to torchdiffeq.

``gradient="adjoint"`` uses ``odeint_adjoint`` (Chen et al. 2018). Its backward
solve restarts from the forward solution only at the requested times, which on
chaotic systems makes the gradient silently wrong; callers pass extra anchor
times (see :func:`anchored_times`) and drop them from the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchdiffeq import odeint, odeint_adjoint

from .fixed_step import substeps

ADAPTIVE = ("dopri5", "bosh3", "adaptive_heun", "dopri8")


class _Field(nn.Module):
    """Wraps ``f(t, y)`` as a module (torchdiffeq's adjoint wants one) and counts evaluations."""

    def __init__(self, f: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.f = f
        self.nfe = 0
        self.t = None  # the time of the latest evaluation (where a failed solve got stuck)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        self.t = t
        return self.f(t, y)


def anchored_times(t: Tensor, anchor_dt: float) -> tuple[Tensor, Tensor]:
    """``t`` merged with anchors every ``anchor_dt``; returns ``(t_all, index of t in t_all)``."""
    t0, t1 = float(t[0]), float(t[-1])
    n = int(math.floor((t1 - t0) / anchor_dt))
    anchors = t0 + anchor_dt * torch.arange(1, n + 1, dtype=t.dtype, device=t.device)
    gap = torch.cdist(anchors.reshape(-1, 1), t.reshape(-1, 1)).amin(dim=1) if n else anchors
    anchors = anchors[gap > 1e-3 * anchor_dt] if n else anchors
    t_all, order = torch.sort(torch.cat([t, anchors]))
    index = torch.argsort(order)[: t.shape[0]]
    return t_all, index


def _fixed_grid(dt: float | None):
    """torchdiffeq grid: each interval of the requested times split into ceil(len/dt) equal steps."""

    def construct(func, y0, t):
        if dt is None:
            return t
        pieces = [t[:1]]
        for a, b in zip(t[:-1], t[1:]):
            n = substeps(abs(float(b - a)), dt)  # the adjoint's backward solve runs on a decreasing grid
            pieces.append(a + (b - a) * torch.arange(1, n + 1, dtype=t.dtype, device=t.device) / n)
        return torch.cat(pieces)

    return construct


class _AdjointGuard(torch.autograd.Function):
    """Runs an adjoint solve and turns torchdiffeq's bare backward assertions into clear errors."""

    @staticmethod
    def forward(ctx, solve, y0, *params):  # noqa: ANN001
        with torch.enable_grad():
            y0 = y0.detach().requires_grad_(y0.requires_grad)  # keep y0's own graph out of the inner one
            ys = solve(y0)
        ctx.needs = (y0, *params)
        ctx.ys, ctx.inputs = ys, tuple(p for p in ctx.needs if p.requires_grad)
        return ys.detach()

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        try:
            grads = iter(torch.autograd.grad(ctx.ys, ctx.inputs, grad, allow_unused=True))
            grads = [next(grads) if p.requires_grad else None for p in ctx.needs]
        except AssertionError as err:
            raise RuntimeError(
                f"the adjoint backward solve failed ({err}); this happens on long or stiff runs. "
                'Use gradient="checkpoint" for the same gradients as backprop with sqrt(T) memory.'
            ) from err
        return (None, *grads)


def integrate_torchdiffeq(
    f: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    *,
    method: str,
    rtol: float,
    atol: float,
    jump_t: Tensor,
    max_steps: int,
    gradient: str,
    params: tuple[Tensor, ...],
    dt: float | None = None,
) -> tuple[Tensor, int]:
    """Solve with torchdiffeq; returns ``(ys (B, T, D), nfe)``.

    ``method`` is an adaptive solver name, or a fixed-step one ("euler",
    "midpoint", "rk4") for the adjoint, stepped at most ``dt`` apart.
    """
    field = _Field(f)
    # a fixed grid evaluates just after t0 and just before t1 (perturb): a zero-order-hold input switching on the
    # grid is then read on the step's own interval, not the next one (rk4's last stage sits at t1)
    options = ({"max_num_steps": max_steps} if method in ADAPTIVE
               else {"grid_constructor": _fixed_grid(dt), "perturb": True})

    def solve(y: Tensor, times: Tensor) -> Tensor:
        inside = jump_t[(jump_t > times[0]) & (jump_t <= times[-1])]
        if method in ADAPTIVE and inside.numel():
            options["jump_t"] = inside
        else:
            options.pop("jump_t", None)
        if gradient == "adjoint":
            trainable = tuple(p for p in params if p.requires_grad)
            return odeint_adjoint(field, y, times, rtol=rtol, atol=atol, method=method,
                                  options=dict(options), adjoint_params=trainable)
        return odeint(field, y, times, rtol=rtol, atol=atol, method=method, options=dict(options))

    try:
        if gradient == "checkpoint" and torch.is_grad_enabled():
            seg = max(1, math.isqrt(t.shape[0] - 1))
            pieces, y = [y0.unsqueeze(0)], y0
            for start in range(0, t.shape[0] - 1, seg):
                times = t[start:start + seg + 1]
                ys = checkpoint(solve, y, times, use_reentrant=False)
                pieces.append(ys[1:])
                y = ys[-1]
            ys = torch.cat(pieces)
        elif gradient == "adjoint" and torch.is_grad_enabled():
            ys = _AdjointGuard.apply(lambda y: solve(y, t), y0, *params)
        else:
            ys = solve(y0, t)
    except AssertionError as err:  # torchdiffeq's checks (step underflow, max steps): keep where the solve stopped
        err.t = None if field.t is None else float(field.t.detach())
        raise
    return ys.transpose(0, 1), field.nfe
