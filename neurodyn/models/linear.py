"""``F.linear`` whose weight gradient is formed in the orientation MKL computes fast."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


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
