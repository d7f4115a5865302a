"""Regularization terms usable in any loss (primer Sec. 5: sparsity, selective training, rate penalties).

Each returns a scalar tensor, differentiable in its arguments::

    loss = task_loss + l1_sparsity(model.W, 1e-4) + l2_rates(traj["r"], 1e-3)
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from .models.connectivity import Connectivity
from .validation import as_real


def _beta(beta: float) -> float:
    return as_real("beta", beta, ge=0)


def _is_weight(name: str) -> bool:
    """A connection-weight name: ``W...`` (``W_in``, ``W_out``) or ``weight...`` (``recurrent.weight``, torch.nn)."""
    last = name.replace("__", ".").rsplit(".", 1)[-1]  # "__": an Ensemble's stacked names
    return last.startswith(("W", "weight"))


def _tensors(weights: Tensor | Iterable[Tensor] | nn.Module) -> list[Tensor]:
    """A tensor, an iterable of tensors, or a module (its trainable connection-weight matrices; of a
    :class:`~neurodyn.models.connectivity.Connectivity`, the trained part ``M ⊙ S(W~)`` of W, so that
    masked-out entries, which no synapse carries, are not counted)."""
    if isinstance(weights, Tensor):
        return [weights]
    if isinstance(weights, nn.Module):
        trained = (weights.trained_parts() if hasattr(weights, "trained_parts") else  # an Ensemble's, stacked
                   {id(m.weight): m.trainable_part for m in weights.modules() if isinstance(m, Connectivity)})
        found = [trained.get(id(p), p)
                 for name, p in weights.named_parameters() if p.requires_grad and p.dim() >= 2 and _is_weight(name)]
    else:
        found = list(weights)
    if not found or not all(isinstance(w, Tensor) for w in found):
        raise TypeError("weights must be a tensor, a non-empty iterable of tensors, or a module with weight matrices")
    return found


def l2_weights(weights: Tensor | Iterable[Tensor] | nn.Module, beta: float = 1.0) -> Tensor:
    """``beta sum_ij W_ij^2`` over every given weight tensor.

    A module contributes its trainable weight matrices: parameters named ``W...`` or
    ``weight...`` (``W~``, ``W_in``, ``W_out``), not time constants, biases or plasticity
    rates such as HebbianRNN's ``eta``.
    """
    beta = _beta(beta)
    return beta * sum(w.pow(2).sum() for w in _tensors(weights))


def l1_sparsity(weights: Tensor | Iterable[Tensor] | nn.Module, beta: float = 1.0) -> Tensor:
    """Sparsity penalty ``beta sum_ij |W_ij|`` (primer Sec. 5.1)."""
    beta = _beta(beta)
    return beta * sum(w.abs().sum() for w in _tensors(weights))


def selective_training(W: Tensor, W_fix: Tensor, M: Tensor, beta: float = 1.0) -> Tensor:  # noqa: N803
    """Soft selective training ``beta sum_ij M_ij (W_ij - W_fix,ij)^2`` (primer Eq. 44; Kirkpatrick et al. 2017).

    ``M`` says how strongly each connection sticks to its reference ``W_fix``.
    """
    beta = _beta(beta)
    for name, value in (("W", W), ("W_fix", W_fix), ("M", M)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    if W_fix.shape != W.shape or M.shape != W.shape:
        raise ValueError(f"W, W_fix and M must have the same shape; got {tuple(W.shape)}, "
                         f"{tuple(W_fix.shape)}, {tuple(M.shape)}")
    return beta * (M * (W - W_fix).pow(2)).sum()


def l2_rates(rates: Tensor, beta: float = 1.0) -> Tensor:
    """Rate penalty ``beta mean(r^2)`` over trials, time and units (Song, Yang & Wang 2016)."""
    beta = _beta(beta)
    if not isinstance(rates, Tensor):
        raise TypeError(f"rates must be a torch.Tensor, e.g. traj['r']; got {type(rates).__name__}")
    if rates.numel() == 0:
        raise ValueError("rates is empty")
    return beta * rates.pow(2).mean()


__all__ = ["l1_sparsity", "l2_rates", "l2_weights", "selective_training"]
