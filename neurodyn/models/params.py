"""Argument validation shared by the models, and named parameters that are trainable or fixed (buffers).

Numbers may be Python or numpy scalars or 0-d tensors; arrays may be tensors,
numpy arrays or nested lists. Booleans are rejected where a number is meant.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ArgumentTypeError


def as_int(name: str, value: Any, low: int) -> int:
    """``value`` as a Python int ``>= low``: an int, a numpy integer or a 0-d integer tensor (not a bool)."""
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point() and not value.is_complex() \
            and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int >= {low}; got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def as_real(name: str, value: Any, *, gt: float | None = None, ge: float | None = None,
            le: float | None = None) -> float:
    """``value`` as a finite Python float with ``value > gt``, ``>= ge``, ``<= le`` (each optional).

    Accepts Python and numpy reals and 0-d real tensors; rejects bools.
    """
    lower = f"({gt:g}" if gt is not None else f"[{ge:g}" if ge is not None else None
    bound = (f"in {lower}, {le:g}]" if lower and le is not None else f"> {gt:g}" if gt is not None
             else f">= {ge:g}" if ge is not None else f"<= {le:g}" if le is not None else "")
    what = f"{name} must be a finite number {bound}".rstrip()
    number = value
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype != torch.bool and not value.is_complex():
        number = float(value.detach())
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real):
        raise ArgumentTypeError(f"{what}; got {value!r} ({type(value).__name__})")
    number = float(number)
    if not (math.isfinite(number) and (gt is None or number > gt) and (ge is None or number >= ge)
            and (le is None or number <= le)):
        raise ValueError(f"{what}; got {value!r}")
    return number


def as_tensor(name: str, value: Any, *, allow_bool: bool = False) -> Tensor:
    """A detached copy of a tensor, or a tensor from a number, numpy array or nested list (numpy keeps its dtype).

    Raises ArgumentTypeError for anything else, and for booleans unless ``allow_bool``.
    """
    if isinstance(value, Tensor):
        tensor = value.detach().clone()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError):
            raise ArgumentTypeError(f"{name} must be a tensor, a numpy array or a number; "
                                    f"got {type(value).__name__}") from None
    if tensor.is_complex() or (tensor.dtype == torch.bool and not allow_bool):
        raise ArgumentTypeError(f"{name} must hold real numbers; got dtype {tensor.dtype}")
    return tensor


def float_dtype(value: Any) -> torch.dtype | None:
    """The floating dtype of a tensor or numpy array, else None (Python numbers and lists set no precision)."""
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.dtype
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return torch.from_numpy(np.empty(0, dtype=value.dtype)).dtype
    return None


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
