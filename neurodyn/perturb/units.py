"""When a perturbation acts and with what values: argument checks shared by the wrappers (units: neurodyn.selection)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

Window = tuple[float, float]


def check_window(window: Any) -> Window | None:
    """``(t0, t1)`` as floats with ``t0 < t1`` both finite, or None (always on)."""
    if window is None:
        return None
    if isinstance(window, (Tensor, np.ndarray)):
        window = window.tolist()
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise TypeError(f"window must be a pair (t0, t1) of times, or None for the whole trial; got {window!r}")
    for edge in window:
        if isinstance(edge, bool) or not isinstance(edge, numbers.Real):
            raise TypeError(f"window must hold two real numbers (t0, t1); got {window!r}")
    t0, t1 = float(window[0]), float(window[1])
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"window must be finite; got ({t0}, {t1}) (use the trial's start or end time instead)")
    if t0 >= t1:
        raise ValueError(f"window must have t0 < t1; got ({t0}, {t1})")
    return t0, t1


def check_window_in_trial(window: Window | None, t: Tensor) -> Tensor:
    """The window's edges strictly inside the trial ``t``; ValueError when the window misses the trial."""
    if window is None:
        return t[:0]
    start, end = float(t[0]), float(t[-1])
    t0, t1 = window
    if t0 >= end or t1 <= start:
        raise ValueError(f"window=({t0:g}, {t1:g}) lies outside the trial [{start:g}, {end:g}]; "
                         "give a window that overlaps the simulated times t")
    edges = torch.tensor([e for e in window if start < e < end], dtype=t.dtype)
    return edges.to(t.device)


def per_unit(name: str, value: Any, k: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A finite scalar or ``(k,)`` value as a ``(k,)`` tensor (an ``nn.Parameter`` stays one, so it can be trained)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Tensor)):
        raise TypeError(f"{name} must be a real number or a tensor of shape () or ({k},); got {type(value).__name__}")
    tensor = torch.as_tensor(value)
    if tensor.dim() > 0 and tuple(tensor.shape) != (k,):
        raise ValueError(f"{name} must be a scalar or have one entry per chosen unit, shape ({k},); "
                         f"got {tuple(tensor.shape)}")
    if not tensor.is_floating_point() and tensor.dtype != torch.long and tensor.dtype != torch.int:
        raise TypeError(f"{name} must be real; got dtype {tensor.dtype}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite; got {value!r}")
    if isinstance(value, torch.nn.Parameter):
        if value.dtype != dtype or value.device != device:
            raise ValueError(f"the nn.Parameter {name} must have the model's dtype {dtype} and device {device}")
        return value
    return tensor.detach().to(device=device, dtype=dtype).expand(k).clone()
