"""Argument validation shared by the whole package: numbers and arrays given by users.

Numbers may be Python or numpy scalars (or 0-d arrays) or 0-d tensors; arrays may
be tensors, numpy arrays or nested lists. Booleans are rejected where a number is
meant. Errors name the argument and are :class:`ArgumentTypeError` (a TypeError
that is also a ValueError) for a wrong type, ValueError for a wrong value.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import ArgumentTypeError


def as_int(name: str, value: Any, low: int, high: int | None = None, *, expected: str | None = None) -> int:
    """``value`` as a Python int in ``[low, high]``: an int, a numpy integer or a 0-d integer tensor (not a bool).

    ``expected`` replaces the "an int >= low" of the error message.
    """
    what = f"{name} must be {expected or (f'an int >= {low}' if high is None else f'an int in [{low}, {high}]')}"
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point() and not value.is_complex() \
            and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{what}; got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{what}; got {value!r}")
    return int(value)


def as_real(name: str, value: Any, *, gt: float | None = None, ge: float | None = None,
            le: float | None = None, expected: str | None = None) -> float:
    """``value`` as a finite Python float with ``value > gt``, ``>= ge``, ``<= le`` (each optional).

    Accepts Python and numpy reals, 0-d real arrays and tensors; rejects bools. ``expected``
    replaces the "a finite number > gt" of the error message.
    """
    lower = f"({gt:g}" if gt is not None else f"[{ge:g}" if ge is not None else None
    bound = (f"in {lower}, {le:g}]" if lower and le is not None else f"> {gt:g}" if gt is not None
             else f">= {ge:g}" if ge is not None else f"<= {le:g}" if le is not None else "")
    what = f"{name} must be {expected or f'a finite number {bound}'.rstrip()}"
    number = value
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype != torch.bool and not value.is_complex():
        number = float(value.detach())
    elif isinstance(value, np.ndarray) and value.ndim == 0:
        number = value.item()
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


def rounding(values: Tensor | np.ndarray) -> float:
    """How far the entries of a float array may be from the numbers they stand for, ``8 eps max|values|``
    (0 for an integer array): the slack for comparing times and spans computed from them."""
    if isinstance(values, Tensor):
        return 8 * torch.finfo(values.dtype).eps * float(values.abs().max()) if values.is_floating_point() else 0.0
    return 8 * np.finfo(values.dtype).eps * float(np.abs(values).max()) if values.dtype.kind == "f" else 0.0
