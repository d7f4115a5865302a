"""Recurrent connectivity shared by every network model.

One module builds the effective recurrent matrix of any network from its
trainable part ``W~``::

    W = M ⊙ S(W~) + W_fix

- ``M``: a fixed 0/1 mask (given, or random with density p; no autapses
  zeroes its diagonal), so masked synapses stay zero through training;
- ``S``: identity, or Dale's law ``S(W~) = |W~| · diag(sign)`` with one sign
  per presynaptic column (primer Eqs. 35-36; Song, Yang & Wang 2016), which
  holds by construction after any optimizer step;
- ``W_fix``: a fixed (buffer) part, so that only ``W_train = M ⊙ S(W~)`` learns
  (primer Sec. 5.3; Rajan et al. 2016; Masse et al. 2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

Initializer = Callable[[tuple[int, ...]], Tensor]
INITS = ("gaussian", "identity", "orthogonal", "balanced")


def as_weight(name: str, value: Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, init) -> Tensor:
    """Validate a user-given initial tensor, or draw one with ``init(shape)``."""
    if value is None:
        return init(shape).to(dtype)
    value = torch.as_tensor(value)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; pass finite initial values")
    return value.detach().clone().to(dtype)


def infer_dtype(*tensors: Tensor | None) -> torch.dtype:
    """The dtype of the first floating tensor given, else torch's default."""
    for t in tensors:
        if isinstance(t, Tensor) and torch.is_floating_point(t):
            return t.dtype
    return torch.get_default_dtype()


def gaussian(g: float, n: int) -> Initializer:
    """Initializer ``W_ij ~ g N(0, 1) / sqrt(n)``: spectral radius ~g (Sompolinsky et al. 1988)."""
    return lambda shape: g * torch.randn(shape, dtype=torch.float64) / math.sqrt(n)


def identity(shape: tuple[int, ...]) -> Tensor:
    """Initializer ``W = I`` (Le, Jaitly & Hinton 2015): with relu, ``tau dr/dt = -r + relu(W r)`` holds r."""
    return torch.eye(shape[0], dtype=torch.float64)


def orthogonal(g: float) -> Initializer:
    """Initializer ``W = g Q`` with Q a random orthogonal matrix (Saxe et al. 2014): all |eigenvalues| = g."""
    return lambda shape: g * nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64))


def _check_square(name: str, value: Tensor | None, n: int) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({n}, {n}); got {type(value).__name__}")
    if tuple(value.shape) != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}); got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return value.detach().clone()


