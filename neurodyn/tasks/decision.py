"""Evidence-integration tasks: random-dots decision and context-dependent decision."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Duration, Task, choice


def _evidence(coherence: Tensor, on: Tensor) -> Tensor:
    """Two opposing channels ``(1 ± c) / 2`` during ``on``: ``(B, T, 2)``."""
    c = coherence[:, None, None] * torch.tensor([1.0, -1.0], dtype=torch.float64)
    return (1 + c) / 2 * on[..., None]


def _signed_coherences(levels: tuple[float, ...], name: str) -> Tensor:
    values = torch.as_tensor(levels, dtype=torch.float64)
    if values.dim() != 1 or len(values) == 0 or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{name} must be a non-empty sequence of coherences in [0, 1]; got {levels!r}")
    return values


class PerceptualDecisionMaking(Task):
    """Random-dots motion discrimination (Britten et al. 1992; Song, Yang & Wang 2016).

    During the stimulus the two evidence channels are ``(1 ± c s) / 2`` plus
    white noise, with coherence ``c`` drawn from ``coherences`` and direction
    ``s = ±1``; after an optional delay the network reports ``s`` (choice 0 for
    ``s = +1``). Inputs: fixation, evidence for choice 0, evidence for choice 1.
    """

    n_in, n_out = 3, 3

    def __init__(
        self,
        dt: float = 0.02,
        *,
        coherences: tuple[float, ...] = (0.032, 0.064, 0.128, 0.256, 0.512),
        sigma: float = 0.03,
        fixation: Duration = 0.1,
        stimulus: Duration = 0.8,
        delay: Duration = 0.0,
        decision: Duration = 0.2,
    ) -> None:
        self.coherences = _signed_coherences(coherences, "coherences")
        super().__init__(dt, {"fixation": fixation, "stimulus": stimulus, "delay": delay, "decision": decision},
                         sigma=sigma)

    def trial_variables(self, batch_size: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        side = torch.randint(2, (batch_size,), generator=generator)
        return {"coherence": choice(batch_size, self.coherences, generator), "choice": side}

    def signals(self, trial: dict[str, Tensor], epoch: dict[str, Tensor]) -> Tensor:
        signed = trial["coherence"] * (1 - 2 * trial["choice"])
        return _evidence(signed, epoch["stimulus"])


class ContextDependentDecisionMaking(Task):
    """Context-dependent integration of motion or colour (Mante, Sussillo, Shenoy & Newsome 2013).

    Each trial shows a motion and a colour stimulus with independent signed
    coherences; a context cue (on from the fixation epoch until the decision)
    says which one to report. Inputs: fixation, motion (2), colour (2),
    context (motion, colour). Trial variables: ``motion``, ``colour`` (signed
    coherences), ``context`` (0 motion, 1 colour) and ``choice``.
    """

    n_in, n_out = 7, 3

    def __init__(
        self,
        dt: float = 0.02,
        *,
        coherences: tuple[float, ...] = (0.05, 0.15, 0.5),
        sigma: float = 0.03,
        fixation: Duration = 0.2,
        stimulus: Duration = 0.8,
        delay: Duration = 0.0,
        decision: Duration = 0.2,
    ) -> None:
        self.coherences = _signed_coherences(coherences, "coherences")
        super().__init__(dt, {"fixation": fixation, "stimulus": stimulus, "delay": delay, "decision": decision},
                         sigma=sigma)

    def trial_variables(self, batch_size: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        def signed() -> Tensor:
            sign = 1 - 2 * torch.randint(2, (batch_size,), generator=generator)
            return choice(batch_size, self.coherences, generator) * sign
        motion, colour = signed(), signed()
        context = torch.randint(2, (batch_size,), generator=generator)
        relevant = torch.where(context == 0, motion, colour)
        # a zero relevant coherence has no correct answer: give it a random one
        tie = 1 - 2 * torch.randint(2, (batch_size,), generator=generator)
        relevant = torch.where(relevant == 0, tie.double(), relevant)
        return {"motion": motion, "colour": colour, "context": context, "choice": (relevant < 0).long()}

    def signals(self, trial: dict[str, Tensor], epoch: dict[str, Tensor]) -> Tensor:
        on = epoch["stimulus"]
        cue_on = (epoch["fixation"] | epoch["stimulus"] | epoch["delay"]).double()
        context = torch.nn.functional.one_hot(trial["context"], 2).double()[:, None, :] * cue_on[..., None]
        return torch.cat([_evidence(trial["motion"], on), _evidence(trial["colour"], on), context], -1)
