"""Activity arrays from a Trajectory, a Recording or a plain array, shared by the tuning and similarity analyses."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.recording import Recording
from ..errors import ArgumentTypeError
from ..trajectory import Trajectory

ROUNDING = 1e-12  # relative size of float64 rounding noise: spreads and differences below it count as zero


def rounding_only(spread: Tensor, scale: Tensor) -> Tensor:
    """Whether ``spread`` (a centred norm, a difference) is float rounding of values of size ``scale``:
    a constant row centres to ~1e-17 rather than 0, and then counts as constant."""
    return spread <= ROUNDING * scale


def source_activity(source: Any, var: str | None, t: Any) -> tuple[Tensor, Tensor]:
    """``(B, T, N)`` float64 activity and its time grid ``(T,)``."""
    if isinstance(source, (Trajectory, Recording)):
        if t is not None:
            raise ValueError(f"t is taken from the {type(source).__name__}; drop the t argument")
        grid = source.t
        if isinstance(source, Trajectory):
            if var == "outputs":
                if source.outputs is None:
                    raise ValueError("var='outputs' but the Trajectory has no outputs; name a state variable")
                activity = source.outputs
            else:
                try:
                    activity = source[source.states._fields[0] if var is None else var]
                except KeyError as err:
                    raise ValueError(f"var: {err.args[0]} or 'outputs'") from None
        elif var in (None, "rates"):
            activity = source.firing_rates()
        elif var == "counts" and source.counts is not None:
            activity = source.counts
        else:
            raise ValueError(f"var must be 'rates' or 'counts' (when recorded) for a Recording; got {var!r}")
    else:
        if var is not None:
            raise ValueError("var selects a variable of a Trajectory or Recording; drop it for a plain array")
        activity = as_float(source, "source")
        if activity.dim() != 3:
            raise ValueError(f"source must be a Trajectory, a Recording or a (B, T, N) array; got shape "
                             f"{tuple(activity.shape)}")
        grid = torch.arange(activity.shape[1], dtype=torch.float64) if t is None else as_float(t, "t")
        if grid.shape != activity.shape[1:2]:
            raise ValueError(f"t must be the (T={activity.shape[1]},) time grid of source; got shape "
                             f"{tuple(grid.shape)}")
    activity = activity.detach().to(torch.float64)
    if activity.dim() != 3:  # a state variable with a matrix shape per sample
        activity = activity.reshape(activity.shape[0], activity.shape[1], -1)
    if not torch.is_floating_point(grid):
        grid = grid.to(torch.float64)
    return activity, grid.detach().cpu()


def with_time_axis(source: Any, window: Any, t: Any) -> Any:
    """A ``(trials, N)`` array of per-trial responses as ``(trials, 1, N)``; other sources unchanged."""
    if isinstance(source, (Tensor, np.ndarray)) and source.ndim == 2:
        if window is not None or t is not None:
            raise ValueError("source is (trials, N) with no time axis; drop window and t or give (trials, T, N)")
        return source[:, None]
    return source


def as_float(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().to(torch.float64)
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a numeric tensor or array; got {type(value).__name__}") from None


def condition_labels(source: Any, conditions: Any, batch: int) -> np.ndarray:
    """Per-trial condition labels as a ``(B,)`` NumPy array."""
    if isinstance(conditions, str):
        if not isinstance(source, Recording):
            raise ValueError(f"conditions={conditions!r} names a trials column, which only a Recording has; give "
                             "the (B,) per-trial labels")
        if source.trials is None or conditions not in source.trials:
            columns = [] if source.trials is None else list(source.trials)
            raise ValueError(f"conditions={conditions!r} is not a trials column; the columns are {columns}")
        conditions = source.trials[conditions]
    if isinstance(conditions, Tensor):
        conditions = conditions.detach().cpu().numpy()
    labels = np.asarray(conditions)
    if labels.shape != (batch,):
        raise ValueError(f"conditions must hold one label per trial, shape (B={batch},); got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("conditions contains NaN labels; drop those trials first")
    try:
        np.unique(labels)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in labels.tolist()})
        raise ArgumentTypeError(f"conditions must be labels of one sortable kind (numbers or strings); got a mix of "
                                f"{kinds}") from None
    return labels


def window_mask(window: Any, grid: Tensor) -> Tensor:
    """``(T,)`` bool: the samples of ``grid`` inside ``window = (t0, t1)``, which must lie in the trial."""
    items = window.detach().cpu().reshape(-1).tolist() if isinstance(window, Tensor) else window
    try:
        t0, t1 = (float(v) for v in items)  # numbers, 0-d tensors (on any device) or a 2-element array
    except (TypeError, ValueError):
        raise ValueError(f"window must be a (t0, t1) pair of times; got {window!r}") from None
    if len(grid) > 1 and not bool((grid.diff() > 0).all()):
        raise ValueError("the time grid t must be strictly increasing to select a window; sort the samples by time")
    lo, hi = float(grid[0]), float(grid[-1])
    slack = max(1e-9, 8 * torch.finfo(grid.dtype).eps) * max(abs(lo), abs(hi), hi - lo)  # grid rounding
    grid = grid.to(torch.float64)
    if not (lo - slack <= t0 <= t1 <= hi + slack):
        raise ValueError(f"window=({t0}, {t1}) must satisfy t[0]={lo} <= t0 <= t1 <= t[-1]={hi} (inside the trial)")
    mask = (grid >= t0 - slack) & (grid <= t1 + slack)
    if not mask.any():
        raise ValueError(f"window=({t0}, {t1}) contains no time sample; widen it to include one of t")
    return mask
