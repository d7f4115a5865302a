"""The task interface: trials made of timed epochs, sampled in batches.

A task builds batches of trials on a grid ``t_k = k dt``. ``x[:, k]`` is the
input during ``[t_k, t_{k+1})`` (zero-order hold, as :func:`neurodyn.simulate`
reads it) and ``y[:, k]`` the target for the output at ``t_k``. Decision tasks
follow the convention of Song, Yang & Wang (2016) and neurogym: input channel 0
is a fixation cue (1 until the decision epoch), output channel 0 is
"fixate" and channels ``1..n_choices`` are the choices; targets are one-hot, so
the same ``y`` serves the "mse" and "cross_entropy" losses.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import ArgumentTypeError

Duration = float | tuple[float, float]


@dataclass
class TaskBatch:
    """A batch of trials: times ``t (T,)``, inputs ``x (B, T, n_in)``,
    targets ``y (B, T, n_out)``, loss weights ``mask (B, T)`` and ``info``:
    ``info["epochs"]`` maps each epoch name to its ``(B, 2)`` [start, stop) step
    indices; the other entries are the trial variables, ``(B,)`` tensors."""

    t: Tensor
    x: Tensor
    y: Tensor
    mask: Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> TaskBatch:
        """The batch with its floating tensors moved to ``device``/``dtype``."""
        def move(v: Any) -> Any:
            if isinstance(v, Tensor):
                return v.to(device=device, dtype=dtype if torch.is_floating_point(v) else None)
            if isinstance(v, dict):
                return {k: move(w) for k, w in v.items()}
            return v
        return TaskBatch(move(self.t), move(self.x), move(self.y), move(self.mask), move(self.info))


def check_dt(dt: Any) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive number of seconds; got {dt!r}")
    return float(dt)


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    return batch_size


def _check_duration(name: str, value: Any) -> tuple[float, float]:
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    pair = isinstance(value, (tuple, list)) and len(value) == 2 and all(number(v) for v in value)
    if not (number(value) or pair):
        raise ArgumentTypeError(f"duration of epoch {name!r} must be a number of seconds or a (low, high) pair of "
                                f"numbers; got {type(value).__name__} {value!r}")
    low, high = (value, value) if number(value) else value
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(f"duration of epoch {name!r} must be a number >= 0 or a (low, high) range; got {value!r}")
    return float(low), float(high)


def n_steps(seconds: Tensor | float, dt: float) -> Tensor:
    """Whole time steps in ``seconds``: the nearest integer to ``seconds / dt``, halves rounded up."""
    return torch.floor(torch.as_tensor(seconds, dtype=torch.float64) / dt + (0.5 + 1e-9)).long()


def uniform(batch: int, generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> Tensor:
    """``(batch,)`` samples of U(low, high) from ``generator``."""
    return low + (high - low) * torch.rand(batch, generator=generator, dtype=torch.float64)


def choice(batch: int, options: Tensor, generator: torch.Generator | None) -> Tensor:
    """``(batch,)`` samples drawn uniformly from the 1-D tensor ``options``."""
    return options[torch.randint(len(options), (batch,), generator=generator)]


class Task:
    """Base of the trial-structured tasks.

    Subclasses set ``n_in``, ``n_out``, ``n_choices`` and implement
    :meth:`trial_variables` and :meth:`signals`. ``durations`` maps each epoch, in
    order, to a fixed length in seconds or a ``(low, high)`` range drawn
    uniformly per trial; an epoch lasts the nearest whole number of steps,
    ``floor(duration / dt + 1/2)`` (halves rounded up; a fixed duration that is
    not a multiple of ``dt`` gives a warning); trials shorter than the longest in a batch are padded
    with zero input and zero mask. ``sigma`` is the intensity of white input noise
    (per-sample std ``sigma / sqrt(dt)``, so evidence is independent of ``dt``).
    """

    n_in: int
    n_out: int
    n_choices: int = 2
    metric: str = "accuracy"

    def __init__(self, dt: float, durations: dict[str, Duration], *, sigma: float = 0.0) -> None:
        self.dt = check_dt(dt)
        self.durations = {name: _check_duration(name, d) for name, d in durations.items()}
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a number >= 0; got {sigma!r}")
        self.sigma = float(sigma)
        positive = {name: low for name, (low, _) in self.durations.items() if low > 0}
        if not positive:
            raise ValueError("at least one epoch must have a positive duration")
        shortest = min(positive, key=positive.get)
        if self.dt > positive[shortest] + 1e-12:
            raise ValueError(f"dt={self.dt:g} s is longer than the shortest epoch {shortest!r} "
                             f"({positive[shortest]:g} s); use dt <= {positive[shortest]:g}")
        for name, (low, high) in self.durations.items():
            steps = int(n_steps(low, self.dt))
            if low == high and abs(steps * self.dt - low) > 1e-9 * max(low, 1.0):
                warnings.warn(f"epoch {name!r} lasts {low:g} s, not a whole number of steps of dt={self.dt:g} s; "
                              f"its trials use {steps} steps ({steps * self.dt:g} s). Choose a duration that is a "
                              "multiple of dt to silence this", stacklevel=3)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dt={self.dt:g})"

    def trial_variables(self, batch_size: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Draw the ``(B,)`` variables of each trial; must include ``"choice"`` (0-based)."""
        raise NotImplementedError

    def signals(self, trial: dict[str, Tensor], epoch: dict[str, Tensor]) -> Tensor:
        """The noiseless stimulus channels ``(B, T, n_in - 1)`` given the ``(B, T)`` epoch masks."""
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> TaskBatch:
        """A batch of ``batch_size`` independent trials (reproducible with ``generator``)."""
        batch = check_batch_size(batch_size)
        trial = self.trial_variables(batch, generator)
        counts = torch.stack([self._steps(low, high, batch, generator) for low, high in self.durations.values()], 1)
        stops = counts.cumsum(1)
        starts = stops - counts
        steps = int(stops[:, -1].max())
        k = torch.arange(steps)
        epoch = {name: (k >= starts[:, i, None]) & (k < stops[:, i, None]) for i, name in enumerate(self.durations)}
        inside = k < stops[:, -1, None]
        decision = epoch["decision"]
        stim = self.signals(trial, epoch)
        if self.sigma > 0:
            noise = torch.randn(stim.shape, generator=generator, dtype=stim.dtype) * (self.sigma / math.sqrt(self.dt))
            stim = stim + noise * inside[..., None]
        fixation = (inside & ~decision).to(stim.dtype)
        x = torch.cat([fixation[..., None], stim], dim=-1)
        y = torch.zeros(batch, steps, self.n_out, dtype=stim.dtype)
        y[..., 0] = fixation
        y[torch.arange(batch), :, 1 + trial["choice"]] = decision.to(stim.dtype)
        info = {"epochs": {name: torch.stack([starts[:, i], stops[:, i]], 1) for i, name in enumerate(self.durations)}}
        info.update(trial)
        t = torch.arange(steps, dtype=torch.float64) * self.dt
        batch_out = TaskBatch(t, x, y, inside.to(stim.dtype), info)
        return batch_out.to(dtype=torch.get_default_dtype())

    def _steps(self, low: float, high: float, batch: int, generator: torch.Generator | None) -> Tensor:
        seconds = uniform(batch, generator, low, high) if high > low else torch.full((batch,), low, dtype=torch.float64)
        return n_steps(seconds, self.dt)

    def choices(self, outputs: Tensor, batch: TaskBatch) -> Tensor:
        """The network's choice per trial (0-based): the strongest choice output
        averaged over the decision epoch."""
        _check_outputs(outputs, batch, self.n_out)
        k = torch.arange(outputs.shape[1], device=outputs.device)
        window = batch.info["epochs"]["decision"].to(outputs.device)
        inside = ((k >= window[:, :1]) & (k < window[:, 1:])).to(outputs.dtype)
        mean = (outputs[..., 1:] * inside[..., None]).sum(1) / inside.sum(1, keepdim=True).clamp_min(1)
        return mean.argmax(-1)

    def evaluate(self, outputs: Tensor, batch: TaskBatch) -> float:
        """Fraction of trials whose choice (see :meth:`choices`) is correct."""
        correct = self.choices(outputs, batch).cpu() == batch.info["choice"].cpu()
        return float(correct.double().mean())


def _check_outputs(outputs: Any, batch: TaskBatch, n_out: int) -> None:
    if not isinstance(outputs, Tensor):
        raise TypeError(f"outputs must be a (B, T, n_out) tensor; got {type(outputs).__name__}")
    expected = (batch.batch_size, batch.t.shape[0], n_out)
    if tuple(outputs.shape) != expected:
        raise ValueError(f"outputs must have shape {expected} (the batch's B, T and the task's n_out); "
                         f"got {tuple(outputs.shape)}")
