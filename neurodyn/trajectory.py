"""The result of a simulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from .state import flatten


@dataclass
class Trajectory:
    """States and readouts of a simulation sampled on ``t``.

    ``states`` is a named tuple of ``(B, T, size)`` tensors, ``outputs`` the
    readout ``(B, T, n_out)`` (None for a model without one), ``nfe`` the number
    of vector-field evaluations.
    """

    t: Tensor
    states: Any
    outputs: Tensor | None
    nfe: int

    def __getitem__(self, name: str) -> Tensor:
        try:
            return getattr(self.states, name)
        except AttributeError:
            raise KeyError(f"no state variable {name!r}; the variables are {list(self.states._fields)}") from None

    def flat(self) -> Tensor:
        """All state variables concatenated: ``(B, T, D)``."""
        batch, steps = self.states[0].shape[:2]
        return flatten([s.reshape(batch * steps, -1) for s in self.states]).reshape(batch, steps, -1)

    def numpy(self) -> dict[str, np.ndarray]:
        """Detached NumPy copies: ``{"t": ..., <each state>: ..., "outputs": ...}``."""
        out = {"t": self.t.detach().cpu().numpy()}
        out.update({k: v.detach().cpu().numpy() for k, v in self.states._asdict().items()})
        if self.outputs is not None:
            out["outputs"] = self.outputs.detach().cpu().numpy()
        return out
