r"""Jacobians of a model's vector field over its whole flat state.

For ``d y/dt = F(t, y, drive(x))`` with ``y`` the flat state ``(D,)``,
``J = dF/dy (D, D)`` and ``dF/dx (D, n_in)`` are computed with
``torch.func`` (``jacrev`` per sample, ``vmap`` over the batch). The Euler map
``y <- y + dt F(y)`` of the discrete-time RNN (primer Eq. 27) has the Jacobian
``I + dt J``: a continuous-time eigenvalue ``lambda`` becomes ``1 + dt lambda``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from ..models.base import Model
from ..state import flatten, unflattener
from ..validation import as_real
from ._checks import check_model, constant_input, flat_states


def flat_field(model: Model, t: float | Tensor = 0.0) -> Callable[[Tensor, Tensor], Tensor]:
    """``f(y (D,), drive) -> F (D,)``: the model's vector field on one flat state."""
    to_state = unflattener(model)
    time = torch.as_tensor(t, dtype=model.dtype, device=model.device)

    def f(y: Tensor, drive: Tensor) -> Tensor:
        return flatten(model.vector_field(time, to_state(y.unsqueeze(0)), drive.unsqueeze(0))).squeeze(0)

    return f


def evaluate_field(model: Model, y: Tensor, drive: Tensor, t: float | Tensor = 0.0) -> Tensor:
    """``F (B, D)`` at the flat states ``y (B, D)`` (drive batch 1 or B)."""
    time = torch.as_tensor(t, dtype=model.dtype, device=model.device)
    return flatten(model.vector_field(time, unflattener(model)(y), drive))


def field_and_jacobian(model: Model, y: Tensor, drive: Tensor, t: float | Tensor = 0.0) -> tuple[Tensor, Tensor]:
    """``F (B, D)`` and ``J = dF/dy (B, D, D)`` at the flat states ``y (B, D)``.

    ``drive`` is ``model.input_drive(x)`` with batch 1 (shared) or B. A model's
    closed-form :meth:`~neurodyn.models.Model.state_jacobian` is used when it has one.
    """
    time = torch.as_tensor(t, dtype=model.dtype, device=model.device)
    state = unflattener(model)(y)
    J = model.state_jacobian(time, state, drive)
    if J is not None:
        return flatten(model.vector_field(time, state, drive)), J
    f = flat_field(model, t)
    both = jacrev(lambda yy, d: (f(yy, d),) * 2, has_aux=True)
    shared = drive.shape[0] == 1 and y.shape[0] != 1
    J, F = vmap(both, in_dims=(0, None if shared else 0))(y, drive[0] if shared else drive)
    return F, J


def jacobian(model: Model, state: Any, x: Any = None, t: float = 0.0) -> Tensor:
    """The Jacobian ``J = dF/dy (B, D, D)`` of the vector field at ``state``.

    ``state`` is a flat ``(B, D)`` (or ``(D,)``) tensor or a named state; ``x``
    a constant input ``(n_in,)`` or ``(B, n_in)`` (None: zero input). The
    discrete-time (Euler, Eq. 27) Jacobian is ``I + dt J``.
    """
    check_model(model, one_network=True)
    t = as_real("t", t)
    y = flat_states(model, state, "state")
    drive = model.input_drive(constant_input(model, x, y.shape[0]))
    return field_and_jacobian(model, y, drive, t)[1].contiguous()


def input_jacobian(model: Model, state: Any, x: Any = None, t: float = 0.0) -> Tensor:
    """``dF/dx (B, D, n_in)``: how a constant input moves the vector field at ``state``."""
    check_model(model, one_network=True)
    t = as_real("t", t)
    y = flat_states(model, state, "state")
    x = constant_input(model, x, y.shape[0])
    f = flat_field(model, t)
    dfdx = jacrev(lambda yy, xx: f(yy, model.input_drive(xx.unsqueeze(0)).squeeze(0)), argnums=1)
    shared = x.shape[0] == 1 and y.shape[0] != 1
    return vmap(dfdx, in_dims=(0, None if shared else 0))(y, x[0] if shared else x)
