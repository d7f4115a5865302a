r"""Eq. 27 run as one fused autograd operation, with its discrete adjoint written out.

The S steps of the discrete-time rate RNN (primer Eq. 27; Euler–Maruyama when
``noise`` is given)::

    z_k     = r_k W^T + d_k
    r_{k+1} = r_k + h_k (f(z_k) - r_k) / tau + n_k

run without recording autograd per step, as fused RNN kernels do (cuDNN's RNN;
Appleyard, Kocisky & Blunsom 2016). The backward pass runs the adjoint
recurrence, with ``lam_k = dL/dr_k`` and ``g_k`` the gradient arriving at ``r_k``::

    lam_{k+1} <- g_{k+1} + lam_{k+1}
    dz_k       = lam_{k+1} (h_k / tau) f'(z_k)
    lam_k      = lam_{k+1} (1 - h_k / tau) + dz_k W

and then, in one GEMM over all steps, ``dL/dW = sum_k dz_k^T r_k = DZ^T R`` with
``DZ, R`` the ``(S B, n)`` stacks; ``dL/dd_k = dz_k``, ``dL/dn_k = lam_{k+1}`` and
``dL/dtau = -sum_k lam_{k+1} h_k (f(z_k) - r_k) / tau^2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .activations import numpy_tanh, tanh
from .linear import recurrent_steps

Elementwise = Callable[[Tensor], Tensor]
SECOND_ORDER = ("second-order gradients (create_graph=True) through the fused Euler scan of a rate network are not "
                "supported; for them use a callable activation (e.g. activation=lambda z: torch.tanh(z)), which "
                "runs the step-by-step loop, or solver=\"midpoint\" / \"rk4\" with gradient=\"backprop\"")


def _plus_product(W: Tensor, A: Tensor, transpose: bool = True) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """``(C, A, out) -> C + A W^T`` (or ``C + A W`` without ``transpose``) for many ``A`` like this one: one
    network's product as RateRNN's vector field takes it (:func:`~neurodyn.models.linear.recurrent_steps`),
    or ``baddbmm`` for K networks' stacked ``(K, n, n)`` matrices. Without ``out``, the result may be in a
    buffer that the next call reuses."""
    if W.dim() == 3:
        M, scratch = (W.transpose(1, 2) if transpose else W), A.new_empty(0)
        return lambda C, A, out: torch.baddbmm(C, A, M, out=scratch if out is None else out)
    return recurrent_steps(W if transpose else W.t(), A)


def _summed_outer(dz: Tensor, r: Tensor) -> Tensor:
    """``sum_k dz_k^T r_k`` over the S steps and B trials, as one GEMM per network."""
    n = dz.shape[-1]
    if dz.dim() == 3:
        return dz.reshape(-1, n).t().mm(r.reshape(-1, n))
    K = dz.shape[1]
    return torch.bmm(dz.transpose(0, 1).reshape(K, -1, n).transpose(1, 2), r.transpose(0, 1).reshape(K, -1, n))


class _RateScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, W: Tensor, tau: Tensor, r0: Tensor, drive: Tensor, noise: Tensor | None,
                h: list[float], f: Elementwise, slope: Elementwise, saving: bool, match_generic: bool) -> Tensor:
        steps = len(h)
        states = r0.new_empty(steps + 1, *r0.shape)  # r_0 .. r_S
        currents = r0.new_empty(steps if saving else 0, *r0.shape)  # z_0 .. z_{S-1}, kept for the backward pass
        states[0] = r0
        current = _plus_product(W, r0)
        if match_generic:  # RateRNN.vector_field's and fixed_step.euler's operations, so bitwise equal to them
            act, weight = (torch.tanh if saving and f is tanh else f), None  # the "tanh" activation's choice
        else:  # r + (h / tau) (f(z) - r) as one lerp, and numpy's tanh
            act, weight = (numpy_tanh if f is tanh else f), {step: step / tau for step in set(h)}
        for k in range(steps):
            r = states[k]
            rate = act(current(drive[k], r, currents[k] if saving else None))
            if weight is None:
                torch.add(r, rate.sub(r).div_(tau), alpha=h[k], out=states[k + 1])
            else:
                torch.lerp(r, rate, weight[h[k]], out=states[k + 1])
            if noise is not None:
                states[k + 1].add_(noise[k])
        ctx.save_for_backward(W, tau, states, currents)
        ctx.h, ctx.f, ctx.slope = h, f, slope
        ctx.shapes = drive.shape, None if noise is None else noise.shape
        return states[1:]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: the states were computed without a graph
            raise RuntimeError(SECOND_ORDER)
        W, tau, states, currents = ctx.saved_tensors
        need_W, need_tau, need_r0, need_drive, need_noise = ctx.needs_input_grad[:5]
        steps, back = currents.shape[0], _plus_product(W, grad[-1], transpose=False)  # lam W
        h = torch.tensor(ctx.h, dtype=W.dtype, device=W.device).view(-1, *[1] * (currents.dim() - 1))
        step_over_tau = h / tau  # (S, [K,] 1, n) or (S, [K,] 1, 1)
        gain = ctx.slope(currents) * step_over_tau  # dz_k = lam_{k+1} * gain_k
        keep = 1 - step_over_tau
        dz = torch.empty_like(currents)
        lams = torch.empty_like(currents) if need_tau or need_noise else None
        lam = grad[-1]  # dL/dr_S
        for k in reversed(range(steps)):  # lam = dL/dr_{k+1} -> dL/dr_k = g_k + lam (1 - h_k / tau) + dz_k W
            if lams is not None:
                lams[k] = lam
            torch.mul(lam, gain[k], out=dz[k])
            if k:
                lam = back(torch.addcmul(grad[k - 1], lam, keep[k]), dz[k], None)
            elif need_r0:
                lam = back(lam * keep[0], dz[0], None)
        grad_W = _summed_outer(dz, states[:-1]) if need_W else None
        grad_tau = None
        if need_tau:
            change = ctx.f(currents) - states[:-1]
            grad_tau = (lams * change * h).sum(0).div(tau.square()).neg().sum_to_size(tau.shape)
        drive_shape, noise_shape = ctx.shapes
        grad_drive = dz.sum_to_size(drive_shape) if need_drive else None
        grad_noise = lams.sum_to_size(noise_shape) if need_noise else None
        return grad_W, grad_tau, lam if need_r0 else None, grad_drive, grad_noise, None, None, None, None, None


def rate_scan(r0: Tensor, drive: Tensor, h: list[float], noise: Tensor | None, *, W: Tensor, tau: Tensor,
              f: Elementwise, slope: Elementwise, match_generic: bool = True) -> Tensor:
    """The states ``r_1 .. r_S (S, B, n)`` after S steps of Eq. 27 from ``r0 (B, n)``.

    With K networks' stacked weights ``W (K, n, n)`` and ``tau (K, 1, n or 1)``, every
    tensor gains a network axis after the step axis: ``r0 (K, B, n)`` -> ``(S, K, B, n)``.
    ``drive (S, B or 1, n)`` is ``d_k``, ``h`` the S step sizes, ``noise (S, B, n)``
    the additive increments ``n_k`` (or None), ``f`` an elementwise activation and
    ``slope`` its derivative ``f'``. Gradients reach ``W``, ``tau``, ``r0``,
    ``drive`` and ``noise`` through the adjoint recurrence of the module docstring.
    ``match_generic`` keeps the forward bitwise equal to the generic loop (RateRNN's
    vector field and Euler steps, which a perturbed copy of the model runs); without it
    a step is one ``lerp`` and tanh goes through numpy's also where a graph is recorded.
    """
    if len(h) != drive.shape[0] or (noise is not None and noise.shape[0] != len(h)):
        raise ValueError(f"drive and noise need one row per step ({len(h)}); got {drive.shape[0]} and "
                         f"{None if noise is None else noise.shape[0]}")
    # needs_input_grad ignores no_grad mode: without a graph to record, keep nothing for a backward pass
    saving = torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in (W, tau, r0, drive, noise))
    return _RateScan.apply(W, tau, r0, drive, noise, h, f, slope, saving, match_generic)
