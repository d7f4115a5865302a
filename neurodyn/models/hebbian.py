"""Rate network with Hebbian fast weights (primer Eqs. 45-47 in continuous time; Miconi et al. 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .linear import recurrent
from .params import register_tensor
from .rate_rnn import RateRNN


class HebbianRNN(RateRNN):
    r"""Rate network with recurrent weights ``W~ + A``, where ``A`` follows a Hebbian rule.

    ::

        tau dr/dt = -r + f((W + A) r + W_in x + b)
        tau_A dA/dt = -A + eta ⊙ (r r^T) [⊙ M]

    ``A`` is a per-trial state ``(B, n, n)`` (``A[i, j]``: post ``i``, pre ``j``),
    zero at the start. Its Euler step with ``dt`` is Eq. 45,
    ``A <- lambda A + eta' r r^T`` with ``lambda = 1 - dt/tau_A`` and
    ``eta' = eta dt/tau_A``. ``eta`` is a scalar or a per-synapse ``(n, n)``
    tensor, trainable with ``learn_eta=True`` so that gradient descent learns the
    plasticity rule (Eq. 47; Ba et al. 2016; Miconi et al. 2018); ``eta > 0`` is
    Hebbian, ``eta < 0`` anti-Hebbian. Where the connectivity has a mask ``M``,
    only allowed synapses are plastic. Other :class:`RateRNN` keywords keep
    their meaning.
    """

    def __init__(
        self,
        n: int,
        n_in: int = 0,
        n_out: int = 0,
        *,
        tau_A: float = 1.0,
        eta: float | Tensor = 0.1,
        learn_eta: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, n_in, n_out, **kwargs)
        self.state_vars = {"r": n, "A": n * n}
        register_tensor(self, "tau_A", tau_A, positive=True, dtype=self.dtype)
        register_tensor(self, "eta", eta, trainable=learn_eta, shapes=((), (n, n)), dtype=self.dtype)

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"r": (self.n,), "A": (self.n, self.n)}

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r, A = state
        current = recurrent(r, self.W, drive) + torch.bmm(A, r.unsqueeze(-1)).squeeze(-1)
        hebb = self.eta * r.unsqueeze(-1) * r.unsqueeze(-2)
        if self.recurrent.mask is not None:
            hebb = hebb * self.recurrent.mask
        return self.State(self.rate_derivative(r, current), (hebb - A) / self.tau_A)

    @property
    def timescale(self) -> float:
        return min(float(self.tau.detach().min()), float(self.tau_A.detach()))

    def state_tau(self) -> Tensor:
        return torch.cat([self.tau.expand(self.n), self.tau_A.expand(self.n * self.n)])
