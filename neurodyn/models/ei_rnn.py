"""Excitatory/inhibitory rate network obeying Dale's law (primer Eqs. 35-36; Song, Yang & Wang 2016)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..validation import as_int, as_real, as_tensor
from .activations import Activation, get_activation, slope_of
from .rate_rnn import RateRNN, subclass_dtype

READOUTS = ("all", "excitatory")


class PopulationActivation(nn.Module):
    """Apply ``f_E`` to the first ``n_e`` units and ``f_I`` to the rest."""

    def __init__(self, n_e: int, f_e: Activation, f_i: Activation) -> None:
        super().__init__()
        self.n_e, self.f_e, self.f_i = n_e, f_e, f_i

    def forward(self, current: Tensor) -> Tensor:
        return torch.cat([self.f_e(current[..., : self.n_e]), self.f_i(current[..., self.n_e :])], dim=-1)

    @property
    def slope(self) -> Callable[[Tensor], Tensor] | None:
        """``f'`` of both populations' activations when both are known in closed form."""
        slope_e, slope_i = slope_of(self.f_e), slope_of(self.f_i)
        if slope_e is None or slope_i is None:
            return None
        return lambda z: torch.cat([slope_e(z[..., : self.n_e]), slope_i(z[..., self.n_e :])], dim=-1)


class EIRateRNN(RateRNN):
    r"""Rate network of ``n_e`` excitatory then ``n_i`` inhibitory units with Dale's law.

    ::

        tau_E dr_E/dt = -r_E + f_E(W_EE r_E - W_EI r_I + W_in,E x + b_E)
        tau_I dr_I/dt = -r_I + f_I(W_IE r_E - W_II r_I + W_in,I x + b_I)

    (primer Eqs. 35-36). The effective matrix ``W = |W~| · diag(sign)``, with
    sign +1 for the first ``n_e`` (presynaptic) columns and -1 for the rest, so
    excitatory columns are >= 0 and inhibitory ones <= 0 by construction, after
    any optimizer step. Default ``init="balanced"``: mean E and I input of each
    unit cancel, spectral radius ``g`` (Song, Yang & Wang 2016).

    ``tau_e``/``tau_i`` (default ``tau``) and ``activation``/``activation_i``
    (default the same) are per population; ``readout="excitatory"`` reads out
    from excitatory units only (inhibitory columns of ``W_out`` held at 0; a
    given ``W_out`` must have them 0).
    Every other :class:`RateRNN` keyword (``W``, ``W_in``, ``b``, ``W_out``,
    ``b_out``, ``bias``, ``g``, ``init``, ``mask``, ``density``, ``autapses``,
    ``W_fix``, ``learn_tau``) keeps its meaning; a given ``W`` must obey Dale's law.
    """

    def __init__(
        self,
        n_e: int,
        n_i: int,
        n_in: int = 0,
        n_out: int = 0,
        *,
        tau: float | Tensor = 0.1,
        tau_e: float | Tensor | None = None,
        tau_i: float | Tensor | None = None,
        activation: str | Activation = "relu",
        activation_i: str | Activation | None = None,
        readout: str = "all",
        init: Any = "balanced",
        **kwargs: Any,
    ) -> None:
        n_e, n_i = as_int("n_e", n_e, 1), as_int("n_i", n_i, 0)
        if "sign" in kwargs:
            raise TypeError("EIRateRNN sets Dale's-law signs from n_e and n_i (the first n_e units excitatory); "
                            "remove sign=, or use RateRNN(sign=...) for another order")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {list(READOUTS)}; got {readout!r}")
        n = n_e + n_i
        dtype = subclass_dtype(kwargs, tau=tau)
        if tau_e is not None or tau_i is not None:
            if as_tensor("tau", tau).dim() > 0:
                raise ValueError("give a per-unit tau tensor or tau_e/tau_i, not both")
            tau_e, tau_i = (tau if v is None else as_real(k, v, gt=0) for k, v in (("tau_e", tau_e), ("tau_i", tau_i)))
            tau = torch.cat([torch.full((n_e,), float(tau_e), dtype=torch.float64),
                             torch.full((n_i,), float(tau_i), dtype=torch.float64)])
        f_e = get_activation(activation)
        if activation_i is not None:
            activation = PopulationActivation(n_e, f_e, get_activation(activation_i))
        sign = torch.cat([torch.ones(n_e), -torch.ones(n_i)])
        super().__init__(n, n_in, n_out, tau=tau, activation=activation, init=init, sign=sign, dtype=dtype, **kwargs)
        self.n_e, self.n_i, self.readout = n_e, n_i, readout
        self.register_buffer("readout_mask", (sign > 0).to(self.dtype) if readout == "excitatory" else None)
        if self.readout_mask is not None:
            if kwargs.get("W_out") is not None and (self.W_out[:, n_e:] != 0).any():
                raise ValueError('readout="excitatory" reads out from excitatory units only, but the given W_out has '
                                 f"nonzero inhibitory columns (columns {n_e}..{n - 1}); zero them")
            with torch.no_grad():
                self.W_out.mul_(self.readout_mask)

    @property
    def excitatory(self) -> Tensor:
        """Boolean ``(n,)`` mask of excitatory units."""
        return self.recurrent.sign > 0

    def output(self, state: Any) -> Tensor | None:
        if not self.n_out:
            return None
        W_out = self.W_out if self.readout_mask is None else self.W_out * self.readout_mask
        return F.linear(state[0], W_out, self.b_out)
