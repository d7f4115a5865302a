"""Rate network with output feedback, the architecture FORCE trains (primer Eqs. 28-30; Sussillo & Abbott 2009)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .connectivity import infer_dtype
from .rate_rnn import RateRNN


class ForceRNN(RateRNN):
    r"""Chaotic rate network whose readout is fed back through fixed random weights ``w_fb``.

    ::

        tau dr/dt = -r + f(W r + W_in x + w_fb y + b),      y = W_out r + b_out

    (primer Eqs. 28-29). ``W`` is sparse with density ``p`` and gain ``g``
    (``W_ij ~ g N(0, 1)/sqrt(p n)`` on a random mask; ``p`` is unused when
    ``W`` or ``mask`` is given), ``w_fb ~ U(-1, 1)`` is a fixed buffer ``(n, n_out)`` and
    ``W_out`` starts at zero unless given (Sussillo & Abbott 2009). ``W_out``
    is what FORCE/RLS trains. Feedback makes the dynamics those of the low-rank
    modified matrix :attr:`W_eff` ``= W + w_fb W_out`` with bias
    :attr:`bias_eff` ``= b + w_fb b_out`` (Eq. 30). Other :class:`RateRNN`
    keywords keep their meaning.
    """

    def __init__(
        self,
        n: int,
        n_out: int = 1,
        *,
        n_in: int = 0,
        tau: float | Tensor = 0.01,
        g: float = 1.5,
        p: float | None = 0.1,
        w_fb: Tensor | None = None,
        W_out: Tensor | None = None,
        activation: Any = "tanh",
        **kwargs: Any,
    ) -> None:
        if not isinstance(n_out, int) or isinstance(n_out, bool) or n_out < 1:
            raise ValueError(f"n_out must be an int >= 1 (the fed-back readout); got {n_out!r}")
        if "density" in kwargs:
            raise TypeError("ForceRNN takes the connection density as p, not density")
        density = None if kwargs.get("mask") is not None or kwargs.get("W") is not None else p
        if W_out is None:
            given = (kwargs.get(k) for k in ("W", "W_in", "b", "b_out", "W_fix"))
            W_out = torch.zeros(n_out, n, dtype=infer_dtype(*given))
        super().__init__(n, n_in, n_out, tau=tau, g=g, density=density, W_out=W_out, activation=activation, **kwargs)
        if w_fb is None:
            w_fb = 2 * torch.rand(n, n_out, dtype=torch.float64) - 1
        w_fb = torch.as_tensor(w_fb)
        if tuple(w_fb.shape) != (n, n_out) or not torch.isfinite(w_fb).all():
            raise ValueError(f"w_fb must be a finite ({n}, {n_out}) tensor; got shape {tuple(w_fb.shape)}")
        self.register_buffer("w_fb", w_fb.detach().clone().to(self.dtype))

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r = state[0]
        current = torch.addmm(drive, r, self.W.T) + self.output(state) @ self.w_fb.T
        return self.State(self.rate_derivative(r, current))

    @property
    def W_eff(self) -> Tensor:  # noqa: N802 - the matrix's symbol
        """The equivalent recurrent matrix ``W + w_fb W_out`` (primer Eq. 30)."""
        return self.W + self.w_fb @ self.W_out

    @property
    def bias_eff(self) -> Tensor:
        """The equivalent bias ``b + w_fb b_out``."""
        return self.bias + self.w_fb @ self.b_out
