"""Delayed match tasks on motion directions: match to sample and match to category."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Duration, Task


class _DelayedMatch(Task):
    """A sample direction, a delay, a test direction; report match (choice 0)
    or non-match (choice 1). Directions are encoded by ``n_tuned`` channels with
    von Mises tuning ``exp(kappa (cos(theta - phi_i) - 1))``, preferred
    directions ``phi_i`` evenly spaced. Half the trials are matches."""

    def __init__(self, dt: float, *, n_directions: int, n_tuned: int, kappa: float, sigma: float,
                 fixation: Duration, sample: Duration, delay: Duration, test: Duration, decision: Duration) -> None:
        for name, value in (("n_directions", n_directions), ("n_tuned", n_tuned)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an int >= 2; got {value!r}")
        if not kappa > 0:
            raise ValueError(f"kappa (tuning sharpness) must be > 0; got {kappa!r}")
        self.n_directions, self.n_tuned, self.kappa = n_directions, n_tuned, float(kappa)
        self.n_in, self.n_out = 1 + n_tuned, 3
        self.directions = torch.arange(n_directions, dtype=torch.float64) * (2 * math.pi / n_directions)
        self.preferred = torch.arange(n_tuned, dtype=torch.float64) * (2 * math.pi / n_tuned)
        super().__init__(dt, {"fixation": fixation, "sample": sample, "delay": delay, "test": test,
                              "decision": decision}, sigma=sigma)

    def is_match(self, sample: Tensor, test: Tensor) -> Tensor:
        """Whether a test direction index matches the sample direction index."""
        raise NotImplementedError

    def trial_variables(self, batch_size: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        sample = torch.randint(self.n_directions, (batch_size,), generator=generator)
        want_match = torch.rand(batch_size, generator=generator) < 0.5
        # draw test directions until each trial's match status is the wanted one (rejection sampling)
        test = torch.randint(self.n_directions, (batch_size,), generator=generator)
        for _ in range(1000):
            wrong = self.is_match(sample, test) != want_match
            if not wrong.any():
                break
            test = torch.where(wrong, torch.randint(self.n_directions, (batch_size,), generator=generator), test)
        else:
            raise RuntimeError("could not draw matching and non-matching test directions; check n_directions")
        return {"sample": self.directions[sample], "test": self.directions[test], "choice": (~want_match).long()}

    def encode(self, theta: Tensor) -> Tensor:
        """Tuned-channel responses ``(..., n_tuned)`` to directions ``theta`` (radians)."""
        return torch.exp(self.kappa * (torch.cos(theta[..., None] - self.preferred) - 1))

    def signals(self, trial: dict[str, Tensor], epoch: dict[str, Tensor]) -> Tensor:
        return (self.encode(trial["sample"])[:, None, :] * epoch["sample"][..., None]
                + self.encode(trial["test"])[:, None, :] * epoch["test"][..., None])


class DelayedMatchToSample(_DelayedMatch):
    """Delayed match-to-sample with a variable delay (Masse, Yang, Song, Wang & Freedman 2019).

    Match when the test direction equals the sample direction. The delay is
    drawn uniformly from ``delay`` per trial, so the network cannot time the test.
    Trial variables: ``sample``, ``test`` (radians) and ``choice``.
    """

    def __init__(self, dt: float = 0.02, *, n_directions: int = 8, n_tuned: int = 16, kappa: float = 2.0,
                 sigma: float = 0.01, fixation: Duration = 0.1, sample: Duration = 0.3,
                 delay: Duration = (0.3, 1.0), test: Duration = 0.3, decision: Duration = 0.2) -> None:
        super().__init__(dt, n_directions=n_directions, n_tuned=n_tuned, kappa=kappa, sigma=sigma,
                         fixation=fixation, sample=sample, delay=delay, test=test, decision=decision)

    def is_match(self, sample: Tensor, test: Tensor) -> Tensor:
        return sample == test


class DelayedMatchToCategory(_DelayedMatch):
    """Delayed match-to-category (Freedman & Assad 2006).

    Directions fall into two categories split by a boundary through
    ``boundary`` and ``boundary + pi`` radians (default 45 and 225 deg, between
    the 12 directions 30 deg apart); match when sample and test lie in the same
    category.
    Trial variables: ``sample``, ``test`` (radians) and ``choice``.
    """

    def __init__(self, dt: float = 0.02, *, n_directions: int = 12, n_tuned: int = 16, kappa: float = 2.0,
                 boundary: float = math.pi / 4, sigma: float = 0.01, fixation: Duration = 0.1,
                 sample: Duration = 0.3, delay: Duration = 0.5, test: Duration = 0.3,
                 decision: Duration = 0.2) -> None:
        super().__init__(dt, n_directions=n_directions, n_tuned=n_tuned, kappa=kappa, sigma=sigma,
                         fixation=fixation, sample=sample, delay=delay, test=test, decision=decision)
        self.boundary = float(boundary)
        offset = torch.remainder(self.directions - self.boundary, math.pi)
        if torch.minimum(offset, math.pi - offset).min() < 1e-9:
            raise ValueError(f"boundary={boundary!r} passes through one of the {n_directions} directions; "
                             "move it between two directions (e.g. pi/4 for 12 directions)")

    def category(self, theta: Tensor) -> Tensor:
        """Category (0 or 1) of directions ``theta``: which side of the boundary they lie on."""
        return (torch.remainder(theta - self.boundary, 2 * math.pi) >= math.pi).long()

    def is_match(self, sample: Tensor, test: Tensor) -> Tensor:
        return self.category(self.directions[sample]) == self.category(self.directions[test])
