"""Validation shared by the analysis functions: flat states and constant inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..models.base import Model
from ..state import flatten, state_dim
from ._activity import as_float


def check_model(model: Any, *, one_network: bool = False) -> Model:
    """Raise a TypeError unless ``model`` is a neurodyn Model (a ValueError for an Ensemble if ``one_network``)."""
    if not isinstance(model, Model):
        raise ArgumentTypeError(f"model must be a neurodyn.models.Model; got {type(model).__name__}")
    from ..ensemble import Ensemble  # here: the ensemble module imports the analysis package

    if one_network and isinstance(model, Ensemble):
        raise ValueError(f"model is an Ensemble of K={model.size} networks, but this analysis takes one network's "
                         "states; use ens.find_fixed_points(init), or run it on each model of ens.unstack()")
    return model


def flat_states(model: Model, value: Any, name: str) -> Tensor:
    """``value`` (flat ``(B, D)`` or ``(D,)``, named state, dict or array) as a finite ``(B, D)`` tensor.

    It is moved to the model's device and dtype.
    """
    dim = state_dim(model)
    if isinstance(value, Mapping):
        missing = [k for k in model.state_vars if k not in value]
        if missing:
            raise ValueError(f"{name} is missing the state variables {missing}; give all of {list(model.state_vars)}")
        value = flatten([_batched(value[k], shape, f"{name}[{k!r}]")
                         for k, shape in dict(model.state_shapes).items()])
    elif hasattr(value, "_fields"):
        if list(value._fields) != list(model.state_vars):
            raise ValueError(f"{name} has variables {list(value._fields)} but the model has {list(model.state_vars)}")
        value = flatten(list(value))
    elif isinstance(value, (np.ndarray, list, tuple)):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{name} must be a (B, D) tensor, a named state or a dict; got {type(value).__name__}")
    if value.is_complex():
        raise ArgumentTypeError(f"{name} is complex ({value.dtype}); give real states (e.g. {name}.real)")
    if value.dim() == 1:
        value = value.unsqueeze(0)
    if value.dim() != 2 or value.shape[1] != dim:
        raise ValueError(f"{name} must be (B, D={dim}) for the state variables {model.state_vars}; "
                         f"got shape {tuple(value.shape)}")
    if value.shape[0] == 0:
        raise ValueError(f"{name} is empty; give at least one state")
    value = value.detach().to(device=model.device, dtype=model.dtype)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; give finite states")
    return value


def _batched(value: Any, shape: tuple[int, ...], name: str) -> Tensor:
    """One state variable's value as ``(B, size)``: a single state (a number for a scalar variable, or the
    variable's own shape) is a batch of one."""
    value = value if isinstance(value, Tensor) else as_float(value, name)
    single = tuple(value.shape) == tuple(shape) or (value.numel() == 1 and math.prod(shape) == 1 and value.dim() <= 1)
    return value.reshape(1, -1) if single else value.reshape(value.shape[0] if value.dim() else 1, -1)


def constant_input(model: Model, x: Any, batch: int) -> Tensor:
    """A constant input ``(1 or batch, n_in)``: None means zero input."""
    if x is None:
        return torch.zeros(1, model.n_in, device=model.device, dtype=model.dtype)
    if callable(x) and not isinstance(x, Tensor):
        raise ArgumentTypeError("x must be a constant input (a tensor or array of n_in numbers, or one row per "
                                "start); fixed points are defined for an input that does not change in time")
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if x.is_complex():
        raise ArgumentTypeError(f"x is complex ({x.dtype}); give a real constant input")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[1] != model.n_in or x.shape[0] not in (1, batch):
        raise ValueError(f"x must be a constant input (n_in={model.n_in},), (1, {model.n_in}) or "
                         f"(B={batch}, {model.n_in}); got shape {tuple(x.shape)}")
    x = x.detach().to(device=model.device, dtype=model.dtype)
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf; give a finite constant input")
    return x
