"""Named scalar parameters of a model that continuation can sweep.

A name is one of:

* a scalar parameter or buffer by its dotted name (``"mu0"``, ``"tau"``,
  ``"recurrent.weight[0, 1]"``): built-in classic models and ``Equations``
  keep their parameters as named tensors; ``name[i]`` or ``name[i, j]`` picks
  one element of a tensor;
* a numeric (int/float) attribute of the model (set as a float), or a
  floating tensor attribute (set in place, keeping its dtype and device);
* ``"x[i]"``: component ``i`` of the constant input ``x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..models.base import Model

_INDEXED = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:\[\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\])?\s*$")


@dataclass
class SweptParameter:
    """A settable scalar: the element ``index`` of ``tensor``, or the numeric attribute ``attr`` of the model."""

    name: str
    model: Model
    tensor: Tensor | None = None
    index: tuple[int, ...] = ()
    attr: str | None = None

    def get(self) -> float:
        if self.tensor is not None:
            return float(self.tensor.detach()[self.index])
        return float(getattr(self.model, self.attr))

    def set(self, value: float) -> None:
        """Set the value: in place in the tensor (its dtype and device kept), else as a float attribute."""
        if self.tensor is not None:
            with torch.no_grad():
                self.tensor[self.index] = value
        else:
            setattr(self.model, self.attr, float(value))

    def save(self) -> Any:
        """The current value as it is stored (an int attribute stays an int), for :meth:`restore`."""
        return self.get() if self.tensor is not None else getattr(self.model, self.attr)

    def restore(self, saved: Any) -> None:
        if self.tensor is not None:
            self.set(saved)
        else:
            setattr(self.model, self.attr, saved)


def _tensors(model: Model) -> dict[str, Tensor]:
    """The model's parameters and buffers by dotted name, and its public plain tensor attributes."""
    tensors = {k: v for k, v in vars(model).items() if isinstance(v, Tensor) and not k.startswith("_")}
    tensors.update(model.named_parameters())
    tensors.update(model.named_buffers())
    return tensors


def valid_names(model: Model) -> list[str]:
    """The names :func:`resolve` accepts (``[...]`` marks indexable tensors)."""
    names = []
    for name, tensor in _tensors(model).items():
        if torch.is_floating_point(tensor):
            names.append(name if tensor.dim() == 0 or tensor.numel() == 1 else f"{name}[...]")
    names += [k for k, v in vars(model).items()
              if not k.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool)
              and k not in ("n_in", "n_out", "n")]
    if model.n_in:
        names.append(f"x[0..{model.n_in - 1}]")
    return names


def resolve(model: Model, name: str, x: Tensor) -> SweptParameter:
    """The parameter called ``name`` (see the module docstring); ``x (1, n_in)`` is the constant input."""
    if not isinstance(name, str):
        raise TypeError(f"param must be a str naming a model parameter; got {type(name).__name__}")
    match = _INDEXED.match(name)
    tensors = _tensors(model)
    if match:
        base, index_text = match.group(1), match.group(2)
        index = tuple(int(i) for i in index_text.split(",")) if index_text else ()
        tensor = x[0] if base == "x" and model.n_in else tensors.get(base)
        if tensor is not None and torch.is_floating_point(tensor):
            if not index and tensor.numel() == 1:
                index = (0,) * tensor.dim()
            if len(index) == tensor.dim() and all(-s <= i < s for i, s in zip(index, tensor.shape, strict=True)):
                return SweptParameter(name, model, tensor=tensor, index=index)
            raise ValueError(f"param {name!r}: {base} has shape {tuple(tensor.shape)}; "
                             f"pick one element, e.g. {base}[{', '.join('0' * tensor.dim())}]")
        value = getattr(model, base, None) if not index and "." not in base else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and base in vars(model):
            return SweptParameter(name, model, attr=base)
    raise ValueError(f"param {name!r} is not a parameter of {type(model).__name__}; "
                     f"valid names are {valid_names(model)}")
