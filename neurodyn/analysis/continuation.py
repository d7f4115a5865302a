r"""Pseudo-arclength continuation of a fixed-point branch in one parameter.

Follows the curve ``F(y, p) = 0`` of ``u = (y, p)`` by arclength ``s``
(Keller 1977; Kuznetsov, *Elements of Applied Bifurcation Theory*, ch. 10):
predict ``u + h tau`` along the unit tangent ``tau``, then correct with Newton
on the bordered system

    [ J    F_p ] du = -[ F(u)                     ]
    [ tau^T    ]       [ tau . (u - u_predicted)  ]

so the branch is followed around folds. ``F_p = dF/dp`` is a central
difference. Bifurcations between consecutive points are detected by test
functions and located by Brent's method on the arclength, far below 1e-6 in
``p``:

* fold (limit point): the tangent's ``p`` component ``dp/ds`` changes sign;
* Hopf: a complex pair crosses the imaginary axis: the real part of the
  complex eigenvalue nearest the axis changes sign while the number of
  eigenvalues with ``Re > 0`` changes by two.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from scipy.optimize import brentq
from torch import Tensor

from ..errors import DivergenceError
from ..models.base import Model
from ..state import unflatten
from ._checks import check_model, constant_input, flat_states
from .fixed_points import _damped_newton
from .jacobian import evaluate_field, field_and_jacobian
from .linalg import solve
from .parameters import SweptParameter, resolve
from .stability import default_tol, is_stable


@dataclass
class Bifurcation:
    """A bifurcation on a branch: ``kind`` "fold" or "hopf", at ``param`` and ``state (D,)``.

    ``eigvals (D,)`` there; ``frequency`` the Hopf pair's ``|Im lambda|`` (None
    for a fold); it lies between branch points ``index`` and ``index + 1``.
    """

    kind: str
    param: float
    state: Tensor
    eigvals: Tensor
    index: int
    frequency: float | None = None


@dataclass
class Branch:
    """A continued branch: ``params (M,)``, ``states (M, D)``, ``eigvals (M, D)``, ``stable (M,)``, bifurcations."""

    name: str
    params: Tensor
    states: Tensor
    eigvals: Tensor
    stable: Tensor
    bifurcations: list[Bifurcation]
    shapes: dict[str, tuple[int, ...]] = field(repr=False, default_factory=dict)

    @property
    def named(self) -> Any:
        """The states as a named tuple of ``(M, *shape)`` tensors."""
        return unflatten(self.states, self.shapes)

    def __len__(self) -> int:
        return len(self.params)


class _System:
    """``F(y, p)`` and its derivatives for the swept parameter (which it sets on the model)."""

    def __init__(self, model: Model, sweep: SweptParameter, x: Tensor, t: float) -> None:
        self.model, self.sweep, self.x, self.t = model, sweep, x, t

    def at(self, p: float) -> Tensor:
        self.sweep.set(p)
        with torch.no_grad():
            return self.model.input_drive(self.x)

    def field(self, y: Tensor, p: float) -> tuple[Tensor, Tensor]:
        F, J = field_and_jacobian(self.model, y[None], self.at(p), self.t)
        return F[0].detach(), J[0].detach()

    def dfdp(self, y: Tensor, p: float) -> Tensor:
        h = torch.finfo(y.dtype).eps ** (1 / 3) * max(1.0, abs(p))
        with torch.no_grad():
            up = evaluate_field(self.model, y[None], self.at(p + h), self.t)
            down = evaluate_field(self.model, y[None], self.at(p - h), self.t)
        self.sweep.set(p)
        return ((up - down) / (2 * h))[0]

    def bordered(self, u: Tensor, border: Tensor) -> tuple[Tensor, Tensor]:
        """``F(u)`` and the bordered matrix ``[[J, F_p], [border^T]]``."""
        y, p = u[:-1], float(u[-1])
        F, J = self.field(y, p)
        M = torch.cat([torch.cat([J, self.dfdp(y, p)[:, None]], 1), border[None]], 0)
        return F, M

    def tangent(self, u: Tensor, border: Tensor) -> tuple[Tensor, Tensor]:
        """The unit tangent at ``u`` (with ``border . tangent > 0``) and the eigenvalues of ``J`` there."""
        _, M = self.bordered(u, border)
        rhs = torch.zeros_like(u)
        rhs[-1] = 1.0
        tau = solve(M, rhs)
        return tau / tau.norm(), _eigvals(M[:-1, :-1])

    def correct(self, pred: Tensor, tau: Tensor, max_iter: int = 10) -> Tensor | None:
        """Newton on ``F(u) = 0, tau . (u - pred) = 0``; None when it does not converge."""
        u = pred.clone()
        small = 1e-2 * torch.finfo(u.dtype).eps ** 0.5
        for _ in range(max_iter):
            F, M = self.bordered(u, tau)
            du = solve(M, -torch.cat([F, (tau @ (u - pred))[None]]))
            if not torch.isfinite(du).all():
                return None
            u = u + du
            if float(du.norm()) <= small * (1 + float(u.norm())):
                return u
        return None


def _hopf_test(eigvals: Tensor) -> float:
    """Real part of the complex eigenvalue nearest the imaginary axis (NaN if none is complex)."""
    complex_ = eigvals[eigvals.imag.abs() > default_tol(eigvals[None])[0]]
    return float(complex_.real[complex_.real.abs().argmin()]) if len(complex_) else math.nan


def _eigvals(J: Tensor) -> Tensor:
    return torch.linalg.eigvals(J)


def continuation(
    model: Model,
    param: str,
    span: tuple[float, float],
    init: Any,
    x: Any = None,
    *,
    step: float | None = None,
    max_points: int = 2000,
    t: float = 0.0,
) -> Branch:
    """Follow the fixed point near ``init`` as ``param`` goes from ``span[0]`` towards ``span[1]``.

    Args:
        param: the swept parameter: a scalar parameter/buffer name (``"mu0"``,
            an ``Equations`` parameter), ``"name[i]"`` for one element of a
            tensor, a numeric model attribute, or ``"x[i]"`` for a component of
            the constant input ``x``.
        span: ``(start, stop)``; the branch ends when ``param`` leaves this range
            (it may turn back at folds in between).
        init: a state ``(D,)`` near a fixed point at ``param = start``.
        x: the constant input ``(n_in,)``; None is zero input.
        step: initial arclength step (default ``|stop - start| / 100``); the step
            adapts between ``step / 1e4`` and ``10 step``.
        max_points: the most points on the branch.

    The model's parameter is restored when the function returns.
    """
    check_model(model)
    if not (isinstance(span, (tuple, list)) and len(span) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in span)):
        raise ValueError(f"span must be (start, stop) with two finite numbers; got {span!r}")
    start, stop = float(span[0]), float(span[1])
    if start == stop:
        raise ValueError(f"span must have start != stop; got {span!r}")
    y0 = flat_states(model, init, "init")
    if y0.shape[0] != 1:
        raise ValueError(f"init must be one state (D,); got {y0.shape[0]} states")
    xc = constant_input(model, x, 1).clone()
    sweep = resolve(model, param, xc)
    step = abs(stop - start) / 100 if step is None else float(step)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number; got {step!r}")
    if not (isinstance(max_points, int) and max_points >= 2):
        raise ValueError(f"max_points must be an int >= 2; got {max_points!r}")
    original = sweep.get()
    try:
        return _continue(_System(model, sweep, xc, t), param, start, stop, y0, step, max_points,
                         dict(model.state_shapes))
    finally:
        sweep.set(original)


def _continue(system: _System, name: str, start: float, stop: float, y0: Tensor, step: float, max_points: int,
              shapes: dict) -> Branch:
    lo, hi = min(start, stop), max(start, stop)
    drive = system.at(start)
    y, q, _ = _damped_newton(system.model, y0, drive, system.t, 1e-24, 100)
    if not float(q[0]) < 1e-16:
        raise ValueError(f"init is not near a fixed point at {name}={start:g} (q = {float(q[0]):.3g} after Newton); "
                         "start from a fixed point, e.g. one from find_fixed_points")
    u = torch.cat([y[0], y.new_tensor([start])])
    e_p = torch.zeros_like(u)
    e_p[-1] = 1.0
    tau, eig = system.tangent(u, e_p)
    if (float(tau[-1]) < 0) == (stop > start):
        tau = -tau
    points, tangents = [u], [tau]
    eigs = [eig]
    bifurcations: list[Bifurcation] = []
    h, h_min, h_max = step, step * 1e-4, step * 10
    while len(points) < max_points:
        new = system.correct(u + h * tau, tau)
        if new is None or float((new - u).norm()) > 3 * h:
            h /= 2
            if h < h_min:
                warnings.warn(f"continuation stopped at {name}={float(u[-1]):g}: the corrector fails even at "
                              f"step {h:.3g} (a branch point or a singular Jacobian)", stacklevel=3)
                break
            continue
        new_tau, new_eig = system.tangent(new, tau)
        if not torch.isfinite(new).all():
            raise DivergenceError(f"continuation produced a non-finite state at {name}={float(u[-1]):g}")
        p_new = float(new[-1])
        if not lo <= p_new <= hi:
            end = hi if p_new > hi else lo
            new = _land(system, u, tau, h, end)
            new_tau, new_eig = system.tangent(new, tau)
        bifurcations += _locate(system, u, tau, h, eigs[-1], new_eig, tangents[-1], new_tau, len(points) - 1)
        points.append(new)
        tangents.append(new_tau)
        eigs.append(new_eig)
        if not lo <= p_new <= hi:
            break
        u, tau, h = new, new_tau, min(h * 1.3, h_max)
    else:
        warnings.warn(f"continuation reached max_points={max_points} at {name}={float(u[-1]):g} before leaving "
                      f"the span; raise max_points or step", stacklevel=3)
    U = torch.stack(points)
    E = torch.stack(eigs)
    return Branch(name=name, params=U[:, -1], states=U[:, :-1], eigvals=E, stable=is_stable(E),
                  bifurcations=bifurcations, shapes=shapes)


def _land(system: _System, u: Tensor, tau: Tensor, h: float, end: float) -> Tensor:
    """The branch point between ``u`` and arclength ``h`` along ``tau`` where ``p == end``."""
    s = brentq(lambda s: float(system.correct(u + s * tau, tau)[-1]) - end, 0.0, h, xtol=1e-14)
    return system.correct(u + s * tau, tau)


def _locate(system: _System, u: Tensor, tau: Tensor, h: float, eig_a: Tensor, eig_b: Tensor, tau_a: Tensor,
            tau_b: Tensor, index: int) -> list[Bifurcation]:
    """Folds and Hopf points between ``u`` and the next point (at arclength ``h`` along ``tau``)."""
    found = []

    def point(s: float) -> Tensor:
        return system.correct(u + s * tau, tau)

    def fold_test(s: float) -> float:
        return float(system.tangent(point(s), tau)[0][-1])

    def hopf_test(s: float) -> float:
        v = point(s)
        return _hopf_test(_eigvals(system.field(v[:-1], float(v[-1]))[1]))

    tests = []
    if float(tau_a[-1]) * float(tau_b[-1]) < 0:
        tests.append(("fold", fold_test))
    ha, hb = _hopf_test(eig_a), _hopf_test(eig_b)
    unstable_a, unstable_b = int((eig_a.real > 0).sum()), int((eig_b.real > 0).sum())
    if ha * hb < 0 and abs(unstable_a - unstable_b) == 2:
        tests.append(("hopf", hopf_test))
    for kind, test in tests:
        try:
            s = brentq(test, 0.0, h, xtol=1e-14, rtol=1e-14)
        except (ValueError, RuntimeError, TypeError):
            continue  # the test function is not continuous across the interval
        v = point(s)
        lam = _eigvals(system.field(v[:-1], float(v[-1]))[1])
        freq = float(lam.imag[lam.real.abs().argmin()].abs()) if kind == "hopf" else None
        found.append(Bifurcation(kind=kind, param=float(v[-1]), state=v[:-1], eigvals=lam, index=index,
                                 frequency=freq))
    return found
