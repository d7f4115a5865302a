"""The Model base class: a continuous-time vector field with named state."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn

from ..state import state_type
from ..validation import as_tensor


class Model(nn.Module):
    """Base of every neurodyn model: ``d state/dt = F(t, state, drive)``.

    Subclasses set ``state_vars`` (ordered ``{name: size}``), ``n_in`` and
    ``n_out`` and implement :meth:`vector_field`. ``input_drive`` maps the
    external input ``x`` to the model's drive; it must be time-local so that
    ``simulate`` can apply it to a whole ``(B, T, n_in)`` sequence at once.
    Models know nothing about solvers.
    """

    state_vars: dict[str, int]
    n_in: int = 0
    n_out: int = 0

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of each state variable (default ``(size,)``)."""
        return {k: (v,) for k, v in self.state_vars.items()}

    @cached_property
    def State(self) -> type:  # noqa: N802 - a class, named like one
        """The named-tuple type of this model's state."""
        return state_type(tuple(self.state_vars))

    @property
    def dim(self) -> int:
        """Flat state dimension D."""
        return sum(self.state_vars.values())

    def _reference_tensor(self) -> Tensor:
        """The first floating-point parameter or buffer (an integer index buffer says nothing of the precision)."""
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return t
        return torch.empty(0, dtype=torch.get_default_dtype())

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (CPU for a parameterless model)."""
        return self._reference_tensor().device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model's parameters."""
        return self._reference_tensor().dtype

    def input_drive(self, x: Tensor) -> Tensor:
        """Time-local map of external input ``x (..., n_in)`` to the drive."""
        return x

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        """Time derivative of ``state`` (same structure as ``state``)."""
        raise NotImplementedError

    def state_jacobian(self, t: Tensor | float, state: Any, drive: Tensor) -> Tensor | None:
        """Optional closed form of ``dF/dy (B, D, D)`` over the flat state.

        ``None`` (the default) lets the analysis code differentiate
        :meth:`vector_field` with ``torch.func``; a model whose Jacobian is
        cheap in closed form returns it here (tested against autodiff).
        """
        return None

    def euler_scan(self) -> Callable[[Tensor, Tensor, list[float], Tensor | None], Tensor] | None:
        """Optional fused form of the model's Euler discretization over a flat state.

        ``scan(y0 (B, D), drive (S, B, ...), h (S step sizes), noise (S, B, D) or None)``
        returns the states after each step ``(S, B, D)``, equal to S Euler steps
        ``y <- y + h_k F(y, d_k) + noise_k`` of :meth:`vector_field`. ``None`` (the
        default) makes ``simulate`` step :meth:`vector_field` one call at a time.
        """
        return None

    def switch_times(self, t: Tensor) -> Tensor:
        """Times where :meth:`vector_field` switches abruptly in time, for a trial sampled at ``t``.

        ``simulate`` calls this once per run and makes adaptive solvers step
        exactly onto the returned times (as onto a zero-order-hold input's
        switches); a model whose timing cannot fit the trial raises ValueError
        here. Default: none.
        """
        return t[:0]

    def output(self, state: Any) -> Tensor | None:
        """Readout ``(B, n_out)``; ``None`` for a model without a readout."""
        return None

    def initial_state(self, batch_size: int = 1) -> Any:
        """The default initial state: zeros of shape ``(batch_size, *shape)``."""
        return self.State(
            *(
                torch.zeros(batch_size, *s, device=self.device, dtype=self.dtype)
                for s in self.state_shapes.values()
            )
        )

    @property
    def timescale(self) -> float:
        """Smallest time constant of the model."""
        raise NotImplementedError(f"{type(self).__name__} defines no timescale: add a property `timescale` returning "
                                  "its smallest time constant (simulate needs it for dt checks, noise and anchors)")

    def check_parameters(self) -> None:
        """Raise ValueError when a parameter is outside the range its equations need (a trained one can step
        out of it); ``simulate`` calls this once per run. Default: no constraint beyond finiteness."""

    def state_tau(self) -> Tensor:
        """Time constant of each flat state dimension ``(D,)``.

        It sets the default noise amplitude (:meth:`state_noise`) and the rate at
        which a clamped unit relaxes (``neurodyn.perturb``); defaults to
        :attr:`timescale` everywhere. A model whose batch rows come
        in G equal blocks with their own time constants (an Ensemble of networks)
        returns ``(G, D)``, one row per block.
        """
        return torch.full((self.dim,), float(self.timescale), device=self.device, dtype=self.dtype)

    def state_noise(self) -> Tensor:
        """Euler–Maruyama noise amplitude of each flat state dimension per unit ``noise_std``.

        ``simulate`` adds ``noise_std * state_noise() * sqrt(dt) * N(0, 1)`` each step. Default
        ``sqrt(2 / state_tau())``; a model returns 0 for variables that take no noise (e.g. the
        bounded resource fractions of :class:`~neurodyn.models.STPRateRNN`). Shape as :meth:`state_tau`.
        """
        return torch.sqrt(2.0 / self.state_tau())


def positive_tensor(
    name: str, value: Any, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Validate a time constant (scalar or per-unit) and return it as a tensor of ``dtype``."""
    dtype = dtype or torch.get_default_dtype()
    tensor = as_tensor(name, value).to(dtype)
    if not torch.isfinite(tensor).all() or (tensor <= 0).any():
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    if shape is not None and tensor.dim() > 0 and tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must be a scalar or have shape {shape}; got {tuple(tensor.shape)}")
    return tensor
