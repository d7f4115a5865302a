"""Regularizers for :func:`neurodyn.fit`: callables ``reg(model, trajectory) -> scalar``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..models.base import Model
from ..trajectory import Trajectory

Regularizer = Callable[[Model, Trajectory], Tensor]


def _check_weight(weight: float) -> float:
    if not (isinstance(weight, (int, float)) and weight >= 0):
        raise ValueError(f"weight must be a number >= 0; got {weight!r}")
    return float(weight)


def activity_l2(weight: float) -> Regularizer:
    """``weight * mean(r^2)`` of the first state variable over trials, time and
    units: keeps rates low (Song, Yang & Wang 2016; primer Sec. 3)."""
    weight = _check_weight(weight)
    return lambda model, traj: weight * traj.states[0].pow(2).mean()


def weight_l2(weight: float) -> Regularizer:
    """``weight * mean(W^2)`` over every weight matrix (parameters with >= 2 dimensions)."""
    weight = _check_weight(weight)

    def penalty(model: Model, traj: Trajectory) -> Tensor:
        matrices = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
        if not matrices:
            return torch.zeros((), device=model.device, dtype=model.dtype)
        return weight * torch.stack([p.pow(2).mean() for p in matrices]).sum()
    return penalty
