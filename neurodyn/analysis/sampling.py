"""Starting states for fixed-point searches, drawn from simulated trajectories.

The workflow of the primer's Fig. 6 (Sussillo & Barak 2013): simulate the
network on the task, sample states visited along the trajectories, perturb
them with noise, and start the fixed-point search from there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..trajectory import Trajectory
from ..validation import as_int, as_real


def sample_states(traj: Trajectory | Tensor, n: int, noise: float = 0.0, *,
                  generator: torch.Generator | None = None) -> Tensor:
    """``n`` flat states ``(n, D)`` drawn uniformly from all (trial, time) samples of ``traj``.

    ``traj`` is a :class:`Trajectory` or a ``(B, T, D)`` / ``(N, D)`` tensor;
    ``noise`` is the standard deviation of Gaussian noise added to each state.
    Reproducible with ``generator``.
    """
    if isinstance(traj, Trajectory):
        flat = traj.flat().detach()
        flat = flat.reshape(-1, flat.shape[-1])
    elif isinstance(traj, Tensor):
        if traj.dim() not in (2, 3):
            raise ValueError(f"traj must be a Trajectory or a (B, T, D) or (N, D) tensor; got {tuple(traj.shape)}")
        flat = traj.detach().reshape(-1, traj.shape[-1])
    else:
        raise ArgumentTypeError(f"traj must be a Trajectory or a tensor; got {type(traj).__name__}")
    n, noise = as_int("n", n, 1), as_real("noise", noise, ge=0)
    if flat.shape[0] == 0:
        raise ValueError(f"traj holds no states to sample from (shape {tuple(flat.shape)}); simulate some first")
    if not torch.isfinite(flat).all():
        raise ValueError("traj contains NaN or Inf states; sample from a finite trajectory (or drop those trials)")
    index = torch.randint(flat.shape[0], (n,), generator=generator, device="cpu").to(flat.device)
    states = flat[index]
    if noise > 0:
        eps = torch.randn(states.shape, generator=generator, dtype=states.dtype, device="cpu").to(states.device)
        states = states + noise * eps
    return states
