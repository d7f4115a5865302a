"""Comparing representations: RDMs, RSA, CKA and cross-validated linear predictivity.

Two populations (two networks, or a network and a recording) respond to the same
``D`` task conditions; their responses are ``R1 (D, N1)`` and ``R2 (D, N2)``
(conditions x units), as in the primer's section 4 (Fig. 4A).
:func:`condition_responses` builds such a matrix from a Trajectory, a Recording
or a ``(B, T, N)`` array by averaging over a time window and over the trials of
each condition.

Every function takes tensors, NumPy arrays or :class:`ConditionResponses` and
computes in float64 on the input's device (inputs are detached). Matrices and
per-unit values come back as float64 tensors, single scores as Python floats.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..validation import as_int, as_real
from ._activity import ROUNDING, condition_labels, rounding_only, source_activity, window_mask, with_time_axis

_METRICS = ("correlation", "euclidean")


@dataclass
class ConditionResponses:
    """Condition-averaged responses: ``responses (D, N)`` float64, row ``d`` for ``conditions[d]``.

    ``conditions (D,)`` is a NumPy array of the distinct labels in sorted order,
    ``n_trials (D,)`` the number of trials averaged into each row.
    """

    responses: Tensor
    conditions: np.ndarray
    n_trials: Tensor


def condition_responses(source: Any, conditions: Any, window: tuple[float, float] | None = None,
                        var: str | None = None, t: Any = None) -> ConditionResponses:
    """Average activity over the window ``t0 <= t <= t1`` and over the trials of each condition.

    ``R[d, i] = mean_{b : c_b = c_d} mean_{k : t0 <= t_k <= t1} a[b, k, i]``

    ``source`` is a :class:`~neurodyn.trajectory.Trajectory` (``var`` names a
    state variable, default the first, or ``"outputs"``), a
    :class:`~neurodyn.data.Recording` (``var`` is ``"rates"``, the default, which
    uses :meth:`~neurodyn.data.Recording.firing_rates`, or ``"counts"``) or a
    ``(B, T, N)`` array sampled on ``t`` (default ``0, 1, ..., T-1``), or a
    ``(B, N)`` array of per-trial responses (no ``window`` then).
    ``conditions`` gives each trial's label, ``(B,)``; for a Recording it may
    also name a column of ``source.trials``. ``window=None`` averages the
    whole trial.
    """
    source = with_time_axis(source, window, t)
    activity, grid = source_activity(source, var, t)
    labels = condition_labels(source, conditions, activity.shape[0])
    if window is None:
        in_window = torch.ones_like(grid, dtype=torch.bool)
    else:
        in_window = window_mask(window, grid)
    values = activity[:, in_window.to(activity.device)].mean(1)
    if not torch.isfinite(values).all():
        raise ValueError("the activity contains NaN or Inf inside the window; simulate stably or clean the data")
    distinct, inverse = np.unique(labels, return_inverse=True)
    if len(distinct) < 2:
        raise ValueError(f"conditions has {len(distinct)} distinct value(s); comparing representations needs >= 2")
    inverse = torch.as_tensor(inverse.reshape(-1), device=values.device)
    counts = torch.bincount(inverse, minlength=len(distinct))
    sums = torch.zeros(len(distinct), values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, inverse, values)
    return ConditionResponses(responses=sums / counts.unsqueeze(1).to(values.dtype), conditions=distinct,
                              n_trials=counts)


def rdm(responses: Any, metric: str = "correlation") -> Tensor:
    """The ``(D, D)`` representational dissimilarity matrix over the rows of ``responses (D, N)``.

    ``metric="correlation"``: ``RDM[c, d] = 1 - r(R[c], R[d])``, with ``r`` the
    Pearson correlation across units (Kriegeskorte et al. 2008, Front. Syst.
    Neurosci. 2:4); ``metric="euclidean"``: ``RDM[c, d] = |R[c] - R[d]|``.
    Both match ``scipy.spatial.distance.pdist``; the diagonal is exactly 0.
    """
    r = _responses(responses, "responses")
    _check_metric(metric)
    if r.shape[0] < 2:
        raise ValueError(f"responses has {r.shape[0]} condition(s); an RDM needs >= 2 conditions (rows)")
    if metric == "euclidean":
        return torch.cdist(r, r, compute_mode="donot_use_mm_for_euclid_dist")
    z = r - r.mean(1, keepdim=True)
    norms = z.norm(dim=1)
    flat = torch.nonzero(rounding_only(norms, r.norm(dim=1))).flatten().tolist()
    if flat:
        raise ValueError(f"conditions {flat} have the same response in every unit, so their correlation distance is "
                         "undefined; use metric='euclidean' or drop them")
    z = z / norms.unsqueeze(1)
    dist = 1 - (z @ z.T).clamp(-1, 1)
    dist = (dist + dist.T) / 2
    return dist.fill_diagonal_(0)


def rsa(R1: Any, R2: Any, method: str = "spearman", metric: str = "correlation") -> float:  # noqa: N803
    """Representational similarity: the correlation of the off-diagonal upper triangles of two RDMs.

    ``rsa = corr({RDM1[c, d]}_{c<d}, {RDM2[c, d]}_{c<d})`` with ``corr`` Spearman's
    rank correlation (ties get average ranks, as ``scipy.stats.spearmanr``) or
    Pearson's; the RDMs use ``metric`` (see :func:`rdm`). Kriegeskorte, Mur &
    Bandettini 2008, Front. Syst. Neurosci. 2:4. Dissimilarities that differ by
    less than ``1e-12`` of the largest are ties: equal distances come out of
    floating point up to an ulp apart (``1 - r`` of two proportional patterns is
    0 or 1e-16), and ranking that noise would change the result.
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson'; got {method!r}")
    r1, r2 = _pair(R1, R2)
    if r1.shape[0] < 3:
        raise ValueError(f"R1 and R2 have {r1.shape[0]} conditions; rsa needs >= 3 (a correlation over >= 3 pairs)")
    rows, cols = torch.triu_indices(r1.shape[0], r1.shape[0], offset=1, device=r1.device)
    a, b = rdm(r1, metric)[rows, cols], rdm(r2, metric)[rows, cols]
    if method == "spearman":
        a, b = _rank(a), _rank(b)
    return float(_pearson(a, b, "the RDM entries"))


