"""Lesions: units removed from a network for the whole run (Yang et al. 2019; primer Sec. 4)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..models.base import Model
from .wrapper import UnitPerturbation


class Lesion(UnitPerturbation):
    r"""``model`` with the chosen units of ``var`` silenced at all times.

    With ``keep`` the 0/1 mask of surviving units and ``s`` the state of ``var``::

        F'(t, s, drive) = F(t, keep ⊙ s, drive)      for surviving units
        tau_i ds_i/dt   = -s_i                         for lesioned units i
        y'              = output(keep ⊙ s)

    The rest of the network and the readout see a lesioned unit as exactly 0,
    whatever its stored state. That state relaxes to 0 on the unit's own time
    constant (``model.state_tau``): it starts at 0 in :meth:`initial_state`
    and then stays exactly 0; a user-given ``state0`` is masked (the network
    never sees its lesioned entries, which decay to 0). Relaxing rather than
    freezing keeps the linearization honest: the lesioned directions add
    eigenvalues ``-1/tau_i`` instead of spurious zeros, so fixed points keep
    their stability class and Newton's Jacobian stays invertible.
    """

    def __init__(self, model: Model, units: Any, var: str | None = None) -> None:
        super().__init__(model, units, var)

    def masked(self, state: Any) -> Any:
        """``state`` with the lesioned units of ``var`` set to 0."""
        return self.replaced(state, state[self.position].masked_fill(self.chosen, 0.0))

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        derivative = self.model.vector_field(t, self.masked(state), drive)
        s = state[self.position]
        return self.replaced(derivative, torch.where(self.chosen, -s / self.var_tau(), derivative[self.position]))

    def output(self, state: Any) -> Tensor | None:
        return self.model.output(self.masked(state))

    def initial_state(self, batch_size: int = 1) -> Any:
        return self.masked(self.model.initial_state(batch_size))


def lesion(model: Model, units: Any, *, var: str | None = None) -> Lesion:
    """Silence ``units`` of ``model`` for the whole run, as in Yang et al. (2019); see :class:`Lesion`.

    ``units``: an int, ints, an integer tensor or a boolean mask over the
    state variable ``var`` (default the first, e.g. "r"). Returns a wrapper
    model (also a context manager); ``model`` itself is never changed::

        with lesion(model, [0, 3]) as lesioned:
            traj = simulate(lesioned, t, x)
    """
    return Lesion(model, units, var)
