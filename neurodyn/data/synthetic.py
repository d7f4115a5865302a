"""Ground-truth recordings simulated from any model, with Poisson spikes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..learning.losses import poisson_rate
from ..models.base import Model
from ..simulate import batch_size_of, initial_flat, simulate
from ..state import flatten
from .recording import Recording


def synthetic_recording(
    model: Model,
    t: Tensor,
    x: Tensor | None = None,
    *,
    n_trials: int | None = None,
    state0: Any = None,
    init_std: float = 0.5,
    spikes: bool = True,
    noise_std: float = 0.0,
    solver: str = "euler",
    dt: float | None = None,
    generator: torch.Generator | None = None,
) -> Recording:
    """Simulate ``model`` into a :class:`Recording` whose ground truth is known.

    The recorded neurons are the model's readout, or its units (first state
    variable) when ``n_out == 0``. With ``spikes=False`` ``rates`` is that
    signal ``y``; with ``spikes=True`` the neurons fire at ``rates = softplus(y)``
    spikes/s (the link :func:`~neurodyn.learning.losses.poisson_loss` assumes)
    and ``counts ~ Poisson(rates * dt_bin)`` in the bins of the uniform grid
    ``t``, so ``rates`` are the firing rates the counts were drawn from. Trials
    differ by their input ``x`` (as :func:`~neurodyn.simulate` takes it: ``(B, T, n_in)``
    on ``t``, a constant ``(B, n_in)`` or a callable ``x(t) -> (B, n_in)``), by the noise
    (``noise_std``) and by their initial state: ``state0``, or the model's initial state
    plus ``init_std * N(0, 1)``. ``n_trials`` defaults to the trials of ``x`` or ``state0``.
    The recording's ``x (B, T, n_in)`` is the input the network received, sampled at
    each ``t_k`` (zeros when ``x`` is None and ``n_in > 0``; a callable ``x`` is called again at
    each ``t_k``, so it should be deterministic). Reproducible with ``generator`` (CPU).
    """
    given = {"x": _trials_of(x, t), "state0": batch_size_of(state0)}
    given = {name: size for name, size in given.items() if size not in (None, 1)}
    if n_trials is None and len(set(given.values())) > 1:
        raise ValueError(f"x has {given['x']} trials but state0 has {given['state0']}; give both the same number "
                         "of trials (or one of them 1)")
    batch = n_trials if n_trials is not None else max(given.values(), default=1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"n_trials must be a positive int; got {n_trials!r}")
    for name, size in given.items():
        if size != batch:
            raise ValueError(f"{name} has {size} trials but n_trials={n_trials}; give n_trials={size}, or {name} "
                             f"with {n_trials} trials (or 1)")
    if not (isinstance(init_std, (int, float)) and init_std >= 0):
        raise ValueError(f"init_std must be >= 0; got {init_std!r}")
    if state0 is None:
        start = flatten(model.initial_state(batch))
        jitter = torch.randn(start.shape, generator=generator, dtype=start.dtype).to(start.device)
        state0 = start + init_std * jitter
    else:
        state0 = initial_flat(model, state0, batch)  # validated, a single state repeated for every trial
    noise = None
    if noise_std > 0:
        noise = torch.Generator(device=model.device).manual_seed(
            int(torch.randint(2**62, (1,), generator=generator)))
    with torch.no_grad():
        traj = simulate(model, t, x, state0, solver=solver, dt=dt, noise_std=noise_std, generator=noise)
        stimulus = _on_grid(x, traj.t, model, batch)
    signal = (traj.outputs if model.n_out else traj.states[0]).detach().cpu()
    t = traj.t.detach().cpu()
    if not spikes:
        return Recording(t, rates=signal, x=stimulus)
    width = Recording(t, rates=signal).bin_width  # raises unless the grid is uniform
    rates = poisson_rate(signal)
    counts = torch.poisson((rates * width).double(), generator=generator).to(rates.dtype)
    return Recording(t, rates=rates, counts=counts, x=stimulus)


def _trials_of(x: Any, t: Any) -> int | None:
    """The trials of the input ``x``: its batch size (None when it has none, or is malformed: simulate says how)."""
    if callable(x) and not isinstance(x, Tensor) and isinstance(t, Tensor) and len(t):
        x = x(t[0])
    return x.shape[0] if isinstance(x, Tensor) and x.dim() in (2, 3) else None


def _on_grid(x: Any, t: Tensor, model: Model, batch: int) -> Tensor | None:
    """The input the network received, sampled at the times ``t``: ``(batch, T, n_in)`` on the CPU."""
    if x is None:
        if not model.n_in:
            return None
        x = torch.zeros(1, model.n_in, dtype=model.dtype)
    if callable(x) and not isinstance(x, Tensor):
        x = torch.stack([x(time) for time in t], 1)
    elif x.dim() < 3:  # a constant (B, n_in) or (n_in,)
        x = x.reshape(-1, x.shape[-1])[:, None]
    return x.detach().cpu().expand(batch, len(t), -1).clone()