def cka(R1: Any, R2: Any, kernel: str = "linear", sigma: float = 1.0, debiased: bool = False) -> float:  # noqa: N803
    """Centered kernel alignment of two representations (Kornblith et al. 2019, ICML, Eqs. 3-4).

    ``CKA = <K_c, L_c>_F / (|K_c|_F |L_c|_F)`` with ``K_c = H K H``,
    ``H = I - 11^T / D`` and ``K, L`` the ``(D, D)`` kernel matrices of the rows of
    ``R1, R2``. ``kernel="linear"``: ``K = X X^T`` with ``X`` the column-centred
    ``R1`` (the same ``K_c``, without the rounding of a large baseline), so
    ``CKA = |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F)``. ``kernel="rbf"``:
    ``K[c, d] = exp(-|x_c - x_d|^2 / (2 sigma^2 m))`` with ``m`` the median
    squared distance (over the full matrix, as the paper's code), so ``sigma``
    is the bandwidth as a fraction of the median distance. The result lies in
    [0, 1] and is invariant to orthogonal transforms and isotropic scaling.

    With few conditions and many units the estimate is biased upward: two
    independent random populations with ``D = 10``, ``N = 1000`` score ~0.99.
    ``debiased=True`` uses the unbiased HSIC estimator (Song et al. 2012, JMLR
    13:1393) instead, as Kornblith et al. offer: ``K_c`` is the U-centred kernel,
    ``K_c[c, d] = K[c, d] - k_c - k_d + k`` off the diagonal and 0 on it, with
    ``k_c = sum_{e} K[c, e] / (D - 2)`` and ``k = sum_{c, e} K[c, e] / ((D - 1)(D - 2))``
    (``K`` with a zeroed diagonal); independent populations then score ~0, and
    the value may be slightly negative. It needs ``D >= 4``.
    """
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"kernel must be 'linear' or 'rbf'; got {kernel!r}")
    if kernel == "rbf":
        sigma = as_real("sigma", sigma, gt=0, expected="a positive float (a fraction of the median distance)")
    if not isinstance(debiased, bool):
        raise ArgumentTypeError(f"debiased must be True or False; got {debiased!r}")
    r1, r2 = _pair(R1, R2)
    if r1.shape[0] < 3:
        raise ValueError(f"R1 and R2 have {r1.shape[0]} conditions; cka needs >= 3 (with 2, the centred kernels "
                         "have rank 1 and any two representations score 1)")
    if debiased and r1.shape[0] < 4:
        raise ValueError(f"R1 and R2 have {r1.shape[0]} conditions; debiased cka needs >= 4 (the unbiased HSIC is "
                         "normalized by D (D - 3)); use debiased=False")
    centre = _u_centre if debiased else _centre
    k, l_ = (centre(_gram(_varying(r, name, "its CKA is undefined"), kernel, sigma, name))
             for name, r in (("R1", r1), ("R2", r2)))
    return float((k * l_).sum() / (k.norm() * l_.norm()))


