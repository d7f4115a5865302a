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


def get_activation(activation: str | Activation) -> Activation:
    """Resolve an activation name or pass a callable ``(B, n) -> (B, n)`` through."""
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a callable; got {activation!r}"
    )
