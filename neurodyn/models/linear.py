"""Matrix products of the models, each in the form the CPU computes fastest: input projections (``linear``)
and recurrent currents (``recurrent``)."""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from ..transforms import transforms_active


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x W^T + b`` (``F.linear``) for ``x (..., m)`` and ``W (n, m)``, the same values.

    Autograd forms F.linear's weight gradient as ``g^T x``, ``(n, M) @ (M, m)`` over the
    M rows of ``x``; with torch 2.13 on CPU (MKL) that is 14x slower than ``(x^T g)^T``
    when the weight is tall, as an input projection's (n = 1024, m = 4, M = 1088:
    4.5 ms against 0.31 ms). For a tall weight the product is therefore taken with
    ``W^T`` made contiguous, so autograd forms ``x^T g`` instead.
    """
    n, m = weight.shape
    if n <= m or m == 0:
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, m)
    Wt = weight.t().contiguous()
    out = rows.mm(Wt) if bias is None else torch.addmm(bias, rows, Wt)
    return out.reshape(*x.shape[:-1], n)


ONEDNN_MIN_UNITS = 800  # below this MKL's addmm is as fast or faster (see `recurrent`)


def recurrent(r: Tensor, W: Tensor, drive: Tensor) -> Tensor:
    """``drive + r W^T`` (``torch.addmm``'s values up to rounding) for ``r (B, m)``, ``W (n, m)`` and
    ``drive`` broadcastable to ``(B, n)``: the recurrent current of a rate network (primer Eq. 26).

    Every recurrent product of the rate models goes through here or :func:`recurrent_steps`, so that a
    fused scan and the step-by-step loop take the same products. Large float32 matrix-matrix products on
    an x86 CPU (``W`` at least 800 x 800, two or more trials) run in oneDNN, the CPU GEMM library torch
    ships (inductor's), instead of MKL's sgemm: with torch 2.13 on a 2-core AMD EPYC, ``(64 x 1024) @
    (1024 x 1024)`` takes 0.63-0.71 ms against 0.92-1.13 ms, and 1.2-2.2x less at batch sizes from 2 to
    256 at n = 1024. Below ~800 units oneDNN's call overhead makes it slower, and so it is for a single
    trial (MKL's matrix-vector product: 1.1-1.25x faster at n = 800-1500, and oneDNN's stalls when the
    cores are busy). Gradients (also second-order) are those of ``addmm``.
    """
    if not _onednn_fits(r, W):
        return torch.addmm(drive, r, W.t())
    if torch.is_grad_enabled() and (r.requires_grad or W.requires_grad or drive.requires_grad):
        return _OneDNNRecurrent.apply(r, W, drive)
    return _onednn_recurrent(r, W.contiguous(), drive)


def recurrent_steps(W: Tensor, r: Tensor) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """``(drive, r, out) -> drive + r W^T`` for many steps with the same ``W`` and states like ``r``
    (no autograd): :func:`recurrent`'s values, bitwise, with oneDNN's weight layout made once (it costs
    ~0.65 ms at n = 1024 and saves ~0.1 ms per product).

    ``out`` (or None) receives the result. Without it, an MKL product goes to a buffer that the next call
    reuses (a scan consumes each product before the next), a oneDNN one to fresh memory.
    """
    if not _onednn_fits(r, W):
        Wt, scratch = W.t(), r.new_empty(0)  # (an empty out= tensor is resized on first use)
        return lambda drive, r, out: torch.addmm(drive, r, Wt, out=scratch if out is None else out)
    packed = torch.ops.mkldnn._reorder_linear_weight(W.detach().contiguous(), r.shape[0])

    def product(drive: Tensor, r: Tensor, out: Tensor | None) -> Tensor:
        z = _onednn_recurrent(r, packed, drive)
        return z if out is None else out.copy_(z)

    return product


def _onednn_recurrent(r: Tensor, W: Tensor, drive: Tensor) -> Tensor:
    """``drive + r W^T`` by oneDNN's fused matmul-add (no autograd) for a contiguous or packed ``W``."""
    ops, shape = torch.ops.mkldnn._linear_pointwise, (r.shape[0], W.shape[0])
    r = r.contiguous()
    if drive.dim() and drive.shape[-1] == shape[1] == drive.numel():  # one row for all B: oneDNN's bias
        return ops(r, W, drive.reshape(-1).contiguous(), "none", [], "")
    return ops.binary(r, drive.expand(shape).contiguous(), W, None, "add")


class _OneDNNRecurrent(torch.autograd.Function):
    """:func:`_onednn_recurrent` with addmm's gradients: ``dr = g W``, ``dW = g^T r``, ``d drive = g``."""

    @staticmethod
    def forward(ctx: Any, r: Tensor, W: Tensor, drive: Tensor) -> Tensor:
        ctx.save_for_backward(r, W)
        ctx.drive_shape = drive.shape
        return _onednn_recurrent(r, W.contiguous(), drive)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        r, W = ctx.saved_tensors
        need_r, need_W, need_drive = ctx.needs_input_grad
        return (grad.mm(W) if need_r else None, grad.t().mm(r) if need_W else None,
                grad.sum_to_size(ctx.drive_shape) if need_drive else None)


@functools.cache
def _onednn_available() -> bool:
    """Whether torch's oneDNN matmul-add runs here and agrees with addmm (checked once)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        r, W, d = (torch.randn(*shape, generator=gen, dtype=torch.float32) for shape in ((3, 8), (5, 8), (3, 5)))
        return all(torch.allclose(_onednn_recurrent(r, W, drive), torch.addmm(drive, r, W.t()), atol=1e-5)
                   for drive in (d, d[0]))
    except (AttributeError, RuntimeError):  # a torch without these ops
        return False


def _onednn_fits(r: Tensor, W: Tensor) -> bool:
    """Large float32 CPU matrix-matrix products, outside torch.func transforms and forward-mode AD."""
    return (r.dim() == W.dim() == 2 and r.shape[0] > 1 and min(W.shape) >= ONEDNN_MIN_UNITS
            and r.dtype == W.dtype == torch.float32
            and r.device.type == W.device.type == "cpu" and _onednn_available()
            and not transforms_active())
