"""FORCE learning: recursive least squares on the fed-back readout (Sussillo & Abbott 2009)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data.recording import uniform_step
from ..errors import ArgumentTypeError, DivergenceError
from ..models.force import ForceRNN
from ..models.linear import recurrent
from ..validation import as_int, as_real

CHECK_EVERY = 500  # RLS updates between finiteness checks of P (each check synchronizes a GPU)


@dataclass
class ForceResult:
    """The outcome of :func:`train_force`.

    ``final_state``: the network state at ``t[-1]`` (pass it as ``state0`` to
    ``simulate`` to continue autonomously); ``error (B, T, n_out)``: the output
    error ``y - target`` before each update; ``outputs (B, T, n_out)``; ``W_out
    (B, n_out, n)`` and ``P (B, n, n)`` (the inverse correlation matrices) of
    each network. For a single network (a ``(T, n_out)`` target) the batch
    dimension is dropped and the model's ``W_out`` holds the trained readout.
    """

    final_state: Any
    error: Tensor
    outputs: Tensor
    W_out: Tensor
    P: Tensor

    def network(self, model: ForceRNN, index: int = 0) -> ForceRNN:
        """A copy of ``model`` with the readout of trained network ``index``."""
        trained = copy.deepcopy(model)
        W_out = self.W_out if self.W_out.dim() == 2 else self.W_out[index]
        with torch.no_grad():
            trained.W_out.copy_(W_out)
        return trained


def _check_inputs(model: Any, target: Any, t: Any, alpha: Any, every: Any,
                  init_std: Any) -> tuple[Tensor, Tensor, float]:
    if not isinstance(model, ForceRNN):
        raise ArgumentTypeError(f"model must be a neurodyn.models.ForceRNN; got {type(model).__name__}")
    if not isinstance(target, Tensor) or not isinstance(t, Tensor):
        raise ArgumentTypeError("target and t must be tensors")
    if target.dim() not in (2, 3) or target.shape[-1] != model.n_out or target.shape[-2] != t.shape[0]:
        raise ValueError(f"target must be (T={t.shape[0]}, n_out={model.n_out}) or (B, T, n_out) sampled on t; "
                         f"got shape {tuple(target.shape)}")
    if not torch.isfinite(target).all():
        raise ValueError("target contains NaN or Inf")
    if t.dim() != 1 or t.shape[0] < 2:
        raise ValueError(f"t must be a 1-D grid of >= 2 times; got shape {tuple(t.shape)}")
    dt = uniform_step(t) if torch.is_floating_point(t) else None
    if dt is None:
        raise ValueError("t must be a uniform, increasing grid: FORCE integrates with the fixed step t[1] - t[0]")
    alpha = as_real("alpha", alpha, gt=0, expected="a number > 0 (P(0) = I / alpha, the learning rate)")
    as_real("init_std", init_std, ge=0, expected="a number >= 0 (the spread of the random initial state)")
    as_int("every", every, 1, expected="a positive int (steps between RLS updates)")
    return target, t, dt, alpha


def _checked_tensor(name: str, value: Any, shape: str) -> Tensor:
    """``value`` as a finite tensor (``shape`` is for the messages)."""
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{name} must be a tensor {shape}; got {type(value).__name__} (FORCE takes inputs "
                                "sampled on t, not callables)")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; give finite values")
    return value


def train_force(
    model: ForceRNN,
    target: Tensor,
    t: Tensor,
    *,
    alpha: float = 1.0,
    every: int = 1,
    x: Tensor | None = None,
    state0: Any = None,
    init_std: float = 0.5,
    generator: torch.Generator | None = None,
) -> ForceResult:
    r"""Train the readout of a :class:`~neurodyn.models.ForceRNN` with FORCE (Sussillo & Abbott 2009).

    The network runs with its output fed back, Euler steps of ``dt = t[1] - t[0]``::

        tau dr/dt = -r + f(W r + W_in x + w_fb y + b),   y = W_out r + b_out   (primer Eqs. 28-29)

    and every ``every`` steps recursive least squares moves ``W_out`` towards the
    target while keeping the error small from the start::

        k = P r,  c = 1 / (1 + r^T k),  P <- P - c k k^T,  W_out <- W_out - c e k^T

    with ``e = y - target`` measured before the update and ``P(0) = I / alpha``.
    ``target`` is ``(T, n_out)`` for one network or ``(B, T, n_out)`` for ``B``
    independent networks (same ``W``, own readouts, own initial states).
    Training starts from ``state0`` or from a random state ``init_std * N(0, 1)``
    (at ``r = 0`` RLS gets no signal). ``P`` is updated with ``sqrt(c) k`` so it
    stays exactly symmetric; a non-finite ``P`` raises :class:`~neurodyn.DivergenceError`.
    """
    target, t, dt, alpha = _check_inputs(model, target, t, alpha, every, init_std)
    single = target.dim() == 2
    device, dtype = model.device, model.dtype
    goal = (target[None] if single else target).to(device=device, dtype=dtype)
    batch, steps, n_out = goal.shape
    n = model.n
    if dt > model.timescale:
        raise ValueError(f"dt = t[1] - t[0] = {dt:g} is longer than the model's tau {model.timescale:g}; "
                         "FORCE needs dt << tau")
    with torch.no_grad():
        if state0 is None:
            r = init_std * torch.randn(batch, n, generator=generator, dtype=dtype).to(device)
        else:
            r = _checked_tensor("state0", state0[0] if isinstance(state0, (tuple, list)) else state0, f"({batch}, {n})")
            if r.shape != (batch, n):
                raise ValueError(f"state0 must be ({batch}, {n}); got {tuple(r.shape)}")
            r = r.to(device=device, dtype=dtype).clone()
        if x is None:
            drive = model.input_drive(torch.zeros(1, 1, model.n_in, device=device, dtype=dtype)).expand(steps, batch, n)
        else:
            x = _checked_tensor("x", x, f"(T={steps}, n_in={model.n_in}) or (B, T, n_in)").to(device=device,
                                                                                            dtype=dtype)
            x = x[None] if x.dim() == 2 else x
            if x.dim() != 3 or x.shape[0] not in (1, batch) or x.shape[-2:] != (steps, model.n_in):
                raise ValueError(f"x must be (T={steps}, n_in={model.n_in}) or (B, T, n_in) with B=1 or the "
                                 f"target's B={batch}; got {tuple(x.shape)}")
            drive = model.input_drive(x).expand(batch, steps, n).transpose(0, 1)
        W, fb_T = model.W.detach(), model.w_fb.T
        b_out = model.b_out.detach().expand(batch, n_out)[..., None]
        W_out = model.W_out.detach().expand(batch, n_out, n).clone()
        P = (torch.eye(n, device=device, dtype=dtype) / alpha).expand(batch, n, n).clone()
        goals = goal.transpose(0, 1)[..., None]  # (T, B, n_out, 1)
        outputs = torch.empty(steps, batch, n_out, 1, device=device, dtype=dtype)
        errors = torch.empty_like(outputs)
        # P r is computed as the row r^T P (P is symmetric) and the rank-1 updates as broadcast products:
        # on CPU a batched matrix-vector bmm(P, r) and baddbmm_ with a (B, n, 1) x (B, 1, n) product are
        # ~10x slower than these (and than one network at a time)
        for k in range(steps):
            row = r[:, None, :]
            z = torch.baddbmm(b_out, W_out, row.mT)
            outputs[k] = z
            e = z - goals[k]
            errors[k] = e
            if k % every == 0:
                Pr = torch.bmm(row, P)
                c = 1.0 / (1.0 + (Pr * row).sum(-1, keepdim=True))
                s = Pr * c.sqrt()
                P.addcmul_(s.mT, s, value=-1.0)
                W_out.addcmul_(e, Pr * c, value=-1.0)
                if (k // every) % CHECK_EVERY == 0 and not torch.isfinite(P.diagonal(dim1=1, dim2=2).sum()):
                    raise DivergenceError(f"the RLS matrix P became non-finite at step {k}; raise alpha or lower dt")
            if k + 1 < steps:
                current = recurrent(r, W, drive[k]).addmm_(z[..., 0], fb_T)
                r = r + dt * model.rate_derivative(r, current)
        if not (torch.isfinite(P).all() and torch.isfinite(W_out).all() and torch.isfinite(r).all()):
            raise DivergenceError("FORCE training diverged (P, W_out or the state became non-finite); "
                                  "raise alpha, lower dt or the gain g")
        if single:
            model.W_out.copy_(W_out[0])
    outputs, errors = outputs[..., 0].transpose(0, 1), errors[..., 0].transpose(0, 1)
    final = model.State(r)
    if single:
        return ForceResult(final, errors[0], outputs[0], W_out[0], P[0])
    return ForceResult(final, errors, outputs, W_out, P)
