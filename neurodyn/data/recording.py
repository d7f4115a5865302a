"""A neural recording: trials of binned firing rates and/or spike counts on a common time grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..validation import rounding


def _as_tensor(name: str, value: Any) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, (Tensor, np.ndarray, list, tuple)):
        raise ArgumentTypeError(f"{name} must be a tensor or array; got {type(value).__name__}")
    tensor = torch.as_tensor(value)
    if tensor.dim() == 2 and name != "t":
        tensor = tensor.unsqueeze(0)  # a single trial (T, n)
    return tensor


def _trial_column(name: str, value: Any) -> Tensor:
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ArgumentTypeError(f"trials[{name!r}] must be numbers or booleans, one per trial ({err}); encode "
                                "text labels as integers (e.g. 0, 1, 2 for each category)") from err


def check_counts(counts: Tensor, name: str = "counts") -> None:
    """Raise ValueError unless ``counts`` are finite non-negative integers."""
    if not torch.isfinite(counts).all():
        raise ValueError(f"{name} contains NaN or Inf; spike counts must be finite")
    if (counts < 0).any():
        raise ValueError(f"{name} must be non-negative spike counts; found a negative value")
    if torch.is_floating_point(counts) and (counts != torch.round(counts)).any():
        raise ValueError(f"{name} must be integer spike counts; found a non-integer value (bin spike times, "
                         "or fit rates with loss='mse')")


def uniform_step(t: Tensor) -> float | None:
    """The step of the uniform grid ``t``, or None when its steps differ by more than rounding."""
    steps = t[1:] - t[:-1]
    width = float(steps[0])
    slack = 1e-3 * abs(width) + rounding(t)
    return width if width > 0 and float((steps - width).abs().max()) <= slack else None


@dataclass
class Recording:
    """Trials of neural activity sampled on the within-trial grid ``t (T,)`` (seconds).

    ``rates (B, T, N)``: firing rates (spikes/s, or the units of the model that
    made them); ``counts (B, T, N)``: spike counts in the bins ``[t_k, t_k + dt)``
    (needs a uniform grid); ``x (B, T, n_in)``: the stimulus, zero-order hold;
    ``trials``: per-trial variables, ``{column: (B,) tensor}`` (the NWB trials
    table). At least one of ``rates`` and ``counts`` is required; a ``(T, n)``
    array is one trial.
    """

    t: Tensor
    rates: Tensor | None = None
    counts: Tensor | None = None
    x: Tensor | None = None
    trials: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        self.t = _as_tensor("t", self.t)
        self.rates, self.counts, self.x = (_as_tensor(n, v) for n, v in
                                           (("rates", self.rates), ("counts", self.counts), ("x", self.x)))
        t = self.t
        if t.dim() != 1 or t.shape[0] < 2 or not torch.is_floating_point(t):
            raise ValueError(f"t must be a 1-D floating-point grid of >= 2 times; got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all() or (t[1:] <= t[:-1]).any():
            raise ValueError("t must be finite and strictly increasing")
        if self.rates is None and self.counts is None:
            raise ValueError("a Recording needs rates or counts (or both)")
        main = self.rates if self.rates is not None else self.counts
        if main.dim() != 3:
            raise ValueError(f"rates/counts must be (B, T, N); got shape {tuple(main.shape)}")
        batch, _, neurons = main.shape
        if batch == 0 or neurons == 0:
            raise ValueError(f"{'rates' if self.rates is not None else 'counts'} has shape {tuple(main.shape)}, with "
                             f"no {'trials (B = 0)' if batch == 0 else 'neurons (N = 0)'}; a Recording needs at least "
                             "one trial and one neuron")
        for name, value, width in (("rates", self.rates, neurons), ("counts", self.counts, neurons),
                                   ("x", self.x, None)):
            if value is None:
                continue
            if value.dim() != 3 or value.shape[1] != t.shape[0]:
                raise ValueError(f"{name} must be (B, T={t.shape[0]}, n) to match t; got shape {tuple(value.shape)}")
            if value.shape[0] != batch or (width is not None and value.shape[2] != width):
                raise ValueError(f"{name} has shape {tuple(value.shape)} but the recording has B={batch} trials "
                                 f"and N={neurons} neurons")
            if not torch.isfinite(value.double()).all():
                raise ValueError(f"{name} contains NaN or Inf; remove or interpolate those samples first")
        if self.counts is not None:
            check_counts(self.counts)
            self.bin_width  # noqa: B018 - validates a uniform grid
        if self.trials is not None:
            if not isinstance(self.trials, dict):
                raise ArgumentTypeError(f"trials must be a dict of (B,) columns; got {type(self.trials).__name__}")
            self.trials = {k: _trial_column(k, v) for k, v in self.trials.items()}
            for k, v in self.trials.items():
                if v.dim() < 1 or v.shape[0] != batch:
                    raise ValueError(f"trials[{k!r}] must have one entry per trial (B={batch}); got {tuple(v.shape)}")

    @property
    def n_trials(self) -> int:
        return (self.rates if self.rates is not None else self.counts).shape[0]

    @property
    def n_neurons(self) -> int:
        return (self.rates if self.rates is not None else self.counts).shape[2]

    @property
    def bin_width(self) -> float:
        """The grid step ``t[1] - t[0]``; raises unless the grid is uniform."""
        width = uniform_step(self.t)
        if width is None:
            raise ValueError("spike counts need a uniform time grid t (equal bins); resample the recording")
        return width

    def firing_rates(self) -> Tensor:
        """``rates``, or ``counts / bin_width`` when only counts were recorded."""
        return self.rates if self.rates is not None else self.counts / self.bin_width

    def select(self, index: Tensor | list[int]) -> Recording:
        """The recording restricted to the trials ``index``."""
        index = torch.as_tensor(index, dtype=torch.long)
        pick = lambda v: None if v is None else v[index.to(v.device)]
        trials = None if self.trials is None else {k: v[index] for k, v in self.trials.items()}
        return Recording(self.t, pick(self.rates), pick(self.counts), pick(self.x), trials)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Recording:
        """A copy with ``t``, ``rates`` and ``x`` moved to ``device``/``dtype`` (counts keep their dtype)."""
        move = lambda v: None if v is None else v.to(device=device, dtype=dtype)
        counts = None if self.counts is None else self.counts.to(device=device)
        return Recording(move(self.t), move(self.rates), counts, move(self.x), self.trials)