def linear_predictivity(R1: Any, R2: Any, cv: int = 5, ridge: float | Sequence[float] = 1e-3,  # noqa: N803
                        seed: int | None = 0) -> Tensor:
    """Per-unit ``(N2,)`` correlation between ``R2`` and its cross-validated ridge prediction from ``R1``.

    The ``D`` conditions are split into ``cv`` folds. For each fold, on the
    training rows with centred ``X_c = R1 - mean``, ``Y_c = R2 - mean``
    (an unpenalized intercept), ``W = (X_c^T X_c + lam I)^{-1} X_c^T Y_c`` and the
    held-out rows are predicted as ``mean(R2) + (R1 - mean(R1)) W``; the result
    is the Pearson correlation, over all ``D`` conditions, of each unit's
    predictions and data (Yamins et al. 2014, PNAS 111:8619; primer Sec. 4).

    ``lam = ridge * tr(X_c^T X_c) / N1``: the penalty is relative to the mean
    eigenvalue of ``X_c^T X_c``, so the result does not depend on the scale of
    ``R1``. A sequence of ``ridge`` values picks one per fold by exact
    leave-one-out error on the training rows (the ridge hat-matrix formula
    ``e_i / (1 - h_ii)``). ``seed`` shuffles the conditions into folds
    (a ``torch.Generator`` seeded with it); ``None`` keeps them in order
    (contiguous folds, as ``numpy.array_split``).
    """
    r1, r2 = _pair(R1, R2)
    n = r1.shape[0]
    cv = as_int("cv", cv, 2, n, expected=f"an int in [2, D={n}] (number of folds over the conditions)")
    if n < 3:
        raise ValueError(f"R1 and R2 have {n} conditions; linear_predictivity needs >= 3 (a correlation per unit)")
    _varying(r1, "R1", "it predicts nothing")
    penalties = _penalties(ridge)
    if seed is None:
        order = torch.arange(n)
    else:
        seed = as_int("seed", seed, 0, expected="an int >= 0 or None")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    predicted = torch.empty_like(r2)
    for test in torch.tensor_split(order.to(r1.device), cv):
        train = torch.ones(n, dtype=torch.bool, device=r1.device)
        train[test] = False
        predicted[test] = _ridge_fit_predict(r1[train], r2[train], r1[test], penalties)
    return _columnwise_pearson(predicted, r2)


