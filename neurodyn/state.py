"""Named multi-variable states and their flat ``(B, D)`` form.

A model's state is a named tuple with one ``(B, *shape)`` tensor per state
variable (``state.r``, ``state.u``, ...). Analysis works on the flat vector
made by concatenating the variables in declaration order.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torch import Tensor


@cache
def state_type(names: tuple[str, ...]) -> type:
    """The named-tuple class for an ordered tuple of state-variable names.

    Its qualified name (``State__r__u``) is where pickle finds it: the module's
    ``__getattr__`` rebuilds it, so saved models and states load in a new process.
    """
    cls = namedtuple("State", names, module=__name__)
    cls.__qualname__ = "__".join(("State", *names))
    return cls


def __getattr__(name: str) -> type:
    if name.startswith("State__"):
        return state_type(tuple(name.split("__")[1:]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _shapes(spec: Any) -> dict[str, tuple[int, ...]]:
    """Per-variable shapes from a Model or a ``{name: size or shape}`` mapping."""
    if hasattr(spec, "state_shapes"):
        return dict(spec.state_shapes)
    return {k: (v,) if isinstance(v, int) else tuple(v) for k, v in spec.items()}


def flatten(state: Any) -> Tensor:
    """Concatenate a named state (or dict) into one ``(B, D)`` tensor."""
    parts = list(state.values()) if isinstance(state, Mapping) else list(state)
    if len(parts) == 1 and parts[0].dim() == 2:
        return parts[0]
    batch = parts[0].shape[0]
    return torch.cat([p.reshape(batch, -1) for p in parts], dim=-1)


def unflatten(flat: Tensor, spec: Any) -> Any:
    """Split a ``(..., D)`` tensor back into the named state of ``spec``.

    ``spec`` is a Model or a ``{name: size}`` mapping; leading dimensions of
    ``flat`` (batch, or batch and time) are kept.
    """
    shapes = _shapes(spec)
    sizes = [int(torch.Size(s).numel()) for s in shapes.values()]
    if flat.shape[-1] != sum(sizes):
        raise ValueError(
            f"flat state has D={flat.shape[-1]} but the state variables "
            f"{list(shapes)} need D={sum(sizes)}"
        )
    lead = flat.shape[:-1]
    parts = flat.split(sizes, dim=-1) if len(sizes) > 1 else (flat,)
    return state_type(tuple(shapes))(
        *(p.reshape(*lead, *s) for p, s in zip(parts, shapes.values()))
    )


def state_dim(spec: Any) -> int:
    """Total flat dimension D of a Model or ``{name: size}`` mapping."""
    return sum(int(torch.Size(s).numel()) for s in _shapes(spec).values())


def unflattener(spec: Any):
    """A fast ``flat (B, D) -> named state`` function for a fixed ``spec`` (used in time loops)."""
    shapes = _shapes(spec)
    cls = state_type(tuple(shapes))
    if len(shapes) == 1 and len(next(iter(shapes.values()))) == 1:
        return lambda flat: cls(flat)
    return lambda flat: unflatten(flat, shapes)


def flattener(spec: Any):
    """A fast ``named state -> flat (B, D)`` function for a fixed ``spec`` (used in time loops)."""
    shapes = _shapes(spec)
    if len(shapes) == 1 and len(next(iter(shapes.values()))) == 1:
        return lambda state: state[0]
    return flatten
