"""A periodic target to generate autonomously: a sum of sines (the FORCE benchmark)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Task, TaskBatch, _check_outputs, check_batch_size, n_steps, uniform


class PeriodicTarget(Task):
    """``y(t) = sum_i amplitudes[i] sin(2 pi frequencies[i] t + phases[i])``, no input.

    The default is the target of Sussillo & Abbott (2009, Fig. 2):
    ``sin(2 pi t) + 0.5 sin(4 pi t)``. With ``random_phase=True`` each trial
    starts at a random point of the common period. ``evaluate`` returns
    R² = 1 - MSE / Var(y) (1 is perfect).
    """

    n_in, n_out = 0, 1
    metric = "r2"

    def __init__(
        self,
        dt: float = 0.001,
        *,
        amplitudes: tuple[float, ...] = (1.0, 0.5),
        frequencies: tuple[float, ...] = (1.0, 2.0),
        phases: tuple[float, ...] | None = None,
        duration: float = 2.0,
        random_phase: bool = False,
    ) -> None:
        self.amplitudes = torch.as_tensor(amplitudes, dtype=torch.float64)
        self.frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
        self.phases = torch.zeros_like(self.frequencies) if phases is None else torch.as_tensor(phases,
                                                                                                dtype=torch.float64)
        if not (self.amplitudes.dim() == 1 and self.amplitudes.shape == self.frequencies.shape == self.phases.shape
                and len(self.amplitudes) > 0):
            raise ValueError("amplitudes, frequencies and phases must be 1-D sequences of one common length; got "
                             f"{len(self.amplitudes)}, {len(self.frequencies)}, {len(self.phases)}")
        for name, value in (("amplitudes", self.amplitudes), ("frequencies", self.frequencies),
                            ("phases", self.phases)):
            if not torch.isfinite(value).all():
                raise ValueError(f"{name} must be finite numbers; got {value.tolist()}")
        if not (self.frequencies > 0).all():
            raise ValueError(f"frequencies must be > 0 Hz; got {frequencies!r}")
        super().__init__(dt, {"target": duration})
        fastest = float(self.frequencies.max())
        if self.dt >= 0.5 / fastest:
            raise ValueError(f"dt={self.dt:g} s does not resolve the fastest component ({fastest:g} Hz); "
                             f"use dt < {0.5 / fastest:g} (half its period), much smaller for FORCE")
        self.duration = float(duration)
        self.random_phase = bool(random_phase)

    def target(self, t: Tensor) -> Tensor:
        """The target at times ``t (...,)``: ``(..., 1)``."""
        t = t.to(torch.float64)[..., None]
        y = (self.amplitudes * torch.sin(2 * math.pi * self.frequencies * t + self.phases)).sum(-1, keepdim=True)
        return y.to(torch.get_default_dtype())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> TaskBatch:
        batch = check_batch_size(batch_size)
        steps = int(n_steps(self.duration, self.dt))
        t = torch.arange(steps, dtype=torch.float64) * self.dt
        shift = torch.zeros(batch, dtype=torch.float64)
        if self.random_phase:
            shift = uniform(batch, generator, 0.0, 1.0 / float(self.frequencies.min()))
        y = self.target(t + shift[:, None])
        default = torch.get_default_dtype()
        info = {"epochs": {"target": torch.tensor([[0, steps]]).expand(batch, 2)}, "shift": shift}
        return TaskBatch(t.to(default), torch.zeros(batch, steps, 0), y, torch.ones(batch, steps), info)

    def evaluate(self, outputs: Tensor, batch: TaskBatch) -> float:
        _check_outputs(outputs, batch, self.n_out)
        y = batch.y.to(outputs)
        return float(1 - ((outputs - y) ** 2).mean() / y.var(unbiased=False))
