"""Ground-truth recordings simulated from any model, with Poisson spikes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..learning.losses import poisson_rate
from ..models.base import Model
from ..simulate import simulate
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
    differ by their input ``x (B, T, n_in)``, by the noise (``noise_std``) and
    by their initial state: ``state0``, or the model's initial state plus
    ``init_std * N(0, 1)``. Reproducible with ``generator`` (CPU).
    """
    batch = n_trials if n_trials is not None else (x.shape[0] if isinstance(x, Tensor) and x.dim() == 3 else 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"n_trials must be a positive int; got {n_trials!r}")
    if isinstance(x, Tensor) and x.dim() == 3 and x.shape[0] not in (1, batch):
        raise ValueError(f"x has {x.shape[0]} trials but n_trials={batch}")
    if not (isinstance(init_std, (int, float)) and init_std >= 0):
        raise ValueError(f"init_std must be >= 0; got {init_std!r}")
    if state0 is None:
        start = flatten(model.initial_state(batch))
        jitter = torch.randn(start.shape, generator=generator, dtype=start.dtype).to(start.device)
        state0 = start + init_std * jitter
    noise = None
    if noise_std > 0:
        noise = torch.Generator(device=model.device).manual_seed(
            int(torch.randint(2**62, (1,), generator=generator)))
    with torch.no_grad():
        traj = simulate(model, t, x, state0, solver=solver, dt=dt, noise_std=noise_std, generator=noise)
    signal = (traj.outputs if model.n_out else traj.states[0]).detach().cpu()
    stimulus = None
    if isinstance(x, Tensor) and x.dim() == 3:
        stimulus = x.detach().cpu().expand(batch, -1, -1).clone()
    t = traj.t.detach().cpu()
    if not spikes:
        return Recording(t, rates=signal, x=stimulus)
    width = Recording(t, rates=signal).bin_width  # raises unless the grid is uniform
    rates = poisson_rate(signal)
    counts = torch.poisson((rates * width).double(), generator=generator).to(rates.dtype)
    return Recording(t, rates=rates, counts=counts, x=stimulus)
