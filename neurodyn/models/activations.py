"""Activation functions by name, for rate models."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

Activation = Callable[[Tensor], Tensor]

ACTIVATIONS: dict[str, Activation] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda z: z,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
}


SLOPES: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": lambda z: 1 - torch.tanh(z).square(),
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
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a callable; got {activation!r}"
    )
