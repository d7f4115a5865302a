r"""Preferred-input optimization: the input that most excites a unit or a population (primer Eq. 31).

Gradient ascent on the input, ``x <- x + eta da/dx`` (Eq. 31; Erhan, Bengio, Courville & Vincent
2009, "Visualizing higher-layer features of a deep network"), where the activity ``a(x)`` is read
from ``neurodyn.simulate(model, t, x)``. Unbounded, a growing input keeps raising ``a``, so the
problem is made well posed by a norm bound (projected gradient ascent) and/or an L2 penalty.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentTypeError, DivergenceError
from ..selection import unit_indices
from ..simulate import simulate
from ._activity import window_mask
from ._checks import check_model

NORMS = ("l2", "linf")


@dataclass
class PreferredInput:
    """Result of :func:`preferred_input`.

    ``x``: the input, ``(n_in,)`` constant or ``(T, n_in)`` sampled on ``t``; ``activity``: ``a(x)``
    at that input; ``history (k,)``: the objective ``J = a - l2/2 |x|^2`` at each iterate (the last
    entry is at ``x``); ``converged``: ``J`` and ``x`` stopped changing (see ``tol``);
    ``steps``: gradient steps taken.
    """

    x: Tensor
    activity: float
    history: Tensor
    converged: bool
    steps: int


class _Activity:
    """``a(x) = mean_{t_k in window} v . z(t_k; x)``, built and validated once."""

    def __init__(self, model: Any, unit_or_population: Any, t: Tensor | None, *, target: str | None,
                 window: Sequence[float] | None, state0: Any, solver: str, dt: float | None,
                 gradient: str) -> None:
        self.model = check_model(model)
        if model.n_in < 1:
            raise ValueError(f"{type(model).__name__} has no input (n_in=0); there is no input to optimize")
        if t is None:
            t = torch.linspace(0.0, 10 * model.timescale, 101, dtype=model.dtype)
        if not isinstance(t, Tensor) or t.dim() != 1 or t.shape[0] < 2:
            raise ValueError("t must be a 1-D tensor of at least 2 output times (e.g. torch.linspace(0, 1, 51))")
        if gradient not in ("backprop", "checkpoint"):
            raise ValueError(f'gradient must be "backprop" or "checkpoint"; got {gradient!r} (the adjoint '
                             "returns no gradient with respect to the input x)")
        self.t = t.detach().to(device=model.device, dtype=model.dtype)
        self.target = target or next(iter(model.state_vars))
        if self.target == "output":
            size = model.n_out
            if size < 1:
                raise ValueError('target="output" but the model has no readout (n_out=0); use a state variable')
        elif self.target in model.state_vars:
            size = model.state_vars[self.target]
        else:
            raise ValueError(f'target must be one of {list(model.state_vars)} or "output"; got {target!r}')
        self.weights = _readout_weights(unit_or_population, size, model)
        if window is None:
            self.mask = torch.zeros(self.t.shape[0], dtype=torch.bool, device=model.device)
            self.mask[-1] = True
        else:
            self.mask = window_mask(window, self.t)
        self.last = int(torch.nonzero(self.mask)[-1])  # x[k] (held on [t_k, t_k+1)) acts only if k < last
        if self.last == 0:
            raise ValueError(f"window={window!r} holds only t[0], where the state is state0 and no input has "
                             "acted yet; end the window later")
        self.options = {"state0": state0, "solver": solver, "dt": dt, "gradient": gradient}

    def __call__(self, x: Tensor) -> Tensor:
        signal = x.unsqueeze(0)  # (1, n_in) constant or (1, T, n_in) zero-order hold on t
        traj = simulate(self.model, self.t, signal, **self.options)
        z = traj.outputs if self.target == "output" else traj[self.target]
        z = z[0].reshape(self.t.shape[0], -1)[self.mask]
        return (z @ self.weights).mean()


def _readout_weights(spec: Any, size: int, model: Any) -> Tensor:
    """The weights ``v (size,)``: one-hot for a unit, ``1/k`` on k distinct units, or a given vector."""
    name = "unit_or_population"
    if isinstance(spec, (np.ndarray, list, tuple)):
        spec = torch.as_tensor(np.asarray(spec))
    if not (isinstance(spec, Tensor) and torch.is_floating_point(spec)):
        units = unit_indices(spec, size, name, "the target")
        if units.numel() == 0:
            raise ValueError(f"{name} selects no unit; give a unit index, unit indices or a weight vector")
        weights = torch.zeros(size, dtype=torch.float64)
        weights[units] = 1.0 / units.numel()
    else:
        weights = spec.detach().reshape(-1)
        if spec.dim() > 1 or weights.shape[0] != size:
            raise ValueError(f"a weight vector {name} must have one weight per unit (N={size}); "
                             f"got shape {tuple(spec.shape)}")
        if not torch.isfinite(weights).all() or not bool((weights != 0).any()):
            raise ValueError(f"the weight vector {name} must be finite and not all zero")
    return weights.to(device=model.device, dtype=model.dtype)


def input_activity(
    model: Any,
    unit_or_population: Any,
    t: Tensor,
    x: Tensor,
    *,
    target: str | None = None,
    window: Sequence[float] | None = None,
    state0: Any = None,
    solver: str = "euler",
    dt: float | None = None,
    gradient: str = "backprop",
) -> Tensor:
    r"""The activity ``a(x) = mean_{t_k in window} v . z(t_k; x)`` that :func:`preferred_input` maximizes.

    ``z`` is the state variable ``target`` (default the first, e.g. "r") or the readout
    (``target="output"``) of ``simulate(model, t, x)``; ``x`` is a constant ``(n_in,)`` input or a
    ``(T, n_in)`` sequence on ``t`` (zero-order hold). Differentiable with respect to ``x``. See
    :func:`preferred_input` for ``unit_or_population`` and ``window``.
    """
    activity = _Activity(model, unit_or_population, t, target=target, window=window, state0=state0,
                         solver=solver, dt=dt, gradient=gradient)
    if not isinstance(x, Tensor) or x.dim() not in (1, 2) or x.shape[-1] != model.n_in:
        raise ValueError(f"x must be a constant (n_in={model.n_in},) or a (T, {model.n_in}) tensor")
    return activity(x)


def _project(x: Tensor, bound: float | None, norm: str) -> None:
    """In place: each input sample ``x(t)`` onto ``{|x(t)| <= bound}`` (Euclidean projection)."""
    if bound is None:
        return
    if norm == "linf":
        x.clamp_(-bound, bound)
    else:
        length = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        x.mul_(torch.clamp(bound / length.clamp_min(torch.finfo(x.dtype).tiny), max=1.0))


def preferred_input(
    model: Any,
    unit_or_population: Any,
    t: Tensor | None = None,
    *,
    target: str | None = None,
    window: Sequence[float] | None = None,
    time_varying: bool = False,
    bound: float | None = 1.0,
    norm: str = "l2",
    l2: float = 0.0,
    lr: float = 0.1,
    steps: int = 1000,
    tol: float = 1e-10,
    x0: Tensor | None = None,
    generator: torch.Generator | None = None,
    state0: Any = None,
    solver: str = "euler",
    dt: float | None = None,
) -> PreferredInput:
    r"""The input that maximizes a unit's or a population's activity, by projected gradient ascent.

    Maximizes ``J(x) = a(x) - l2/2 |x|^2`` with ``a(x) = mean_{t_k in window} v . z(t_k; x)``, the
    activity of :func:`input_activity`, by plain gradient ascent as in the primer's Eq. 31
    (Erhan et al. 2009), each step followed by the Euclidean projection onto the norm ball::

        x <- P_bound(x + lr dJ/dx),   P_bound(x) = x min(1, bound / |x|)   (norm="l2")

    (``norm="linf"`` clips each component to ``[-bound, bound]``). Plain steps (``torch.optim.SGD``),
    not Adam: Adam's per-coordinate scaling does not commute with the projection, and its projected
    iterates do not settle on the constrained optimum. For a linear unit ``a = w . x`` the result is
    ``bound w / |w|`` (or ``w / l2`` with only the penalty).

    Args:
        unit_or_population: a unit index (int); distinct unit indices (ints, or a boolean mask), whose
            mean activity is maximized; or a float weight vector ``v (N,)`` over the target's units.
        t: the output time grid ``(T,)`` of the simulated trial; default 101 times over
            ``10 model.timescale``, so the default window (the last time) reads the steady-state response.
        target: the state variable read (default the model's first, e.g. "r"), or "output".
        window: ``(t0, t1)``: average the activity over the grid times in it; default: the last time.
        time_varying: False: one constant input ``(n_in,)``; True: a sequence ``(T, n_in)`` on ``t``
            (zero-order hold). The bound then holds for each sample ``x(t_k)``; samples at or after the
            window's last time cannot affect the activity (causality) and are 0.
        bound: radius of the norm ball (None: no projection; then ``l2 > 0`` is required).
        l2: weight of the L2 penalty ``l2/2 |x|^2`` (the soft alternative to ``bound``).
        lr, steps, tol: step size ``eta``, the most gradient steps, and the early stop: converged
            when ``|J_k - J_(k-1)| <= tol max(|J_k|, |J_(k-1)|)`` and the last step moved ``x`` by at
            most ``sqrt(tol) |x|`` (near a maximum J changes quadratically, x linearly). ``tol=0`` runs
            all ``steps``.
        x0: the start (projected onto the ball); default a random ``N(0, 1)`` draw (from
            ``generator``) scaled to a norm of about ``0.1 bound`` per sample.
        state0, solver, dt: passed to :func:`neurodyn.simulate` (gradients by backprop through it).

    Raises:
        DivergenceError: the simulation, the objective or its gradient became NaN or infinite.
    """
    activity = _Activity(model, unit_or_population, t, target=target, window=window, state0=state0,
                         solver=solver, dt=dt, gradient="backprop")
    _check_options(bound, norm, l2, lr, steps, tol)
    shape = (activity.t.shape[0], model.n_in) if time_varying else (model.n_in,)
    if x0 is None:
        scale = 0.1 * (bound if bound is not None else 1.0) / math.sqrt(model.n_in)
        x0 = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    elif not isinstance(x0, Tensor):
        raise ArgumentTypeError(f"x0 must be a tensor of shape {shape}; got {type(x0).__name__}")
    if tuple(x0.shape) != shape:
        raise ValueError(f"x0 must have shape {shape} (time_varying={time_varying}); got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN or Inf; give a finite start")
    x = x0.detach().to(device=model.device, dtype=model.dtype).clone()
    if time_varying:
        x[activity.last:] = 0.0  # never reaches the window: no gradient, keep it at 0
    _project(x, bound, norm)
    x.requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=lr, maximize=True)
    history: list[float] = []
    converged, moved = False, math.inf
    for step in range(steps + 1):
        optimizer.zero_grad()
        try:
            a = activity(x)
        except DivergenceError as err:
            raise DivergenceError(f"preferred_input diverged at step {step}: {err}; lower lr or bound") from err
        objective = a - 0.5 * l2 * x.square().sum() if l2 else a
        value = float(objective.detach())
        if not math.isfinite(value):
            raise DivergenceError(f"the objective became {value} at step {step}; lower lr or bound, or check the model")
        history.append(value)
        if step and abs(value - history[-2]) <= tol * max(abs(value), abs(history[-2])) and moved <= math.sqrt(tol):
            converged = True
            break
        if step == steps:
            break
        objective.backward()
        if not torch.isfinite(x.grad).all():
            raise DivergenceError(f"the gradient da/dx became NaN or infinite at step {step}; lower lr or bound")
        if step == 0 and not l2 and not x.grad.any():
            warnings.warn("preferred_input: the activity does not change with the input at x0 (da/dx = 0 exactly): "
                          "the input may not reach these units (check W_in and the window), or x0 sits where the "
                          "activation is flat; returning x0, not converged", stacklevel=2)
            break
        with torch.no_grad():
            previous = x.clone()
            optimizer.step()
            _project(x, bound, norm)
            moved = float(torch.linalg.vector_norm(x - previous) / torch.linalg.vector_norm(x).clamp_min(1e-300))
    return PreferredInput(x=x.detach(), activity=float(a.detach()), history=torch.tensor(history, dtype=torch.float64),
                          converged=converged, steps=step)


def _check_options(bound: float | None, norm: str, l2: float, lr: float, steps: int, tol: float) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}; got {norm!r}")
    if bound is not None and not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a positive number (or None with l2 > 0); got {bound!r}")
    if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a number >= 0; got {l2!r}")
    if bound is None and l2 == 0:
        raise ValueError("with bound=None and l2=0 the activity can grow without limit; give bound > 0 or l2 > 0")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be >= 0 (0: run all steps); got {tol!r}")
