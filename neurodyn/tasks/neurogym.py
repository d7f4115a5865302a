"""Adapter for neurogym environments (optional: ``pip install neurodyn[neurogym]``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Task, TaskBatch, _check_outputs, check_batch_size


class NeurogymTask(Task):
    """A neurogym environment as a neurodyn task (Molano-Mazón et al., neurogym).

    Each trial comes from ``env.new_trial()``: the observations ``env.ob``
    become ``x``, the ground-truth actions ``env.gt`` one-hot targets ``y``
    (``n_out = env.action_space.n``, so "cross_entropy" trains the classifier
    neurogym intends). Trials are padded to the longest with zero input and
    zero mask. ``dt`` is neurogym's ``env.dt`` converted from ms to seconds.
    ``evaluate`` scores the action at each trial's last step against ``gt``.
    """

    def __init__(self, env: Any) -> None:
        base = getattr(env, "unwrapped", env)
        for attribute in ("new_trial", "dt", "action_space", "observation_space"):
            if not hasattr(base, attribute):
                raise TypeError(f"env must be a neurogym TrialEnv (missing {attribute!r}); got {type(env).__name__}")
        self.env = base
        self.dt = float(base.dt) / 1000.0
        self.sigma = 0.0
        self.durations = {}
        self.n_in = int(np.prod(base.observation_space.shape))
        self.n_out = int(base.action_space.n)
        self.n_choices = self.n_out - 1

    def __repr__(self) -> str:
        return f"NeurogymTask({type(self.env).__name__}, dt={self.dt:g})"

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> TaskBatch:
        batch = check_batch_size(batch_size)
        if generator is not None and hasattr(self.env, "seed"):
            self.env.seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        obs, gts = [], []
        for _ in range(batch):
            self.env.new_trial()
            obs.append(np.asarray(self.env.ob, dtype=np.float64).reshape(len(self.env.ob), -1))
            gts.append(np.asarray(self.env.gt, dtype=np.int64).reshape(len(self.env.gt)))
        lengths = torch.tensor([len(g) for g in gts])
        steps = int(lengths.max())
        x = torch.zeros(batch, steps, self.n_in)
        gt = torch.full((batch, steps), -1, dtype=torch.long)
        for i, (o, g) in enumerate(zip(obs, gts, strict=False)):
            x[i, : len(o)] = torch.from_numpy(o)
            gt[i, : len(g)] = torch.from_numpy(g)
        mask = (gt >= 0).float()
        y = torch.nn.functional.one_hot(gt.clamp_min(0), self.n_out).float() * mask[..., None]
        last = gt[torch.arange(batch), lengths - 1]
        t = torch.arange(steps, dtype=torch.float64) * self.dt
        info = {"gt": gt, "length": lengths, "choice": last,
                "epochs": {"trial": torch.stack([torch.zeros_like(lengths), lengths], 1)}}
        return TaskBatch(t.to(torch.get_default_dtype()), x, y, mask, info)

    def evaluate(self, outputs: Tensor, batch: TaskBatch) -> float:
        _check_outputs(outputs, batch, self.n_out)
        last = batch.info["length"].to(outputs.device) - 1
        action = outputs[torch.arange(outputs.shape[0], device=outputs.device), last].argmax(-1)
        return float((action.cpu() == batch.info["choice"].cpu()).double().mean())


def from_neurogym(env: Any) -> NeurogymTask:
    """Wrap a neurogym environment (``neurogym.make("PerceptualDecisionMaking-v0")``) as a task."""
    return NeurogymTask(env)
