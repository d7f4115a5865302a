"""Divisive normalization as an activation for any rate model (primer Eq. 37; Carandini & Heeger 2012)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..validation import as_tensor
from .activations import Activation, get_activation
from .params import register_tensor


class DivisiveNormalization(nn.Module):
    r"""Activation ``r_i = f(gamma I_i / (sum_{j in pool(i)} I_j + sigma))`` (primer Eq. 37).

    ``I`` is the unit's total input current ``(B, n)``. ``pool=None`` pools
    over all units; otherwise ``pool`` is a 0/1 ``(n, n)`` matrix with
    ``pool[i, j] = 1`` when ``j`` is in unit ``i``'s normalization pool.
    ``gamma`` and ``sigma`` are trainable with ``trainable=True``. ``sigma > 0``
    (the semi-saturation constant of Carandini & Heeger 2012) keeps the
    denominator positive for non-negative inputs, zero input included (``sigma = 0``
    would give 0/0 there). Where the pooled sum reaches ``-sigma`` or below, Eq. 37
    is undefined (a negative denominator would turn inhibition into excitation):
    the rates are NaN there, and ``simulate`` reports it as a divergence.
    """

    def __init__(
        self,
        gamma: float = 1.0,
        sigma: float = 1.0,
        f: str | Activation = "relu",
        pool: Tensor | None = None,
        *,
        trainable: bool = False,
    ) -> None:
        super().__init__()
        self.f = get_activation(f)
        register_tensor(self, "gamma", gamma, trainable=trainable)
        register_tensor(self, "sigma", sigma, trainable=trainable)
        if (self.sigma.detach() <= 0).any():
            raise ValueError(f"sigma must be > 0 (at sigma = 0 a zero input gives 0/0); got {sigma!r}")
        if pool is not None:
            pool = as_tensor("pool", pool, allow_bool=True)
            if pool.dim() != 2 or pool.shape[0] != pool.shape[1] or pool.shape[0] < 1:
                raise ValueError(f"pool must be a square (n, n) matrix; got shape {tuple(pool.shape)}")
            if not ((pool == 0) | (pool == 1)).all():
                raise ValueError("pool must hold only 0 and 1")
            pool = pool.to(self.gamma.dtype)
        self.register_buffer("pool", pool)

    @property
    def units(self) -> int | None:
        """The number of units the pool matrix is built for (None: any)."""
        return None if self.pool is None else self.pool.shape[0]

    def forward(self, current: Tensor) -> Tensor:
        if self.pool is None:
            pooled = current.sum(dim=-1, keepdim=True)
        elif current.shape[-1] != self.pool.shape[0]:
            raise ValueError(f"pool is ({self.units}, {self.units}) but the input has {current.shape[-1]} units")
        else:
            pooled = current @ self.pool.T
        denominator = pooled + self.sigma
        return self.f(torch.where(denominator > 0, self.gamma * current / denominator, torch.nan))

    def extra_repr(self) -> str:
        pool = "all" if self.pool is None else "matrix"
        return f"gamma={float(self.gamma.detach()):g}, sigma={float(self.sigma.detach()):g}, pool={pool}"

