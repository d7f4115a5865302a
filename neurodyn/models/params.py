"""Named model parameters that are trainable (``nn.Parameter``) or fixed (buffers), validated on the way in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..validation import as_tensor, float_dtype


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
    tensor = as_tensor(name, value)
    tensor = tensor.to(dtype or float_dtype(value) or torch.get_default_dtype())
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
