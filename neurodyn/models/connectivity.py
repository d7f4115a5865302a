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
from typing import Any

import torch
from torch import Tensor, nn

from ..validation import as_int, as_real, as_tensor, float_dtype

Initializer = Callable[[tuple[int, ...]], Tensor]
INITS = ("gaussian", "identity", "orthogonal", "balanced")


def as_weight(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype | None, init=None,
              *, allow_bool: bool = False) -> Tensor:
    """Validate a user-given initial array (tensor, numpy array or list), or draw one with ``init(shape)``."""
    if value is None:
        return init(shape).to(dtype)
    tensor = as_tensor(name, value, allow_bool=allow_bool)
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or Inf; pass finite values")
    return tensor if dtype is None else tensor.to(dtype)


def infer_dtype(*values: Any) -> torch.dtype:
    """The dtype of the first floating tensor or numpy array given, else torch's default."""
    for value in values:
        dtype = float_dtype(value)
        if dtype is not None:
            return dtype
    return torch.get_default_dtype()


def entries(where: Tensor, limit: int = 5) -> str:
    """The first ``limit`` ``(row, column)`` indices where a boolean matrix is True, for error messages."""
    found = where.nonzero().tolist()
    listed = ", ".join(f"({i}, {j})" for i, j in found[:limit])
    return listed + (f" and {len(found) - limit} more" if len(found) > limit else "")


def gaussian(g: float, n: int) -> Initializer:
    """Initializer ``W_ij ~ g N(0, 1) / sqrt(n)``: spectral radius ~g (Sompolinsky et al. 1988)."""
    return lambda shape: g * torch.randn(shape, dtype=torch.float64) / math.sqrt(n)


def identity(shape: tuple[int, ...]) -> Tensor:
    """Initializer ``W = I`` (Le, Jaitly & Hinton 2015): with relu, ``tau dr/dt = -r + relu(W r)`` holds r."""
    return torch.eye(shape[0], dtype=torch.float64)


def orthogonal(g: float) -> Initializer:
    """Initializer ``W = g Q`` with Q a random orthogonal matrix (Saxe et al. 2014): all |eigenvalues| = g."""
    return lambda shape: g * nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64))


