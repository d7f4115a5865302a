"""Selectivity of single units for two trial conditions (d′), and sorting units and weights by it.

As in the primer's Fig. 7 (after Song, Yang & Wang 2016, PLoS Comput. Biol. 12:e1004792): units are
sorted by their preference for choice 1 versus choice 2, and the recurrent matrix is permuted on both
axes with them, which makes the choice-specific excitatory clusters visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ._activity import condition_labels, rounding_only, source_activity, window_mask, with_time_axis


def _checked(value: Any, name: str) -> Tensor:
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            value = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"{name} must be a numeric (trials, N) or (trials, T, N) array; {err}") from None
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{name} must be a (trials, N) or (trials, T, N) tensor or array; "
                                f"got {type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise ArgumentTypeError(f"{name} must hold real numbers; got dtype {value.dtype}")
    if value.dim() not in (2, 3):
        raise ValueError(f"{name} must be (trials, N) or (trials, T, N); got shape {tuple(value.shape)}")
    if value.shape[0] < 2:
        raise ValueError(f"{name} has {value.shape[0]} trial(s); d′ needs at least 2 trials per condition "
                         "(to estimate a variance)")
    if value.shape[-1] == 0:
        raise ValueError(f"{name} has no units (N=0)")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; remove those trials or units first")
    return value.detach()


def _window_average(activity: Tensor, t: Tensor | None, window: Sequence[float] | None, name: str) -> Tensor:
    """``(trials, N)``: a ``(trials, T, N)`` activity averaged over the window (all of t when None)."""
    if activity.dim() == 2:
        if window is not None:
            raise ValueError(f"{name} is (trials, N) with no time axis; drop window or give (trials, T, N)")
        return activity
    if window is None:
        return activity.mean(1)
    if t is None:
        raise ValueError("window needs the time grid: pass t=(T,) times of the samples")
    t = torch.as_tensor(t).detach().cpu().double()
    if t.dim() != 1 or t.shape[0] != activity.shape[1]:
        raise ValueError(f"t must be 1-D with T={activity.shape[1]} times to match {name}; got {tuple(t.shape)}")
    return activity[:, window_mask(window, t).to(activity.device)].mean(1)


def dprime(
    activity_a: Any,
    activity_b: Any,
    *,
    t: Tensor | None = None,
    window: Sequence[float] | None = None,
) -> Tensor:
    r"""Per-unit selectivity ``d′ = (mu_a - mu_b) / sqrt((sigma_a^2 + sigma_b^2) / 2)``.

    ``mu`` and ``sigma^2`` are each unit's trial mean and unbiased (``ddof=1``) trial variance
    in conditions a and b (the d′ of signal detection theory with the two variances averaged,
    Green & Swets 1966; used for stimulus/choice selectivity in Song, Yang & Wang 2016).
    Positive d′: the unit prefers condition a. Zero pooled variance: d′ = 0 when the two means
    are equal (e.g. a silent unit), and ±inf when they differ (perfectly separated); spreads and
    differences within 1e-12 of the means' size are float rounding and count as zero.

    Args:
        activity_a, activity_b: ``(trials, N)`` or ``(trials, T, N)`` activity of the same N units
            (trial counts may differ; each needs at least 2 trials).
        t, window: with a time axis, the activity is averaged over the grid times in
            ``window=(t0, t1)`` of ``t (T,)`` (over all times when ``window`` is None).

    Returns:
        ``(N,)`` d′, computed in float64, in the inputs' floating dtype (float64 for integer input).
    """
    a, b = _checked(activity_a, "activity_a"), _checked(activity_b, "activity_b")
    if a.dim() != b.dim() or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"activity_a {tuple(a.shape)} and activity_b {tuple(b.shape)} must have the same "
                         "(T,) N after the trial axis: the same units on the same time grid")
    dtype = torch.promote_types(a.dtype, b.dtype) if torch.is_floating_point(a) else torch.float64
    a = _window_average(a.double(), t, window, "activity_a")
    b = _window_average(b.to(device=a.device, dtype=torch.float64), t, window, "activity_b")
    mean_a, mean_b = a.mean(0), b.mean(0)
    scale = mean_a.abs() + mean_b.abs()  # differences and spreads below its rounding count as zero
    diff = mean_a - mean_b
    diff = torch.where(rounding_only(diff.abs(), scale), 0.0, diff)
    pooled = ((a.var(0) + b.var(0)) / 2).sqrt()
    flat = rounding_only(pooled, scale)
    separated = torch.where(diff == 0, 0.0, torch.sign(diff) * math.inf)
    d = torch.where(flat, separated, diff / torch.where(flat, 1.0, pooled))
    return d.to(dtype)


def dprime_by_condition(
    source: Any,
    conditions: Any,
    condition_a: Any,
    condition_b: Any,
    *,
    window: Sequence[float] | None = None,
    var: str | None = None,
    t: Any = None,
) -> Tensor:
    """Per-unit :func:`dprime` between the trials labelled ``condition_a`` and ``condition_b``.

    Args:
        source: a :class:`~neurodyn.trajectory.Trajectory` (``var``: a state variable, default the
            first, or "outputs"), a :class:`~neurodyn.data.Recording` (``var``: "rates", the default,
            or "counts") or a ``(trials, N)`` / ``(trials, T, N)`` array sampled on ``t``
            (default ``0, 1, ..., T-1``), as in :func:`~neurodyn.analysis.similarity.condition_responses`.
        conditions: one label per trial ``(trials,)``; for a Recording also the name of a column
            of its ``trials`` table.
        condition_a, condition_b: the two labels compared (d′ > 0: the unit prefers a).
        window: ``(t0, t1)``: average over the grid times inside it (default: the whole trial).

    Returns:
        ``(N,)`` float64 d′.
    """
    source = with_time_axis(source, window, t)
    activity, grid = source_activity(source, var, t)
    labels = condition_labels(source, conditions, activity.shape[0])
    if condition_a == condition_b:
        raise ValueError(f"condition_a and condition_b must differ; both are {condition_a!r}")
    select = []
    for name, value in (("condition_a", condition_a), ("condition_b", condition_b)):
        mask = labels == value
        if int(mask.sum()) < 2:
            raise ValueError(f"{name}={value!r} labels {int(mask.sum())} trial(s); d′ needs at least 2 per "
                             f"condition (the labels present are {np.unique(labels).tolist()})")
        select.append(torch.as_tensor(np.flatnonzero(mask), device=activity.device))
    return dprime(activity[select[0]], activity[select[1]], t=grid, window=window)


@dataclass
class SelectivityOrder:
    """Units sorted by selectivity: ``order (N,)`` (unit indices, most condition-a-selective first),
    ``selectivity (N,)`` in that order, and ``W[order][:, order]`` when a matrix was given."""

    order: Tensor
    selectivity: Tensor
    W: Tensor | None = None


def sort_by_selectivity(selectivity: Any, W: Any = None, *, groups: Any = None) -> SelectivityOrder:
    """Order the units by decreasing selectivity and permute ``W`` on both axes, as in the primer's Fig. 7.

    ``W_sorted[i, j] = W[order[i], order[j]]`` (``W[order][:, order]``), so units preferring
    condition a (choice 1, d′ > 0) come first and those preferring b last (Song, Yang & Wang 2016).
    Ties keep the original unit order. With ``groups`` (one label per unit, e.g. the Dale sign of
    an E/I network), units are ordered by group first (groups in order of first appearance), then
    by selectivity within each group.
    """
    if isinstance(selectivity, np.ndarray):
        selectivity = torch.as_tensor(selectivity)
    if not isinstance(selectivity, Tensor):
        raise ArgumentTypeError(f"selectivity must be an (N,) tensor or array; got {type(selectivity).__name__}")
    if selectivity.dim() != 1 or selectivity.shape[0] == 0:
        raise ValueError(f"selectivity must be a non-empty (N,) vector; got shape {tuple(selectivity.shape)}")
    if torch.isnan(selectivity).any():
        raise ValueError("selectivity contains NaN; compute it from finite activity")
    n = selectivity.shape[0]
    selectivity = selectivity.detach()
    order = torch.sort(selectivity, descending=True, stable=True).indices
    if groups is not None:
        labels = np.asarray(groups.detach().cpu().numpy() if isinstance(groups, Tensor) else groups)
        if labels.shape != (n,):
            raise ValueError(f"groups must hold one label per unit (N={n}); got shape {labels.shape}")
        _, first, rank = np.unique(labels, return_index=True, return_inverse=True)
        group_rank = torch.as_tensor(np.argsort(np.argsort(first))[rank.reshape(-1)], device=order.device)
        order = order[torch.sort(group_rank[order], stable=True).indices]
    sorted_w = None
    if W is not None:
        W = torch.as_tensor(W) if isinstance(W, np.ndarray) else W
        if not isinstance(W, Tensor):
            raise ArgumentTypeError(f"W must be an (N, N) tensor or array; got {type(W).__name__}")
        if tuple(W.shape) != (n, n):
            raise ValueError(f"W must be (N, N) = ({n}, {n}) to match selectivity; got shape {tuple(W.shape)}")
        index = order.to(W.device)
        sorted_w = W.detach()[index][:, index]
    return SelectivityOrder(order=order, selectivity=selectivity[order], W=sorted_w)
