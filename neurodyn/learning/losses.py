"""Training losses on ``(B, T, n)`` sequences, each a masked mean over trials and time.

``mask (B, T)`` weights the time steps (1 = counted, 0 = ignored); ``None`` counts all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ..data.recording import check_counts

LossFn = Callable[..., Tensor]


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values (B, T)`` weighted by ``mask (B, T)``."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp_min(1e-12)


def _check_pair(outputs: Tensor, target: Tensor, name: str) -> None:
    if outputs.shape != target.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and {name} {tuple(target.shape)} must have the same "
                         "(B, T, n) shape")
    if not torch.isfinite(target).all():
        raise ValueError(f"{name} contains NaN or Inf; clean the data (or mask those samples) before fitting")


def mse_loss(outputs: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error ``mean_{b,k} mask_bk sum_i (y_bki - target_bki)^2 / n``."""
    _check_pair(outputs, target, "target")
    return _masked_mean(((outputs - target) ** 2).mean(-1), mask)


def cross_entropy_loss(outputs: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy of the softmax of ``outputs`` (logits) against target class
    probabilities (one-hot task targets): ``-sum_i target_i log softmax(y)_i``."""
    _check_pair(outputs, target, "target")
    if (target < 0).any():
        raise ValueError("cross_entropy targets must be class probabilities >= 0 (one-hot task targets)")
    return _masked_mean(-(target * F.log_softmax(outputs, dim=-1)).sum(-1), mask)


def poisson_rate(outputs: Tensor) -> Tensor:
    """The firing rate a signal stands for in the Poisson model: ``lambda = softplus(y)`` (spikes/s)."""
    return F.softplus(outputs)


def poisson_signal(rate: Tensor) -> Tensor:
    """The signal whose Poisson rate is ``rate > 0``: the inverse of :func:`poisson_rate`, ``log(expm1(rate))``."""
    return rate + torch.log(-torch.expm1(-rate))


def poisson_loss(outputs: Tensor, counts: Tensor, bin_width: float | Tensor, mask: Tensor | None = None) -> Tensor:
    """Poisson negative log-likelihood of spike ``counts`` per neuron and bin.

    The expected count is ``mu = softplus(y) * bin_width`` and
    ``-log p(k) = mu - k log(mu) + log(k!)``, averaged over neurons, bins and trials.
    """
    _check_pair(outputs, counts.to(outputs.dtype) if not torch.is_floating_point(counts) else counts, "counts")
    check_counts(counts)
    k = counts.to(outputs.dtype)
    mu = poisson_rate(outputs) * bin_width
    nll = mu - k * torch.log(mu.clamp_min(torch.finfo(outputs.dtype).tiny)) + torch.lgamma(k + 1)
    return _masked_mean(nll.mean(-1), mask)


LOSSES: dict[str, LossFn] = {"mse": mse_loss, "poisson": poisson_loss, "cross_entropy": cross_entropy_loss}