class Connectivity(nn.Module):
    r"""The effective recurrent matrix ``W = M ⊙ S(W~) + W_fix`` of a network of ``n`` units.

    Args:
        g: gain that scales the random draw of ``W~``. Eigenvalues of the initial
            ``W_train = M ⊙ S(W~)``, with p the mask density (Rajan & Abbott 2006):
            "gaussian" (entries ``g N(0,1)/sqrt(p n)``) fills a disk of radius ≈ g
            (circular law); "orthogonal" (``g Q``) has all ``|lambda| = g`` exactly
            without a mask and behaves as "gaussian" with gain ``g sqrt(p)`` with one;
            "balanced" has spectral radius exactly g. Under Dale's law "gaussian" and
            "orthogonal" keep the magnitudes ``|W~|``, whose nonzero mean adds one
            outlier ≈ ``g sqrt(2/pi) (n_E - n_I) sqrt(p/n)`` to a bulk of radius
            ≈ ``g sqrt(1 - 2p/pi)`` (g sqrt(p) in place of g for a masked "orthogonal");
            the outlier sets the spectral radius when n_E != n_I (use "balanced" for a
            radius of g).
        W: initial ``W~`` (overrides ``init``; tensor, numpy array or list). It must
            already have the structure asked for, so that the effective ``W_train``
            equals it: zero where a given ``mask`` is 0 and on the diagonal with
            ``autapses=False``, and with ``sign`` excitatory columns >= 0 and
            inhibitory ones <= 0; otherwise ValueError names the offending entries.
            ``density`` instead sparsifies the given ``W``: its random mask keeps each
            entry with probability ``density``. Under Dale's law an entry given as
            exactly 0 never learns (the gradient of ``|W~|`` is taken as 0 there): mark
            absent synapses with ``mask`` and give the others nonzero initial values.
        init: "gaussian" (``g N(0,1)/sqrt(p n)``), "identity" (Le et al. 2015; ``g``
            unused; needs every diagonal synapse allowed), "orthogonal" (``g Q``,
            Saxe et al. 2014), "balanced" (Dale's law only: half-normal magnitudes,
            inhibitory columns scaled by n_E/n_I so each row's mean E and I input
            cancel, then rescaled to spectral radius ``g``; Song, Yang & Wang 2016),
            or a callable ``shape -> Tensor``.
        mask: fixed 0/1 ``(n, n)`` mask ``M`` of allowed synapses.
        density: draw ``M`` at random with ``P(M_ij = 1) = density`` in (0, 1].
        autapses: False zeroes the diagonal of ``M`` (no self-connections).
        W_fix: fixed, non-trainable ``(n, n)`` part added to ``W``.
        sign: ``(n,)`` +1 (excitatory) / -1 (inhibitory) per presynaptic unit: Dale's law.
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
        n = as_int("n", n, 1)
        g = as_real("g", g, ge=0)
        if not (isinstance(init, str) and init in INITS) and not callable(init):
            raise ValueError(f"init must be one of {list(INITS)} or a callable shape -> Tensor; got {init!r}")
        dtype = dtype or infer_dtype(W, W_fix)
        self.n = n
        self._register_optional("mask", self._make_mask(n, mask, density, autapses), dtype)
        self._register_optional("sign", self._check_sign(sign, n), dtype)
        W_fix = None if W_fix is None else as_weight("W_fix", W_fix, (n, n), None)
        self._check_dale("W_fix", W_fix)
        self._register_optional("W_fix", W_fix, dtype)
        if W is None:
            weight = self._initial(init, g, dtype)
        else:
            weight = as_weight("W", W, (n, n), dtype)
            self._check_dale("W", weight)
            self._check_structure(weight, mask, density, autapses)
            weight = weight if self.sign is None else weight.abs()
        self.weight = nn.Parameter(weight)

    def _register_optional(self, name: str, value: Tensor | None, dtype: torch.dtype) -> None:
        self.register_buffer(name, None if value is None else value.to(dtype))

    def _check_structure(self, weight: Tensor, mask: Any, density: Any, autapses: bool) -> None:
        """A given W must be zero where a given mask is 0 and, without autapses, on its diagonal."""
        if density is None and self.mask is not None:
            outside = (weight != 0) & (self.mask == 0)
        else:  # a random mask sparsifies W: only the no-autapse diagonal is asked of it
            outside = torch.diag(weight.diagonal() != 0) & (not autapses)
        if outside.any():
            given = " or ".join(k for k, on in (("the mask", mask is not None), ("autapses=False", not autapses)) if on)
            raise ValueError(f"W is nonzero where {given} allows no synapse, at {entries(outside)}; zero those "
                             "entries (e.g. W * mask) or leave W=None")

    def _check_dale(self, name: str, value: Tensor | None) -> None:
        if value is not None and self.sign is not None and (value * self.sign < 0).any():
            raise ValueError(f"{name} breaks Dale's law at {entries(value * self.sign < 0)}: columns of excitatory "
                             f"units must be >= 0 and of inhibitory units <= 0; fix the signs")

    @staticmethod
    def _make_mask(n: int, mask: Any, density: Any, autapses: bool) -> Tensor | None:
        if mask is not None and density is not None:
            raise ValueError("give either mask or density, not both")
        if density is not None:
            density = as_real("density", density, gt=0, le=1)
            mask = (torch.rand(n, n) < density) if density < 1 else None
        if mask is not None:
            mask = as_weight("mask", mask, (n, n), torch.float64, allow_bool=True)
            if not ((mask == 0) | (mask == 1)).all():
                raise ValueError("mask must hold only 0 and 1 (or booleans)")
        if not autapses:
            mask = (torch.ones(n, n, dtype=torch.float64) if mask is None else mask).fill_diagonal_(0)
        return mask

    @staticmethod
    def _check_sign(sign: Any, n: int) -> Tensor | None:
        if sign is None:
            return None
        sign = as_tensor("sign", sign).to(torch.float64)
        if tuple(sign.shape) != (n,) or not ((sign == 1) | (sign == -1)).all():
            raise ValueError(f"sign must be an ({n},) tensor of +1 (excitatory) and -1 (inhibitory)")
        return sign

    def _initial(self, init: str | Initializer, g: float, dtype: torch.dtype) -> Tensor:
        n, density = self.n, 1.0 if self.mask is None else max(float(self.mask.mean()), 1.0 / self.n)
        if init == "balanced":
            if self.sign is None:
                raise ValueError('init="balanced" needs Dale\'s-law signs (use EIRateRNN or pass sign)')
            return self._balanced(g).to(dtype)
        if init == "identity" and self.mask is not None and (self.mask.diagonal() == 0).any():
            cut = (self.mask.diagonal() == 0).nonzero().flatten().tolist()
            raise ValueError(f'init="identity" needs the diagonal synapses, but the mask removes those of units '
                             f"{cut[:5]}{' ...' if len(cut) > 5 else ''} (autapses=False, mask or density): W would be "
                             f"{'0' if len(cut) == n else 'partly 0'}; choose another init or allow autapses")
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
