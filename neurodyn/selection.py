"""Which state variable and which of its units an analysis or a perturbation acts on: shared validation."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .models.base import Model


def state_var(model: Model, var: str | None) -> str:
    """``var``, or the model's first state variable when None; ValueError for an unknown name."""
    names = list(model.state_vars)
    if var is None:
        return names[0]
    if var not in names:
        raise ValueError(f"var must be one of the model's state variables {names}; got {var!r}")
    return var


def unit_indices(units: Any, size: int, name: str = "units", owner: str = "the state variable") -> Tensor:
    """Validated long indices ``(k,)`` into ``size`` units, in the order given.

    ``units`` is an int, a list/tuple/range of ints, a 1-D integer tensor or
    array, or a boolean mask of length ``size`` (ascending order).
    """
    if isinstance(units, np.ndarray):
        units = torch.from_numpy(units)
    if isinstance(units, (list, tuple, range)):
        if len(units) == 0:
            return torch.zeros(0, dtype=torch.long)
        if not all(isinstance(u, (bool, np.bool_)) for u in units):
            units = [_index(u, name) for u in units]
        units = torch.as_tensor(units)
    elif not isinstance(units, Tensor):
        units = torch.tensor([_index(units, name)])
    if units.dtype == torch.bool:
        if tuple(units.shape) != (size,):
            raise ValueError(f"a boolean {name} mask must have shape ({size},) ({owner} has {size} units); "
                             f"got {tuple(units.shape)}")
        return units.detach().cpu().nonzero().flatten()
    if units.is_floating_point() or units.is_complex():
        raise TypeError(f"{name} must hold integer indices or be a boolean mask; got dtype {units.dtype}")
    if units.dim() > 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(units.shape)}")
    idx = units.detach().cpu().reshape(-1).long()
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.numel():
        raise ValueError(f"{name} contains index {int(bad[0])} out of range: {name} must lie in 0..{size - 1} "
                         f"({owner} has {size} units); got {bad.tolist()}")
    if idx.unique().numel() != idx.numel():
        raise ValueError(f"{name} must not repeat a unit; got {idx.tolist()}")
    return idx


def _index(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be integer indices or a full boolean mask; got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, a sequence of ints, an integer tensor or a boolean mask; "
                        f"got {type(value).__name__}") from None
