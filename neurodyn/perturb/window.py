"""Perturbations during part of a trial: optogenetic-style clamping and current injection (primer Sec. 4)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..models.base import Model
from ..models.classic import FitzHughNagumo, LinearIntegrator, WilsonCowan, WongWang
from ..models.rate_rnn import RateRNN
from .units import per_unit
from .wrapper import Perturbation, UnitPerturbation

# Where each built-in model adds its drive: {state variable: first drive column}. A unit i of that
# variable receives drive column offset + i, and the drive enters as an input current: inside the
# nonlinearity for rate networks (W r + W_in x + b), into the population currents of Wong-Wang and
# Wilson-Cowan, and straight into dv/dt (FitzHugh-Nagumo) or dr/dt (LinearIntegrator).
DRIVE_OFFSETS: dict[type, dict[str, int]] = {
    RateRNN: {"r": 0},  # and its subclasses EIRateRNN, STPRateRNN, ForceRNN, HebbianRNN
    LinearIntegrator: {"r": 0},
    WongWang: {"S1": 0, "S2": 1},
    WilsonCowan: {"E": 0, "I": 1},
    FitzHughNagumo: {"v": 0},
}


def drive_offset(model: Model, var: str) -> int:
    """First drive column of ``var``'s units; ValueError for a model whose drive layout is not known."""
    while isinstance(model, Perturbation):
        model = model.model
    for cls, offsets in DRIVE_OFFSETS.items():
        if isinstance(model, cls):
            if var not in offsets:
                raise ValueError(f"{type(model).__name__}'s drive enters only {list(offsets)}, not {var!r}; "
                                 f"stimulate one of those (var=...)")
            return offsets[var]
    known = ", ".join(cls.__name__ for cls in DRIVE_OFFSETS)
    raise ValueError(f"stimulate does not know where {type(model).__name__} adds its drive (it knows {known} "
                     "and their subclasses); add the current to the model's input x instead")


class Clamp(UnitPerturbation):
    r"""``model`` with the chosen units of ``var`` driven to ``value`` during ``window``.

    For ``t0 <= t < t1`` a clamped unit ``i`` follows ``tau_c ds_i/dt = value_i - s_i``
    instead of its own equation (its recurrent and external input are
    replaced by the clamp target): it relaxes to ``value`` with no jump in the
    state, on ``tau_c`` = the unit's own time constant (``model.state_tau``)
    unless ``tau`` is given. The rest of the network, the readout and the
    trajectory all see the same, continuous state of the clamped units (an
    ODE state cannot jump, and the readout has no time argument, so a view
    fixed at exactly ``value`` from t0 on would disagree with the recorded
    trajectory); a small ``tau`` makes the clamp faster (and the system
    stiffer: keep ``dt`` below it). Outside the window the dynamics are the
    model's own, bitwise. ``value = 0`` models optogenetic inactivation,
    ``value > 0`` activation. ``value`` may be an ``nn.Parameter`` (trained
    with the model).
    """

    def __init__(self, model: Model, units: Any, value: Any, window: Any = None, var: str | None = None,
                 tau: float | None = None) -> None:
        super().__init__(model, units, var, window)
        self.register_value("value", per_unit("value", value, self.units.numel(), model.dtype, model.device))
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, numbers.Real)
                                or not math.isfinite(tau) or tau <= 0):
            raise ValueError(f"tau must be a positive finite number (or None: the unit's own); got {tau!r}")
        self.clamp_tau = None if tau is None else float(tau)

    @property
    def timescale(self) -> float:
        """The model's, or the clamp's own ``tau`` when faster (``simulate`` warns when ``dt`` exceeds it)."""
        return self.model.timescale if self.clamp_tau is None else min(self.model.timescale, self.clamp_tau)

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        derivative = self.model.vector_field(t, state, drive)
        active = self.active(t)
        if active is False:
            return derivative
        s = state[self.position]
        target = self.scattered(self.value.expand(self.units.numel()))
        relax = (target - s) / (self.var_tau() if self.clamp_tau is None else self.clamp_tau)
        where = self.chosen if active is True else self.chosen & active
        return self.replaced(derivative, torch.where(where, relax, derivative[self.position]))


Current = float | Tensor | Callable[[Any], Any]


class Stimulation(UnitPerturbation):
    r"""``model`` with ``current`` added to the drive of the chosen units of ``var`` during ``window``.

    For ``t0 <= t < t1``: ``drive_i <- drive_i + I_i(t)``. The drive is where
    the model's input enters (:data:`DRIVE_OFFSETS`): for a
    :class:`~neurodyn.models.RateRNN` ``tau dr/dt = -r + f(W r + W_in x + b + I)``,
    a current injected into the units (in the units of ``W_in x``). ``current``
    is a number, a ``(k,)`` tensor (one per chosen unit, in the order given; an
    ``nn.Parameter`` is trained with the model) or a callable ``I(t)`` of a 0-d tensor ``t``
    returning a number or a ``(k,)`` or ``(B, k)`` tensor; a callable's value
    is not checked per step (a non-finite one ends the simulation with a
    DivergenceError).
    """

    def __init__(self, model: Model, units: Any, current: Current, window: Any = None,
                 var: str | None = None) -> None:
        super().__init__(model, units, var, window)
        self.register_buffer("columns", self.units + drive_offset(model, self.var))
        k = self.units.numel()
        function = callable(current) and not isinstance(current, Tensor)
        self.current_fn: Callable[[Any], Any] | None = current if function else None
        self.register_value("current", None if function else per_unit("current", current, k, model.dtype,
                                                                        model.device))

    def injected(self, t: Tensor | float) -> Tensor:
        """``I(t)`` as a ``(k,)`` or ``(B, k)`` tensor."""
        k = self.units.numel()
        if self.current_fn is None:
            return self.current.expand(k)
        time = torch.as_tensor(t, dtype=self.dtype, device=self.device)  # a tensor under every solver, as x(t)
        value = torch.as_tensor(self.current_fn(time), dtype=self.dtype, device=self.device)
        if value.dim() == 0:
            return value.expand(k)
        if value.shape[-1] != k or value.dim() > 2:
            raise ValueError(f"current(t) must return a number or a ({k},) or (B, {k}) tensor; "
                             f"got shape {tuple(value.shape)}")
        return value

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        active = self.active(t)
        if active is not False:
            current = self.injected(t)
            added = current.new_zeros(*current.shape[:-1], drive.shape[-1]).index_copy(-1, self.columns, current)
            drive = drive + added if active is True else torch.where(active, drive + added, drive)
        return self.model.vector_field(t, state, drive)


def clamp(model: Model, units: Any, value: Any, window: Any = None, *, var: str | None = None,
          tau: float | None = None) -> Clamp:
    """Optogenetic-style inactivation (``value=0``) or activation of ``units`` for ``t0 <= t < t1``; see :class:`Clamp`.

    ``window=(t0, t1)`` (None: the whole trial); ``value`` a number or one per
    unit. Returns a wrapper model (also a context manager); ``model`` itself
    is never changed.
    """
    return Clamp(model, units, value, window, var, tau)


def stimulate(model: Model, units: Any, current: Current, window: Any = None, *,
              var: str | None = None) -> Stimulation:
    """Inject ``current`` into the drive of ``units`` for ``t0 <= t < t1``; see :class:`Stimulation`.

    Returns a wrapper model (also a context manager); ``model`` itself is never changed.
    """
    return Stimulation(model, units, current, window, var)
