"""Training losses on ``(B, T, n)`` sequences, each a masked mean over trials and time.

``mask`` weights the samples (1 = counted, 0 = ignored; finite and >= 0): ``(B, T)`` or
``(B, T, 1)`` weights the time steps, and for the per-output losses (mse, poisson) the
outputs' own shape ``(B, T, n)`` weights each output; ``None`` counts all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ..data.recording import check_counts
from ..validation import as_real

LossFn = Callable[..., Tensor]
LOG_RATE_SWITCH = -20.0  # below it, log(softplus(y)) = y - exp(y)/2 to rounding, and softplus(y) may underflow


def _masked_mean(values: Tensor, mask: Tensor | None, per_output: bool = True) -> Tensor:
    """Mean of ``values (B, T, n)`` weighted by ``mask`` (shapes in the module docstring; ``per_output=False``
    when ``values`` are ``(B, T, 1)`` per time step and a ``(B, T, n)`` mask has no meaning)."""
    if mask is None:
        return values.mean()
    mask = torch.as_tensor(mask, device=values.device)
    steps, full = values.shape[:2], values.shape if per_output else None
    shapes = "(B, T), (B, T, 1)" + (f" or the outputs' shape {tuple(full)}" if per_output else "")
    if mask.shape == steps:
        mask = mask.unsqueeze(-1)
    if mask.shape not in (steps + (1,), full):
        raise ValueError(f"mask must have shape {shapes} with (B, T)={tuple(steps)}; got {tuple(mask.shape)}")
    mask = mask.to(values.dtype)
    if not bool((torch.isfinite(mask) & (mask >= 0)).all()):  # one device sync
        raise ValueError("mask must hold finite weights >= 0 (1 = counted, 0 = ignored); found a negative, NaN "
                         "or Inf entry")
    weights = mask.expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def _check_pair(outputs: Tensor, target: Tensor, name: str) -> None:
    if outputs.shape != target.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and {name} {tuple(target.shape)} must have the same "
                         "(B, T, n) shape")
    if not torch.isfinite(target).all():
        raise ValueError(f"{name} contains NaN or Inf; clean the data (or mask those samples) before fitting")


def mse_loss(outputs: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error ``sum_{b,k,i} mask_bki (y_bki - target_bki)^2 / sum_{b,k,i} mask_bki``
    (a ``(B, T)`` mask is the same for every output i)."""
    _check_pair(outputs, target, "target")
    return _masked_mean((outputs - target) ** 2, mask)


def cross_entropy_loss(outputs: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy of the softmax of ``outputs`` (logits) against target class
    probabilities (one-hot task targets): ``-sum_i target_i log softmax(y)_i``; ``mask`` weights time steps."""
    _check_pair(outputs, target, "target")
    if (target < 0).any():
        raise ValueError("cross_entropy targets must be class probabilities >= 0 (one-hot task targets)")
    return _masked_mean(-(target * F.log_softmax(outputs, dim=-1)).sum(-1, keepdim=True), mask, per_output=False)


def poisson_rate(outputs: Tensor) -> Tensor:
    """The firing rate a signal stands for in the Poisson model: ``lambda = softplus(y)`` (spikes/s)."""
    return F.softplus(outputs)


def poisson_signal(rate: Tensor) -> Tensor:
    """The signal whose Poisson rate is ``rate > 0``: the inverse of :func:`poisson_rate`, ``log(expm1(rate))``."""
    return rate + torch.log(-torch.expm1(-rate))


def _log_poisson_rate(outputs: Tensor) -> Tensor:
    """``log(softplus(y))`` without underflow: ``y - exp(y)/2`` for very negative ``y`` (gradient -> 1, not 0)."""
    low, high = outputs.clamp_max(LOG_RATE_SWITCH), outputs.clamp_min(LOG_RATE_SWITCH)  # no inf in either branch
    return torch.where(outputs < LOG_RATE_SWITCH, low - torch.exp(low) / 2, torch.log(F.softplus(high)))


def poisson_loss(outputs: Tensor, counts: Tensor, bin_width: float | Tensor, mask: Tensor | None = None) -> Tensor:
    """Poisson negative log-likelihood of spike ``counts`` per neuron and bin.

    The expected count is ``mu = softplus(y) * bin_width`` (``bin_width`` in seconds, > 0) and
    ``-log p(k) = mu - k log(mu) + log(k!)``, averaged over neurons, bins and trials.
    """
    width = as_real("bin_width", bin_width, gt=0, expected="a finite number of seconds > 0 (the counts' bin width)")
    _check_pair(outputs, counts.to(outputs.dtype) if not torch.is_floating_point(counts) else counts, "counts")
    check_counts(counts)
    k = counts.to(outputs.dtype)
    nll = poisson_rate(outputs) * width - k * (_log_poisson_rate(outputs) + math.log(width)) + torch.lgamma(k + 1)
    return _masked_mean(nll, mask)


LOSSES: dict[str, LossFn] = {"mse": mse_loss, "poisson": poisson_loss, "cross_entropy": cross_entropy_loss}