def _ridge_fit_predict(x: Tensor, y: Tensor, x_new: Tensor, penalties: Tensor) -> Tensor:
    """Ridge predictions at ``x_new`` (with an unpenalized intercept), penalty chosen by leave-one-out if several."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    lams = penalties.to(s) * s.square().sum() / x.shape[1]
    lam = lams[0]
    if len(lams) > 1:  # exact LOO: e_i / (1 - h_ii), with h = 1/n + diag(U diag(s^2 / (s^2 + lam)) U^T)
        shrink = s.square() / (s.square() + lams.unsqueeze(1))  # (L, k)
        fitted = torch.einsum("ik,lk,kn->lin", u, shrink, u.T @ yc)
        hat = 1 / x.shape[0] + torch.einsum("ik,lk->li", u.square(), shrink)
        loo = (yc - fitted) / (1 - hat).unsqueeze(2)
        lam = lams[loo.square().sum((1, 2)).argmin()]
    factors = torch.where(s > 0, s / (s.square() + lam), torch.zeros_like(s))
    return my + ((x_new - mx) @ vh.T) @ (factors.unsqueeze(1) * (u.T @ yc))


def _penalties(ridge: Any) -> Tensor:
    values = [ridge] if isinstance(ridge, numbers.Real) else ridge
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, Tensor)):
        raise ArgumentTypeError(f"ridge must be a float or a sequence of floats; got {type(ridge).__name__}")
    values = torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(-1)
    if len(values) == 0 or not torch.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"ridge must be a positive finite penalty or a non-empty sequence of them; got {ridge!r}")
    return values


def _columnwise_pearson(a: Tensor, b: Tensor) -> Tensor:
    raw_a, raw_b = a.norm(dim=0), b.norm(dim=0)
    a, b = a - a.mean(0), b - b.mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    for name, norms, raw in (("R2", nb, raw_b), ("the predictions of R2", na, raw_a)):
        flat = torch.nonzero(rounding_only(norms, raw)).flatten().tolist()
        if flat:
            raise ValueError(f"{name} is constant across conditions for units {flat}, so their correlation is "
                             "undefined; drop those units")
    return (a * b).sum(0) / (na * nb)


def _pearson(a: Tensor, b: Tensor, what: str) -> Tensor:
    raw_a, raw_b = a.norm(), b.norm()
    a, b = a - a.mean(), b - b.mean()
    norm_a, norm_b = a.norm(), b.norm()
    if rounding_only(norm_a, raw_a) or rounding_only(norm_b, raw_b):
        raise ValueError(f"{what} are constant, so their correlation is undefined; give responses that differ "
                         "between conditions")
    return (a @ b) / (norm_a * norm_b)


def _rank(x: Tensor) -> Tensor:
    """1-based ranks of a 1-D tensor, ties sharing their average rank (``scipy.stats.rankdata``); sorted
    neighbours closer than ``ROUNDING`` times the largest ``|x|`` are ties."""
    values, order = torch.sort(x)
    new = torch.ones_like(values, dtype=torch.bool)
    new[1:] = values.diff() > ROUNDING * values.abs().max()
    inverse = new.cumsum(0) - 1
    counts = torch.bincount(inverse)
    last = counts.cumsum(0).to(x.dtype)
    ranks = torch.empty_like(x)
    ranks[order] = (last - (counts.to(x.dtype) - 1) / 2)[inverse]
    return ranks


def _varying(r: Tensor, name: str, consequence: str) -> Tensor:
    """``r`` with its column means removed, checked to vary across conditions (rows)."""
    x = r - r.mean(0)
    if rounding_only(x.norm(), r.norm()):
        raise ValueError(f"{name} is the same in every condition, so {consequence}; give varying responses")
    return x


def _gram(r: Tensor, kernel: str, sigma: float, name: str) -> Tensor:
    if kernel == "linear":
        return r @ r.T
    sq = torch.cdist(r, r, compute_mode="donot_use_mm_for_euclid_dist").square()
    flat = sq.flatten().sort().values
    median = (flat[(len(flat) - 1) // 2] + flat[len(flat) // 2]) / 2
    if median == 0:
        raise ValueError(f"{name} has a median distance of 0 between conditions (most are identical); the rbf "
                         "bandwidth is undefined: use kernel='linear' or distinct conditions")
    return torch.exp(-sq / (2 * sigma**2 * median))


def _centre(k: Tensor) -> Tensor:
    """``H K H`` with ``H = I - 11^T / D``."""
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def _u_centre(k: Tensor) -> Tensor:
    """The U-centred kernel of the unbiased HSIC (Song et al. 2012; Szekely & Rizzo 2014): see :func:`cka`."""
    d = k.shape[0]
    k = k.clone().fill_diagonal_(0)
    rows = k.sum(1) / (d - 2)
    total = k.sum() / ((d - 1) * (d - 2))
    return (k - rows[:, None] - rows[None, :] + total).fill_diagonal_(0)


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}")


def _responses(value: Any, name: str) -> Tensor:
    """``value`` as a finite float64 ``(D, N)`` tensor."""
    if isinstance(value, ConditionResponses):
        value = value.responses
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            value = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"{name} must be a numeric (D, N) array; {err}") from None
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{name} must be a (D conditions, N units) tensor or array; got {type(value).__name__}")
    if value.dim() != 2:
        raise ValueError(f"{name} must be 2-D (D conditions, N units); got shape {tuple(value.shape)} "
                         "(average over time and trials with condition_responses)")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)}); give >= 1 unit and >= 2 conditions")
    if value.is_complex():
        raise ArgumentTypeError(f"{name} must be real; got dtype {value.dtype}")
    value = value.detach().to(torch.float64)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or Inf; drop or impute those units/conditions first")
    return value


def _pair(R1: Any, R2: Any) -> tuple[Tensor, Tensor]:  # noqa: N803
    """Both response matrices, checked to cover the same conditions, on R1's device."""
    r1, r2 = _responses(R1, "R1"), _responses(R2, "R2")
    if r1.shape[0] != r2.shape[0]:
        raise ValueError(f"R1 has {r1.shape[0]} conditions (rows) but R2 has {r2.shape[0]}; both must respond to "
                         "the same D conditions in the same order")
    if isinstance(R1, ConditionResponses) and isinstance(R2, ConditionResponses) and not np.array_equal(
            R1.conditions, R2.conditions):
        raise ValueError(f"R1 and R2 were grouped by different conditions ({R1.conditions} vs {R2.conditions}); "
                         "use the same labels for both")
    return r1, r2.to(r1.device)
