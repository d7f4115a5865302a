"""Named model parameters that are either trainable or fixed (buffers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn


def register_tensor(
    module: nn.Module,
    name: str,
    value: Any,
    *,
    trainable: bool = False,
    positive: bool = False,
    shapes: Iterable[tuple[int, ...]] = ((),),
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Validate ``value`` and register it on ``module`` as ``name``.

    A trainable tensor becomes an ``nn.Parameter``, a fixed one a buffer, so
    either is readable (``module.name``) and settable by name, e.g. through
    ``torch.func.functional_call`` in a parameter sweep. ``shapes`` lists the
    allowed shapes (default: scalar only).
    """
    if isinstance(value, Tensor):
        tensor = value.detach().clone()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        tensor = torch.tensor(float(value), dtype=dtype or torch.get_default_dtype())
    else:
        raise TypeError(f"{name} must be a number or a tensor; got {type(value).__name__}")
    if not torch.is_floating_point(tensor):
        tensor = tensor.to(torch.get_default_dtype())
    if dtype is not None:
        tensor = tensor.to(dtype)
    shapes = [tuple(s) for s in shapes]
    if tuple(tensor.shape) not in shapes:
        allowed = " or ".join("a scalar" if not s else str(s) for s in shapes)
        raise ValueError(f"{name} must be {allowed}; got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite; got {value!r}")
    if positive and (tensor <= 0).any():
        raise ValueError(f"{name} must be > 0; got {value!r}")
    if trainable:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)
    return getattr(module, name)


def check_trainable(trainable: Iterable[str], names: Iterable[str]) -> set[str]:
    """Validate a list of names of parameters to train against the model's parameter names."""
    if isinstance(trainable, str):
        raise TypeError(f"trainable must be a list of parameter names, e.g. [{trainable!r}]; got a str")
    chosen, known = set(trainable), list(names)
    unknown = sorted(chosen - set(known))
    if unknown:
        raise ValueError(f"trainable names unknown parameters {unknown}; choose from {known}")
    return chosen
