"""Activation functions by name, for rate models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..transforms import transforms_active

Activation = Callable[[Tensor], Tensor]


def numpy_tanh(z: Tensor) -> Tensor:
    """``tanh(z)`` through numpy's SIMD tanh (at most 1.4 ulp from the exact value) for a CPU
    float32/float64 tensor of at least 8 KiB (2048 float32 or 1024 float64 values) outside any
    autograd graph, forward-mode AD or torch.func transform; torch's otherwise.

    Torch 2.13's CPU tanh is 4x slower than numpy's in float32 and 3x in float64 (43 us against
    10 us on 16 384 float32 values, one AVX-512 core), and it dominated a rate-RNN step; on
    smaller tensors numpy's call overhead (~3 us) outweighs the gain.
    """
    if (z.numel() * z.element_size() < 8192 or z.device.type != "cpu" or z.dtype not in (torch.float32, torch.float64)
            or z.requires_grad or type(z) is not Tensor or z.is_neg()
            or transforms_active()):  # z may be a torch.func wrapper or carry a forward-mode tangent
        return torch.tanh(z)
    out = torch.empty_like(z)
    np.tanh(z.numpy(), out=out.numpy())
    return out


def tanh(z: Tensor) -> Tensor:
    """The "tanh" activation: torch's where autograd records it, :func:`numpy_tanh` where it does not."""
    return torch.tanh(z) if torch.is_grad_enabled() and z.requires_grad else numpy_tanh(z)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": tanh,
    "relu": torch.relu,
    "linear": lambda z: z,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
}


SLOPES: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": lambda z: 1 - tanh(z).square(),
    "relu": lambda z: (z > 0).to(z.dtype),
    "linear": torch.ones_like,
    "softplus": lambda z: torch.where(z > 20, 1.0, torch.sigmoid(z)),  # F.softplus is linear above threshold 20
    "sigmoid": lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)),
}


def slope_of(activation: Activation) -> Callable[[Tensor], Tensor] | None:
    """The derivative ``f'`` of a named activation, or the ``slope`` a composite activation
    exposes; None for a user callable (the analysis code differentiates it with autograd)."""
    for name, f in ACTIVATIONS.items():
        if f is activation:
            return SLOPES[name]
    return getattr(activation, "slope", None)


def get_activation(activation: str | Activation) -> Activation:
    """Resolve an activation name or pass a callable ``(B, n) -> (B, n)`` through."""
    if activation is torch.tanh:  # the named one, so that closed-form slopes and the fused scan apply
        return ACTIVATIONS["tanh"]
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a callable; got {activation!r}"
    )
