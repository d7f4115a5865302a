"""Rate network with output feedback, the architecture FORCE trains (primer Eqs. 28-30; Sussillo & Abbott 2009)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..validation import as_int, as_real
from .connectivity import as_weight
from .linear import recurrent
from .rate_rnn import RateRNN, subclass_dtype


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
        n, n_out = as_int("n", n, 1), as_int("n_out", n_out, 1)
        if "density" in kwargs:
            raise TypeError("ForceRNN takes the connection density as p, not density")
        p = None if p is None else as_real("p", p, gt=0, le=1)
        density = None if kwargs.get("mask") is not None or kwargs.get("W") is not None else p
        dtype = subclass_dtype(kwargs, W_out=W_out, tau=tau)
        if W_out is None:
            W_out = torch.zeros(n_out, n, dtype=dtype)
        super().__init__(n, n_in, n_out, tau=tau, g=g, density=density, W_out=W_out, activation=activation,
                         dtype=dtype, **kwargs)
        if w_fb is None:
            w_fb = 2 * torch.rand(n, n_out, dtype=torch.float64) - 1
        self.register_buffer("w_fb", as_weight("w_fb", w_fb, (self.n, n_out), self.dtype))

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r = state[0]
        current = recurrent(r, self.W, drive) + self.output(state) @ self.w_fb.T
        return self.State(self.rate_derivative(r, current))

    @property
    def W_eff(self) -> Tensor:  # noqa: N802 - the matrix's symbol
        """The equivalent recurrent matrix ``W + w_fb W_out`` (primer Eq. 30)."""
        return self.W + self.w_fb @ self.W_out

    @property
    def bias_eff(self) -> Tensor:
        """The equivalent bias ``b + w_fb b_out``."""
        return self.bias + self.w_fb @ self.b_out
