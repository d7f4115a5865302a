"""Continuous-time rate RNN (Song, Yang & Wang 2016; primer Eq. 26)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..validation import as_int
from .activations import Activation, get_activation, slope_of
from .base import Model, positive_tensor
from .connectivity import Connectivity, Initializer, as_weight, infer_dtype
from .linear import linear, recurrent
from .rate_scan import rate_scan

ARRAY_KEYWORDS = ("W", "W_in", "b", "W_out", "b_out", "W_fix", "tau")  # the arguments that set the precision


def subclass_dtype(kwargs: dict[str, Any], **given: Any) -> torch.dtype:
    """The precision :class:`RateRNN` will pick, for a subclass that builds tensors before calling it.

    Pops ``kwargs["dtype"]`` if set; else the first floating tensor or numpy array among
    the array keywords (``given`` overrides ``kwargs``), else torch's default.
    """
    values = {**kwargs, **given}
    return kwargs.pop("dtype", None) or infer_dtype(*(values.get(k) for k in ARRAY_KEYWORDS))


class RateRNN(Model):
    r"""Rate network ``tau dr/dt = -r + f(W r + W_in x + b)``, readout ``y = W_out r + b_out``.

    Primer Eq. 26; its Euler discretization with step ``dt`` is Eq. 27,
    ``r <- r + dt/tau (-r + f(W r + W_in x + b))``. ``tau`` is a scalar or a
    per-unit ``(n,)`` tensor (trainable with ``learn_tau=True``). Without given
    weights, ``W ~ g N(0, 1)/sqrt(n)`` (Sompolinsky, Crisanti & Sommers 1988),
    ``W_in ~ N(0, 1)/sqrt(n_in)``, ``W_out ~ N(0, 1)/sqrt(n)``.

    ``W`` is built by the shared :class:`Connectivity`, ``W = M ⊙ S(W~) + W_fix``:
    ``init``, ``mask``/``density``, ``autapses``, ``W_fix`` and Dale's-law
    ``sign`` (+1/-1 per presynaptic unit) have the meaning given there; ``W=``
    sets the initial ``W~``. Arrays may be tensors, numpy arrays or lists; ``dtype``
    (default: that of the first floating tensor or numpy array given, else
    torch's default) builds the model in that precision; prefer it to ``.double()``
    afterwards, which keeps ``tau`` rounded to float32 (0.1 -> 0.10000000149).
    """

    def __init__(
        self,
        n: int,
        n_in: int = 0,
        n_out: int = 0,
        *,
        tau: float | Tensor = 0.1,
        activation: str | Activation = "tanh",
        g: float = 1.5,
        W: Tensor | None = None,
        W_in: Tensor | None = None,
        b: Tensor | None = None,
        W_out: Tensor | None = None,
        b_out: Tensor | None = None,
        bias: bool = True,
        init: str | Initializer = "gaussian",
        mask: Tensor | None = None,
        density: float | None = None,
        autapses: bool = True,
        W_fix: Tensor | None = None,
        sign: Tensor | None = None,
        learn_tau: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        n, n_in, n_out = as_int("n", n, 1), as_int("n_in", n_in, 0), as_int("n_out", n_out, 0)
        self.n, self.n_in, self.n_out = n, n_in, n_out
        self.state_vars = {"r": n}
        self.activation = get_activation(activation)
        units = getattr(self.activation, "units", None)
        if units is not None and units != n:
            raise ValueError(f"the activation is built for {units} units (e.g. its pool matrix) but n={n}")
        dtype = dtype or infer_dtype(W, W_in, b, W_out, b_out, W_fix, tau)  # the order of ARRAY_KEYWORDS
        tau = positive_tensor("tau", tau, (n,), dtype)
        if learn_tau:
            self.tau = nn.Parameter(tau)
        else:
            self.register_buffer("tau", tau)
        if isinstance(self.activation, nn.Module):
            self.activation.to(dtype)
        self.recurrent = Connectivity(n, g=g, W=W, init=init, mask=mask, density=density, autapses=autapses,
                                      W_fix=W_fix, sign=sign, dtype=dtype)
        self.W_in = nn.Parameter(as_weight("W_in", W_in, (n, n_in), dtype,
                                           lambda s: torch.randn(s) / math.sqrt(max(n_in, 1))))
        b = as_weight("b", b, (n,), dtype, torch.zeros)
        self.b = nn.Parameter(b) if bias else None
        if not bias:
            self.register_buffer("b_fixed", b)
        self.W_out = nn.Parameter(as_weight("W_out", W_out, (n_out, n), dtype, lambda s: torch.randn(s) / math.sqrt(n)))
        self.b_out = nn.Parameter(as_weight("b_out", b_out, (n_out,), dtype, torch.zeros))

    @property
    def W(self) -> Tensor:
        """The effective recurrent matrix ``(n, n)``."""
        return self._modules["recurrent"].forward()  # no module-call hooks: this runs every time step

    @property
    def bias(self) -> Tensor:
        """The recurrent bias ``b`` (fixed at its initial value when ``bias=False``)."""
        return self.b if self.b is not None else self.b_fixed

    def input_drive(self, x: Tensor) -> Tensor:
        return linear(x, self.W_in, self.bias)

    def rate_derivative(self, r: Tensor, current: Tensor) -> Tensor:
        """``dr/dt = (-r + f(current)) / tau`` for a total input current ``(B, n)``."""
        return (self.activation(current) - r) / self.tau

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r = state[0]
        return self.State(self.rate_derivative(r, recurrent(r, self.W, drive)))

    def state_jacobian(self, t: Any, state: Any, drive: Tensor) -> Tensor | None:
        """``J = (diag f'(W r + drive) W - I) / tau``, O(n^2) per state instead of autodiff's O(n^3).

        Built column-major (``J.mT`` is contiguous), the layout LAPACK factors
        without a copy: a fixed-point search's LU at n = 256 takes 20 % less.
        None for a user activation or a subclass with its own dynamics.
        """
        slope = self._closed_form_slope()
        if slope is None:
            return None
        r, W, tau = state[0], self.W, self.tau.expand(self.n)
        JT = W.mT.contiguous() * (slope(F.linear(r, W, drive)) / tau).unsqueeze(-2)
        JT.diagonal(dim1=-2, dim2=-1).sub_(1 / tau)
        return JT.mT

    def euler_scan(self) -> Callable[[Tensor, Tensor, list[float], Tensor | None], Tensor] | None:
        """Eq. 27 as one fused operation, ``scan(r0, drive, h, noise) -> r_1..r_S (S, B, n)``
        (see :mod:`neurodyn.models.rate_scan`); None for a user activation or a subclass with its own dynamics."""
        slope = self._closed_form_slope()
        if slope is None:
            return None
        return lambda r0, drive, h, noise: rate_scan(r0, drive, h, noise, W=self.W, tau=self.tau,
                                                     f=self.activation, slope=slope)

    def _closed_form_slope(self) -> Callable[[Tensor], Tensor] | None:
        """``f'`` when this model's dynamics are RateRNN's own with a closed-form activation slope, else None."""
        own = type(self).vector_field is RateRNN.vector_field and type(self).rate_derivative is RateRNN.rate_derivative
        return slope_of(self.activation) if own else None

    def output(self, state: Any) -> Tensor | None:
        return F.linear(state[0], self.W_out, self.b_out) if self.n_out else None

    @property
    def timescale(self) -> float:
        return float(self.tau.detach().min())

    def state_tau(self) -> Tensor:
        return self.tau.expand(self.n)
