"""The base of every perturbation: a Model that runs another model, changed only in how it is called."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..models.base import Model
from ..selection import state_var, unit_indices
from .units import Window, check_window, check_window_in_trial


class Perturbation(Model):
    """A model seen through a perturbation; itself a :class:`~neurodyn.models.Model` and a context manager.

    The wrapped model is the submodule ``.model``: its parameters are shared
    (gradients through the wrapper reach them, and training the wrapper trains
    them) but the wrapper never writes to it, so leaving
    ``with lesion(model, units) as lesioned:`` leaves ``model`` exactly as it
    was. Wrappers compose: a perturbation of a perturbation applies both.

    ``window=(t0, t1)`` limits a perturbation to ``t0 <= t < t1``.
    ``simulate`` checks it against the trial (through :meth:`switch_times`):
    a window that misses the simulated times raises ValueError, and adaptive
    solvers step exactly onto ``t0`` and ``t1``. Fixed-step solvers switch at
    the first step starting at or after an edge, so put the edges on the grid
    of ``t`` (or of ``dt``) for an exact switch.
    """

    def __init__(self, model: Model, window: Any = None) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"model must be a neurodyn.models.Model; got {type(model).__name__}")
        super().__init__()
        self.model = model
        self.window: Window | None = check_window(window)

    def __enter__(self) -> Perturbation:
        return self

    def __exit__(self, *exc: object) -> None:
        return None  # nothing to restore: the wrapped model was never modified

    # the wrapped model's interface, unchanged
    @property
    def state_vars(self) -> dict[str, int]:
        return self.model.state_vars

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.model.state_shapes

    @property
    def State(self) -> type:  # noqa: N802 - a class, named like one
        return self.model.State

    @property
    def n_in(self) -> int:
        return self.model.n_in

    @property
    def n_out(self) -> int:
        return self.model.n_out

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def timescale(self) -> float:
        return self.model.timescale

    def state_tau(self) -> Tensor:
        return self.model.state_tau()

    def state_noise(self) -> Tensor:
        return self.model.state_noise()

    def input_drive(self, x: Tensor) -> Tensor:
        return self.model.input_drive(x)

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        return self.model.vector_field(t, state, drive)

    def output(self, state: Any) -> Tensor | None:
        return self.model.output(state)

    def initial_state(self, batch_size: int = 1) -> Any:
        return self.model.initial_state(batch_size)

    def switch_times(self, t: Tensor) -> Tensor:
        """The wrapped model's switch times and this window's edges inside the trial (ValueError if it misses it)."""
        return torch.cat([self.model.switch_times(t), check_window_in_trial(self.window, t)])

    # helpers for the subclasses
    def active(self, t: Tensor | float) -> bool | Tensor:
        """Whether ``t`` lies in the window: a bool for a float ``t``, a 0-d bool tensor for a tensor ``t``."""
        if self.window is None:
            return True
        t0, t1 = self.window
        if isinstance(t, Tensor):
            return (t >= t0) & (t < t1)
        return t0 <= t < t1


class UnitPerturbation(Perturbation):
    """A perturbation of chosen ``units`` of one state variable ``var`` (default: the first)."""

    def __init__(self, model: Model, units: Any, var: str | None = None, window: Any = None) -> None:
        super().__init__(model, window)
        self.var = state_var(model, var)
        self.position = list(model.state_vars).index(self.var)
        shape = model.state_shapes[self.var]
        idx = unit_indices(units, model.state_vars[self.var], "units", f"state variable {self.var!r}")
        chosen = torch.zeros(model.state_vars[self.var], dtype=torch.bool)
        chosen[idx] = True
        self.register_buffer("units", idx.to(model.device))
        self.register_buffer("chosen", chosen.reshape(shape).to(model.device))

    def register_value(self, name: str, value: Tensor | None) -> None:
        """Keep ``value`` as a parameter when it is an ``nn.Parameter`` (trained with the model), else a buffer."""
        if isinstance(value, nn.Parameter):
            self.register_parameter(name, value)
        else:
            self.register_buffer(name, value)

    def replaced(self, state: Any, value: Tensor) -> Any:
        """``state`` with its ``var`` entry replaced by ``value``."""
        return type(state)(*(value if k == self.position else v for k, v in enumerate(state)))

    def var_tau(self) -> Tensor:
        """Time constant of each unit of ``var`` (its shape), from the model's :meth:`state_tau`."""
        offset = sum(self.state_vars[k] for k in list(self.state_vars)[: self.position])
        size = self.state_vars[self.var]
        return self.model.state_tau()[offset: offset + size].reshape(self.state_shapes[self.var])

    def scattered(self, values: Tensor) -> Tensor:
        """Chosen units' values ``(..., k)`` placed into zeros of ``var``'s shape (unchosen units 0)."""
        size = self.state_vars[self.var]
        full = values.new_zeros(*values.shape[:-1], size).index_copy(-1, self.units, values)
        return full.reshape(*values.shape[:-1], *self.state_shapes[self.var])
