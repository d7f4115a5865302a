"""External input x(t): constant, zero-order hold on a grid, or a callable.

``x`` is turned into the model's *drive* once, before integration: for a grid
the time-local ``model.input_drive`` is applied to the whole ``(B, T, n_in)``
sequence in one batched call, so the time loop only indexes into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .models.base import Model


@dataclass(frozen=True)
class InputSignal:
    """A validated input: ``kind`` is "constant", "grid" or "callable"."""

    kind: str
    value: Tensor | Callable[[Tensor], Tensor]
    batch_size: int | None
    grid: Tensor  # the output times t the grid samples refer to

    @property
    def jump_times(self) -> Tensor:
        """Times where a zero-order-hold input switches: the grid times whose sample differs from the one
        before in some trial or channel (a dense grid with a stimulus window has a few; an adaptive solver
        stops at each, so marking every grid time made dopri5 take 46x the evaluations of a constant input)."""
        if self.kind == "grid":
            x = self.value.detach()
            return self.grid[1:][(x[:, 1:] != x[:, :-1]).flatten(2).any(-1).any(0).to(self.grid.device)]
        return self.grid[:0]


def _check_tensor(x: Tensor, model: Model) -> None:
    if x.device != model.device or (x.dtype != model.dtype and torch.is_floating_point(x)):
        raise ValueError(
            f"x is on {x.device} with dtype {x.dtype} but the model's parameters are on "
            f"{model.device} with dtype {model.dtype}; pass x.to(device={str(model.device)!r}, dtype={model.dtype})"
        )
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf; clean the input before simulating")


def as_input(x: Tensor | Callable | None, t: Tensor, model: Model, batch_size: int | None) -> InputSignal:
    """Validate ``x`` against ``t`` and ``model.n_in`` and wrap it."""
    n_in = model.n_in
    if x is None:
        zeros = torch.zeros(batch_size or 1, n_in, device=model.device, dtype=model.dtype)
        return InputSignal("constant", zeros, batch_size, t)
    if callable(x) and not isinstance(x, Tensor):
        sample = x(t[0])
        if not isinstance(sample, Tensor) or sample.dim() != 2 or sample.shape[-1] != n_in:
            got = tuple(sample.shape) if isinstance(sample, Tensor) else type(sample).__name__
            raise ValueError(f"callable x(t) must return a (B, n_in={n_in}) tensor; got {got}")
        _check_tensor(sample, model)
        return InputSignal("callable", x, sample.shape[0], t)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor, a callable x(t) or None; got {type(x).__name__}")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() not in (2, 3):
        raise ValueError(f"x must be (B, T, n_in) or (B, n_in); got shape {tuple(x.shape)}")
    if x.shape[-1] != n_in:
        raise ValueError(
            f"x has {x.shape[-1]} input channels in its last dimension but the model has n_in={n_in}; "
            f"reshape x to (..., {n_in})"
        )
    if x.dim() == 3 and x.shape[1] != t.shape[0]:
        raise ValueError(
            f"x has T={x.shape[1]} time samples but t has {t.shape[0]}; sample x on t (shape (B, {t.shape[0]}, {n_in}))"
        )
    _check_tensor(x, model)
    return InputSignal("grid" if x.dim() == 3 else "constant", x, x.shape[0], t)


class Drive:
    """The model's drive over time, computed from an :class:`InputSignal`.

    With ``precompute=True`` the drive of a grid or constant input is computed
    once for all times; otherwise ``model.input_drive`` runs at each evaluation
    (the adjoint and checkpointed segments need this, so that gradients reach
    the input weights as ordinary model parameters, step by step).
    """

    def __init__(self, model: Model, signal: InputSignal, precompute: bool = True) -> None:
        self.signal = signal
        tabulated = precompute and signal.kind != "callable"
        # the input as the drive's own tensor (a view, when not tabulated): gradients the integration passes to
        # it are the drive's, so hooks the user puts on x run once, on x's whole gradient
        value = signal.value.view_as(signal.value) if isinstance(signal.value, Tensor) else signal.value
        self.table = model.input_drive(signal.value) if tabulated else value
        self.per_eval = (lambda d: d) if tabulated else model.input_drive
        self.dtype, self.device, self.n_in = model.dtype, model.device, model.n_in
        # one time-major copy, made once: a run of steps is then a slice of it (or one gather), and its T
        # columns one unbind, not T selects (each select's backward is a full-size zero tensor, O(T^2) work);
        # contiguous (B, n) slices keep the per-step matmul's bias add fast
        self.by_time = self.table.transpose(0, 1).contiguous() if signal.kind == "grid" else None
        self.columns = self.by_time.unbind(0) if signal.kind == "grid" else ()
        self._last: tuple[Any, Tensor | None] = (None, None)  # (interval, grad mode) and its drive

    def tensors(self) -> tuple[Tensor, ...]:
        """The drive's own tensor that every read goes through (none for a callable input)."""
        if self.signal.kind == "grid":
            return (self.by_time,)
        return (self.table,) if isinstance(self.table, Tensor) else ()

    def on_interval(self, k: int, t: float | Tensor, cache: bool = True) -> Tensor:
        """Drive during the k-th interval ``[t_k, t_{k+1})`` of the output grid.

        The same drive serves every step and stage in the interval: it is computed once per interval (and
        grad mode) unless ``cache`` is False (inside torch's checkpoint, whose recomputation must repeat
        every operation of the forward pass, a drive cached by another segment must not be read).
        """
        if self.signal.kind != "callable":
            value = self.columns[k] if self.signal.kind == "grid" else self.table
            if not cache:
                return self.per_eval(value)
            key = (k if self.signal.kind == "grid" else 0, torch.is_grad_enabled())
            if self._last[0] != key:
                self._last = (key, self.per_eval(value))
            return self._last[1]
        value = self.table(torch.as_tensor(t, dtype=self.dtype, device=self.device))
        if not (isinstance(value, Tensor) and value.shape == (self.signal.batch_size, self.n_in)):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"callable x(t) returned {got} at t={float(t):g}, but ({self.signal.batch_size}, "
                             f"{self.n_in}) at t[0]; return one shape at every time")
        return self.per_eval(value)

    def on_steps(self, intervals: list[int], times: list[float]) -> Tensor:
        """Drive ``(S, B, n)`` during S steps, step j at ``times[j]`` in interval ``intervals[j]``.

        A grid input goes through ``model.input_drive`` once for all S steps when
        not precomputed, as a batch-first view of the steps' time-major samples (a
        model that keeps that layout, such as an Ensemble, returns the drive with
        no copy), a constant one once in all; a callable one is evaluated at each time.
        """
        if self.signal.kind == "grid":
            first = intervals[0]
            if intervals == list(range(first, first + len(intervals))):  # one step per interval: a slice
                samples = self.by_time[first:first + len(intervals)]
            else:
                samples = self.by_time.index_select(0, torch.tensor(intervals, device=self.by_time.device))
            return self.per_eval(samples.transpose(0, 1)).transpose(0, 1).contiguous()
        if self.signal.kind == "constant":
            drive = self.per_eval(self.table)
            return drive.expand(len(intervals), *drive.shape)
        return torch.stack([self.on_interval(k, t) for k, t in zip(intervals, times)])

    def __call__(self, t: Tensor, cache: bool = True) -> Tensor:
        """Drive at time ``t``: right-continuous zero-order hold, the last interval's value beyond the grid."""
        if self.signal.kind == "grid":
            grid = self.signal.grid
            k = (torch.searchsorted(grid, t.reshape(1).to(grid.dtype), right=True) - 1).clamp(0, grid.shape[0] - 2)
            return self.per_eval(self.by_time.index_select(0, k).squeeze(0))  # read as the steps read it
        return self.on_interval(0, t, cache)
