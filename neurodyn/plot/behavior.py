"""Behaviour: psychometric curves of a network's choices."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import axes, to_numpy


def psychometric(task: Any, outputs: Any, batch: Any, *, variable: Any = None, ax: Any = None) -> Any:
    """Fraction of trials with choice 0 against the trial's evidence, with a logistic fit.

    The choices come from ``task.choices(outputs, batch)``. The evidence on the
    x axis is ``variable`` (a ``(B,)`` tensor or a key of ``batch.info``); by
    default the task's natural one: the signed coherence (``coherence`` signed by
    the correct choice), the relevant coherence of a context task
    (``motion`` or ``colour`` by ``context``), or ``f1 - f2``.
    Error bars are binomial standard errors; the curve is the least-squares
    logistic ``p(v) = 1 / (1 + exp(-(v - mu) / s))`` (scipy ``curve_fit``).

    Returns:
        The Axes; the data points have gid ``"psychometric-data"``, the fit ``"psychometric-fit"``.
    """
    choices = to_numpy(task.choices(outputs, batch)).reshape(-1)
    values, label = _evidence(batch, variable)
    if values.shape[0] != choices.shape[0]:
        raise ValueError(f"variable must have one value per trial ({choices.shape[0]}); got {values.shape[0]}")
    levels = np.unique(values)
    p = np.array([np.mean(choices[values == v] == 0) for v in levels])
    n = np.array([np.sum(values == v) for v in levels])
    ax = axes(ax)
    ax.errorbar(levels, p, yerr=np.sqrt(p * (1 - p) / n), fmt="o", color="black", capsize=2, gid="psychometric-data")
    fit = _logistic_fit(values, (choices == 0).astype(float))
    if fit is not None:
        grid = np.linspace(levels.min(), levels.max(), 200)
        ax.plot(grid, _logistic(grid, *fit), color="tab:blue", gid="psychometric-fit",
                label=f"logistic fit: mu={fit[0]:.3g}, s={fit[1]:.3g}")
        ax.legend(loc="upper left", fontsize="small")
    ax.set(xlabel=label, ylabel="P(choice 0)", ylim=(-0.05, 1.05), title="psychometric curve")
    return ax


def _evidence(batch: Any, variable: Any) -> tuple[np.ndarray, str]:
    info = batch.info
    if isinstance(variable, str):
        if variable not in info:
            raise ValueError(f"variable {variable!r} is not a trial variable; choose one of "
                             f"{[k for k in info if k != 'epochs']} or pass a (B,) tensor")
        return to_numpy(info[variable]).astype(float).reshape(-1), variable
    if variable is not None:
        return to_numpy(variable).astype(float).reshape(-1), "evidence"
    if {"motion", "colour", "context"} <= info.keys():
        context = to_numpy(info["context"]).reshape(-1)
        return np.where(context == 0, to_numpy(info["motion"]), to_numpy(info["colour"])).astype(float), \
            "relevant coherence"
    if "coherence" in info:
        sign = 1 - 2 * to_numpy(info["choice"]).reshape(-1)
        return to_numpy(info["coherence"]).astype(float).reshape(-1) * sign, "signed coherence"
    if {"f1", "f2"} <= info.keys():
        return (to_numpy(info["f1"]) - to_numpy(info["f2"])).astype(float).reshape(-1), "f1 - f2"
    raise ValueError("this task has no default evidence variable; pass variable= (a batch.info key or a (B,) tensor)")


def _logistic(v: np.ndarray, mu: float, s: float) -> np.ndarray:
    from scipy.special import expit

    return expit((v - mu) / s)


def _logistic_fit(values: np.ndarray, chose0: np.ndarray) -> tuple[float, float] | None:
    """``(mu, s)`` of the logistic through the single-trial choices, or None if it cannot be fit."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    if np.all(chose0 == chose0[0]):
        return None  # all trials chose the same way: no curve to fit
    p0 = (float(np.mean(values)), float(np.std(values)) or 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            (mu, s), _ = curve_fit(_logistic, values, chose0, p0=p0, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return float(mu), float(s)
