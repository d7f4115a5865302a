"""Principal component analysis of states, shared by trajectories and fixed points.

Fit on trajectories (or fixed points), then project both into the same PC
space with :meth:`PCA.transform`, as in the primer's state-space figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..trajectory import Trajectory
from ..validation import as_int


def as_points(data: Any, name: str = "data") -> Tensor:
    """Flat states ``(..., D)`` from a Trajectory, FixedPoints or tensor."""
    if isinstance(data, Trajectory):
        return data.flat().detach()
    states = getattr(data, "states", None)
    if isinstance(states, Tensor):  # FixedPoints
        return states.detach()
    if isinstance(data, Tensor):
        if data.dim() < 1:
            raise ValueError(f"{name} must have a last dimension D; got a scalar")
        return data.detach()
    raise ArgumentTypeError(f"{name} must be a Trajectory, FixedPoints or a (..., D) tensor; got {type(data).__name__}")


@dataclass
class PCA:
    """Principal axes: ``z = (y - mean) @ components.T``.

    ``components (k, D)`` has orthonormal rows, each signed so that its
    largest-magnitude loading is positive; ``explained_variance (k,)``
    (unbiased) and ``explained_variance_ratio (k,)`` of the total variance.
    """

    mean: Tensor
    components: Tensor
    explained_variance: Tensor
    explained_variance_ratio: Tensor

    def transform(self, data: Any) -> Tensor:
        """Project a Trajectory, FixedPoints or ``(..., D)`` tensor: ``(..., k)``."""
        y = as_points(data)
        if y.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"data has D={y.shape[-1]} but the PCA was fit on D={self.mean.shape[0]}")
        return (y.to(self.mean) - self.mean) @ self.components.T

    def inverse_transform(self, z: Tensor) -> Tensor:
        """Back to state space: ``mean + z @ components``."""
        return self.mean + z @ self.components


def pca(data: Any, n_components: int) -> PCA:
    """Fit a :class:`PCA` with ``n_components`` axes to the points of ``data`` (SVD of the centred points)."""
    y = as_points(data)
    y = y.reshape(-1, y.shape[-1])
    n_components = as_int("n_components", n_components, 1, min(y.shape),
                          expected=f"an int in [1, min(N, D)={min(y.shape)}]")
    if not torch.isfinite(y).all():
        raise ValueError("data contains NaN or Inf")
    mean = y.mean(0)
    _, s, vh = torch.linalg.svd(y - mean, full_matrices=False)
    comps = vh[:n_components]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, 1.0, signs)
    var = s.square() / max(y.shape[0] - 1, 1)
    total = var.sum()
    ratio = var[:n_components] / total if total > 0 else torch.zeros_like(var[:n_components])
    return PCA(mean=mean, components=comps, explained_variance=var[:n_components], explained_variance_ratio=ratio)