class Connectivity(nn.Module):
    r"""The effective recurrent matrix ``W = M ⊙ S(W~) + W_fix`` of a network of ``n`` units.

    Args:
        g: gain of the random initializers (spectral radius of ``M ⊙ S(W~)``).
        W: initial ``W~`` (overrides ``init``). With ``sign`` its columns must
            already obey Dale's law, so the effective ``W`` equals the given one.
        init: "gaussian" (``g N(0,1)/sqrt(p n)`` with p the mask density),
            "identity" (Le et al. 2015; ``g`` unused), "orthogonal" (``g Q``),
            "balanced" (Dale's law only: half-normal magnitudes, inhibitory
            columns scaled by n_E/n_I so each row's mean E and I input cancel,
            then rescaled to spectral radius ``g``; Song, Yang & Wang 2016), or a
            callable ``shape -> Tensor``.
        mask: fixed 0/1 ``(n, n)`` mask ``M`` of allowed synapses.
        density: draw ``M`` at random with ``P(M_ij = 1) = density`` in (0, 1].
        autapses: False zeroes the diagonal of ``M`` (no self-connections).
        W_fix: fixed, non-trainable ``(n, n)`` part added to ``W``.
        sign: ``(n,)`` tensor of +1 (excitatory) / -1 (inhibitory) presynaptic
            units: Dale's law.
    """

    def __init__(
        self,
        n: int,
        *,
        g: float = 1.5,
        W: Tensor | None = None,
        init: str | Initializer = "gaussian",
        mask: Tensor | None = None,
        density: float | None = None,
        autapses: bool = True,
        W_fix: Tensor | None = None,
        sign: Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int; got {n!r}")
        if not isinstance(g, (int, float)) or not math.isfinite(g) or g < 0:
            raise ValueError(f"g must be a finite number >= 0; got {g!r}")
        if not (isinstance(init, str) and init in INITS) and not callable(init):
            raise ValueError(f"init must be one of {list(INITS)} or a callable shape -> Tensor; got {init!r}")
        dtype = dtype or infer_dtype(W, W_fix)
        self.n = n
        self._register_optional("mask", self._make_mask(n, mask, density, autapses), dtype)
        self._register_optional("sign", self._check_sign(sign, n), dtype)
        W_fix = _check_square("W_fix", W_fix, n)
        if W_fix is not None and self.sign is not None and (W_fix * self.sign < 0).any():
            raise ValueError("W_fix breaks Dale's law: its excitatory columns must be >= 0 and inhibitory ones <= 0")
        self._register_optional("W_fix", W_fix, dtype)
        if W is None:
            weight = self._initial(init, g, dtype)
        else:
            weight = as_weight("W", W, (n, n), dtype, None)
            if self.sign is not None:
                if (weight * self.sign < 0).any():
                    raise ValueError("W breaks Dale's law: columns of excitatory units must be >= 0 and of "
                                     "inhibitory units <= 0; fix the signs or leave W=None")
                weight = weight.abs()
        self.weight = nn.Parameter(weight)

    def _register_optional(self, name: str, value: Tensor | None, dtype: torch.dtype) -> None:
        self.register_buffer(name, None if value is None else value.to(dtype))

    @staticmethod
    def _make_mask(n: int, mask: Tensor | None, density: float | None, autapses: bool) -> Tensor | None:
        if mask is not None and density is not None:
            raise ValueError("give either mask or density, not both")
        if density is not None:
            if not isinstance(density, (int, float)) or not 0 < density <= 1:
                raise ValueError(f"density must be in (0, 1]; got {density!r}")
            mask = (torch.rand(n, n) < density) if density < 1 else None
        mask = _check_square("mask", mask, n)
        if mask is not None:
            mask = mask.to(torch.float64)
            if not ((mask == 0) | (mask == 1)).all():
                raise ValueError("mask must hold only 0 and 1 (or booleans)")
        if not autapses:
            mask = (torch.ones(n, n, dtype=torch.float64) if mask is None else mask).fill_diagonal_(0)
        return mask

    @staticmethod
    def _check_sign(sign: Tensor | None, n: int) -> Tensor | None:
        if sign is None:
            return None
        sign = torch.as_tensor(sign, dtype=torch.float64)
        if tuple(sign.shape) != (n,) or not ((sign == 1) | (sign == -1)).all():
            raise ValueError(f"sign must be an ({n},) tensor of +1 (excitatory) and -1 (inhibitory)")
        return sign

    def _initial(self, init: str | Initializer, g: float, dtype: torch.dtype) -> Tensor:
        n, density = self.n, 1.0 if self.mask is None else max(float(self.mask.mean()), 1.0 / self.n)
        if init == "balanced":
            if self.sign is None:
                raise ValueError('init="balanced" needs Dale\'s-law signs (use EIRateRNN or pass sign)')
            return self._balanced(g).to(dtype)
        draw = {"gaussian": gaussian(g, max(round(density * n), 1)), "identity": identity,
                "orthogonal": orthogonal(g)}.get(init, init)
        weight = torch.as_tensor(draw((n, n)))
        if tuple(weight.shape) != (n, n) or not torch.isfinite(weight).all():
            raise ValueError(f"init must return a finite ({n}, {n}) tensor; got shape {tuple(weight.shape)}")
        weight = weight.to(dtype)
        return weight.abs() if self.sign is not None else weight

    def _balanced(self, g: float) -> Tensor:
        n = self.n
        excitatory = self.sign > 0
        n_e, n_i = int(excitatory.sum()), int((~excitatory).sum())
        magnitude = torch.randn(n, n, dtype=torch.float64).abs()
        if n_e and n_i:
            magnitude[:, ~excitatory] *= n_e / n_i
        effective = magnitude * self.sign * (1.0 if self.mask is None else self.mask)
        radius = float(torch.linalg.eigvals(effective).abs().max())
        return magnitude * (g / radius if radius > 0 else 0.0)

    @property
    def density(self) -> float:
        """Fraction of allowed synapses (1.0 without a mask)."""
        return 1.0 if self.mask is None else float(self.mask.mean())

    @property
    def trainable_part(self) -> Tensor:
        """``W_train = M ⊙ S(W~)``, the part of ``W`` that learns."""
        buffers, weight = self._buffers, self._parameters["weight"]  # dict lookups: this runs every time step
        if buffers["sign"] is not None:
            weight = weight.abs() * buffers["sign"]
        return weight if buffers["mask"] is None else weight * buffers["mask"]

    def forward(self) -> Tensor:
        """The effective ``(n, n)`` matrix ``W[post, pre]``."""
        fixed = self._buffers["W_fix"]
        return self.trainable_part if fixed is None else self.trainable_part + fixed
