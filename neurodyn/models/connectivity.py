"""Recurrent connectivity shared by every network model."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def as_weight(name: str, value: Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, init) -> Tensor:
    """Validate a user-given initial tensor, or draw one with ``init(shape)``."""
    if value is None:
        return init(shape).to(dtype)
    value = torch.as_tensor(value)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; pass finite initial values")
    return value.detach().clone().to(dtype)


def infer_dtype(*tensors: Tensor | None) -> torch.dtype:
    """The dtype of the first floating tensor given, else torch's default."""
    for t in tensors:
        if isinstance(t, Tensor) and torch.is_floating_point(t):
            return t.dtype
    return torch.get_default_dtype()


def gaussian(g: float, n: int):
    """Initializer ``W_ij ~ g N(0, 1) / sqrt(n)`` (Sompolinsky et al. 1988)."""
    return lambda shape: g * torch.randn(shape, dtype=torch.float64) / math.sqrt(n)


class Connectivity(nn.Module):
    """The effective recurrent matrix ``W`` of a network, built from ``W~``."""

    def __init__(self, n: int, *, g: float = 1.5, W: Tensor | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dtype = dtype or infer_dtype(W)
        self.weight = nn.Parameter(as_weight("W", W, (n, n), dtype, gaussian(g, n)))

    def forward(self) -> Tensor:
        return self.weight
