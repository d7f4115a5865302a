"""Parametric working memory: compare two vibration frequencies across a delay."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Duration, Task, choice


class ParametricWorkingMemory(Task):
    """Vibrotactile frequency comparison (Romo, Brody, Hernández & Lemus 1999).

    A pair of frequencies ``(f_low, f_low + gap)`` with ``f_low`` drawn from
    ``frequencies`` is shown in random order as ``f1`` then, after a delay,
    ``f2``; the network reports whether ``f1 > f2`` (choice 0) or ``f1 < f2``
    (choice 1). A frequency is encoded by two channels tuned with opposite
    monotonic slopes, ``(1 ± s) / 2`` with ``s = (f - f_mid) / f_half`` in
    [-1, 1] over the range of all frequencies, like the positively and
    negatively tuned neurons of prefrontal cortex. Inputs: fixation, + tuned,
    - tuned. Trial variables: ``f1``, ``f2`` (Hz) and ``choice``.
    """

    n_in, n_out = 3, 3

    def __init__(
        self,
        dt: float = 0.02,
        *,
        frequencies: tuple[float, ...] = (10.0, 14.0, 18.0, 22.0, 26.0),
        gap: float = 8.0,
        sigma: float = 0.01,
        fixation: Duration = 0.1,
        stimulus: Duration = 0.2,
        delay: Duration = 0.5,
        decision: Duration = 0.2,
    ) -> None:
        self.frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
        if self.frequencies.dim() != 1 or len(self.frequencies) == 0 or not torch.isfinite(self.frequencies).all():
            raise ValueError(f"frequencies must be a non-empty sequence of finite numbers; got {frequencies!r}")
        if not gap > 0:
            raise ValueError(f"gap must be > 0 (f2 differs from f1 by gap Hz); got {gap!r}")
        self.gap = float(gap)
        self.f_min, self.f_max = float(self.frequencies.min()), float(self.frequencies.max()) + self.gap
        super().__init__(dt, {"fixation": fixation, "stimulus1": stimulus, "delay": delay, "stimulus2": stimulus,
                              "decision": decision}, sigma=sigma)

    def trial_variables(self, batch_size: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        low = choice(batch_size, self.frequencies, generator)
        first_high = torch.randint(2, (batch_size,), generator=generator)
        high = low + self.gap
        f1 = torch.where(first_high == 1, high, low)
        f2 = torch.where(first_high == 1, low, high)
        return {"f1": f1, "f2": f2, "choice": 1 - first_high}

    def encode(self, f: Tensor) -> Tensor:
        """The two tuned channels for frequency ``f``: ``(..., 2)``."""
        s = (2 * f - self.f_min - self.f_max) / (self.f_max - self.f_min)
        return torch.stack([(1 + s) / 2, (1 - s) / 2], -1)

    def signals(self, trial: dict[str, Tensor], epoch: dict[str, Tensor]) -> Tensor:
        first = self.encode(trial["f1"])[:, None, :] * epoch["stimulus1"][..., None]
        second = self.encode(trial["f2"])[:, None, :] * epoch["stimulus2"][..., None]
        return first + second
