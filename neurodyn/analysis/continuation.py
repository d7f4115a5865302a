r"""Pseudo-arclength continuation of a fixed-point branch in one parameter.

Follows the curve ``F(y, p) = 0`` of ``u = (c y, p)`` by arclength ``s``
(Keller 1977; Kuznetsov, *Elements of Applied Bifurcation Theory*, ch. 10):
predict ``u + h tau`` along the unit tangent ``tau``, then correct with Newton
on the bordered system

    [ J / c  F_p ] du = -[ F(u)                     ]
    [ tau^T      ]       [ tau . (u - u_predicted)  ]

so the branch is followed around folds. ``F_p = dF/dp`` is a central
difference. The state is scaled by ``c = |stop - start| / max(1, |y0|_inf)``
so that state and parameter both span about ``|stop - start|``: a jump between
branches is then as long as a step across the span, whatever the units.

Step control (Allgower & Georg, *Introduction to Numerical Continuation
Methods*, 2003, ch. 6; cf. MATCONT, Dhooge et al. 2003): a step is rejected
and halved when the corrector does not converge in ``8`` iterations, when it
moves the point more than ``0.25 h`` off the predictor (another branch), when
consecutive tangents differ by more than ``0.25`` rad, or when the number of
eigenvalues with ``Re > 0`` changes by more than one bifurcation can explain.
It grows by 1.3 after an easy step (at most 3 Newton iterations).

Bifurcations between consecutive points are detected from the number of
unstable eigenvalues and located by Brent's method on the arclength, far below
1e-6 in ``p``:

* fold (limit point): ``dp/ds`` changes sign (one real eigenvalue crosses 0);
* branch point: one real eigenvalue crosses 0 while ``dp/ds`` keeps its sign
  (a pitchfork or transcritical point); the branch is followed straight on;
* Hopf: the count changes by two while the real part of the complex eigenvalue
  nearest the imaginary axis changes sign.

A change of the count that no located bifurcation explains is warned about.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from scipy.optimize import brentq
from torch import Tensor

from ..models.base import Model
from ..state import unflatten
from ..validation import as_real
from ._checks import check_model, constant_input, flat_states
from .fixed_points import _damped_newton
from .jacobian import evaluate_field, field_and_jacobian
from .linalg import solve
from .parameters import SweptParameter, resolve
from .stability import default_tol, is_stable

_MAX_ITER = 8  # corrector iterations before a step is rejected
_EASY = 3  # a step that converged in at most this many iterations lets the next one grow
_MAX_OFFSET = 0.25  # the largest corrector move off the predictor, as a fraction of the step
_MAX_TURN = 0.25  # the largest angle (rad) between consecutive tangents
_CHANGE = {"fold": 1, "branch point": 1, "hopf": 2}  # unstable eigenvalues gained or lost at each kind


@dataclass
class Bifurcation:
    """A bifurcation on a branch: ``kind`` "fold", "hopf" or "branch point", at ``param`` and ``state (D,)``.

    ``eigvals (D,)`` there; ``frequency`` the Hopf pair's ``|Im lambda|`` (None
    otherwise); it lies between branch points ``index`` and ``index + 1``.
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


class _NotConverged(Exception):
    """The corrector did not converge."""


class _System:
    """``F(y, p)`` and its derivatives in the scaled coordinates ``u = (c y, p)``; sets ``p`` on the model."""

    def __init__(self, model: Model, sweep: SweptParameter, x: Tensor, t: float, scale: float) -> None:
        self.model, self.sweep, self.x, self.t, self.scale = model, sweep, x, t, scale

    def at(self, p: float) -> Tensor:
        self.sweep.set(p)
        with torch.no_grad():
            return self.model.input_drive(self.x)

    def field(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``F`` and ``J = dF/dy`` at ``u``."""
        F, J = field_and_jacobian(self.model, self.state(u)[None], self.at(float(u[-1])), self.t)
        return F[0].detach(), J[0].detach()

    def state(self, u: Tensor) -> Tensor:
        return u[:-1] / self.scale

    def dfdp(self, u: Tensor) -> Tensor:
        y, p = self.state(u)[None], float(u[-1])
        h = torch.finfo(y.dtype).eps ** (1 / 3) * max(1.0, abs(p))
        with torch.no_grad():
            up = evaluate_field(self.model, y, self.at(p + h), self.t)
            down = evaluate_field(self.model, y, self.at(p - h), self.t)
        self.sweep.set(p)
        return ((up - down) / (2 * h))[0]

    def bordered(self, u: Tensor, border: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``F(u)``, the bordered matrix ``[[J / c, F_p], [border^T]]`` and ``J``."""
        F, J = self.field(u)
        M = torch.cat([torch.cat([J / self.scale, self.dfdp(u)[:, None]], 1), border[None]], 0)
        return F, M, J

    def tangent(self, u: Tensor, border: Tensor) -> tuple[Tensor, Tensor]:
        """The unit tangent at ``u`` (with ``border . tangent > 0``) and the eigenvalues of ``J`` there.

        Where the bordered matrix is singular (``border`` along the parameter at a fold) the tangent is
        the null vector of ``[J / c, F_p]``. Raises _NotConverged where the field is not finite.
        """
        _, M, J = self.bordered(u, border)
        if not torch.isfinite(M).all():
            raise _NotConverged
        rhs = torch.zeros_like(u)
        rhs[-1] = 1.0
        tau = solve(M, rhs)
        if not torch.isfinite(tau).all():
            tau = torch.linalg.svd(M[:-1])[2][-1]
            tau = tau if float(border @ tau) >= 0 else -tau
        return tau / tau.norm(), _eigvals(J)

    def correct(self, pred: Tensor, normal: Tensor) -> tuple[Tensor, int]:
        """Newton on ``F(u) = 0, normal . (u - pred) = 0``: the point and its iterations; raises _NotConverged.

        Converged when the Newton step is below ``1e-2 sqrt(eps) (1 + |u|)``.
        Where that fails, Newton is retried with the pseudo-inverse of the
        bordered matrix (singular values below ``sqrt(eps)`` of the largest
        dropped): at a branch point the matrix is singular, and round-off along
        its null vector would otherwise be amplified without bound.
        """
        for pseudo in (False, True):
            u = pred.clone()
            for iteration in range(1, _MAX_ITER + 1):
                F, M, _ = self.bordered(u, normal)
                if not torch.isfinite(M).all():
                    break  # the field is not finite here (e.g. a time constant swept to 0)
                rhs = -torch.cat([F, (normal @ (u - pred))[None]])
                du = _pinv_solve(M, rhs) if pseudo else solve(M, rhs)
                if not torch.isfinite(du).all():
                    break
                u = u + du
                if float(du.norm()) <= 1e-2 * torch.finfo(u.dtype).eps ** 0.5 * (1 + float(u.norm())):
                    return u, iteration
        raise _NotConverged

    def point(self, u: Tensor, tau: Tensor, s: float) -> Tensor:
        """The branch point on the hyperplane normal to ``tau`` at arclength ``s`` from ``u``."""
        return self.correct(u + s * tau, tau)[0]


def _pinv_solve(M: Tensor, rhs: Tensor) -> Tensor:
    """``pinv(M) rhs`` with singular values below ``sqrt(eps)`` of the largest dropped."""
    return torch.linalg.pinv(M, rtol=torch.finfo(M.dtype).eps ** 0.5) @ rhs


def _eigvals(J: Tensor) -> Tensor:
    return torch.linalg.eigvals(J)


def _nearest(eigvals: Tensor, complex_: bool) -> float:
    """Real part of the complex (or real) eigenvalue nearest the imaginary axis; NaN if there is none."""
    is_complex = eigvals.imag.abs() > default_tol(eigvals[None])[0]
    picked = eigvals[is_complex if complex_ else ~is_complex]
    return float(picked.real[picked.real.abs().argmin()]) if len(picked) else math.nan


def _unstable(eigvals: Tensor) -> int:
    """Eigenvalues with ``Re > tol`` (:func:`default_tol`): a centre's round-off (|Re| ~ 1e-16) is no crossing."""
    return int((eigvals.real > default_tol(eigvals[None])[0]).sum())


def _events(tau_a: Tensor, tau_b: Tensor, eig_a: Tensor, eig_b: Tensor) -> tuple[list[str], bool]:
    """The bifurcation kinds to locate between two points, and whether one bifurcation explains the step."""
    fold = float(tau_a[-1]) * float(tau_b[-1]) < 0
    change = abs(_unstable(eig_b) - _unstable(eig_a))
    hopf = change >= 2 and _nearest(eig_a, True) * _nearest(eig_b, True) <= 0
    branch = not fold and change > 0 and _nearest(eig_a, False) * _nearest(eig_b, False) <= 0
    kinds = [k for k, hit in (("fold", fold), ("branch point", branch), ("hopf", hopf)) if hit]
    return kinds, sum(_CHANGE[k] for k in kinds) == change and len(kinds) <= 1


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
        span: ``(start, stop)``, numbers or 0-d tensors; the branch ends when
            ``param`` leaves this range (it may turn back at folds in between).
        init: a state ``(D,)`` near a fixed point at ``param = start``.
        x: the constant input ``(n_in,)``; None is zero input.
        step: initial arclength step in units of ``param`` (default
            ``|stop - start| / 100``; the state is scaled to span about as
            much, see the module docstring); the step adapts between
            ``step / 1e4`` and ``10 step``.
        max_points: the most points on the branch.

    Warns when the step cannot be resolved: the corrector fails even at the
    smallest step, or the stability changes between two points without a
    located bifurcation. The model's parameter is restored when the function
    returns.
    """
    check_model(model)
    try:
        if not (isinstance(span, (tuple, list)) and len(span) == 2):
            raise ValueError
        start, stop = (as_real("span", v) for v in span)
    except ValueError:  # (ArgumentTypeError is one too)
        raise ValueError(f"span must be (start, stop) with two finite numbers (or 0-d tensors); got {span!r}") from None
    if start == stop:
        raise ValueError(f"span must have start != stop; got {span!r}")
    t = as_real("t", t)
    y0 = flat_states(model, init, "init")
    if y0.shape[0] != 1:
        raise ValueError(f"init must be one state (D,); got {y0.shape[0]} states")
    xc = constant_input(model, x, 1).clone()
    sweep = resolve(model, param, xc)
    h = abs(stop - start) / 100 if step is None else as_real("step", step, gt=0)
    if not (isinstance(max_points, int) and max_points >= 2):
        raise ValueError(f"max_points must be an int >= 2; got {max_points!r}")
    saved = sweep.save()
    try:
        system = _System(model, sweep, xc, t, 1.0)
        y, q, _ = _damped_newton(model, y0, system.at(start), t, 1e-24, 100)
        limit = max(1e-16, (100 * torch.finfo(y.dtype).eps) ** 2)  # float32 reaches q ~ 1e-14 at best
        if not float(q[0]) < limit:
            raise ValueError(f"init is not near a fixed point at {param}={start:g} (q = {float(q[0]):.3g} after "
                             "Newton); start from a fixed point, e.g. one from find_fixed_points"
                             + ("" if y.dtype == torch.float64 else ", or continue model.double()"))
        system.scale = abs(stop - start) / max(1.0, float(y.abs().max()))
        return _continue(system, param, start, stop, y[0], h, max_points, dict(model.state_shapes))
    finally:
        sweep.restore(saved)


def _continue(system: _System, name: str, start: float, stop: float, y0: Tensor, step: float, max_points: int,
              shapes: dict) -> Branch:
    lo, hi = min(start, stop), max(start, stop)
    u = torch.cat([system.scale * y0, y0.new_tensor([start])])
    e_p = torch.zeros_like(u)
    e_p[-1] = 1.0
    tau, eig = system.tangent(u, e_p)
    if (float(tau[-1]) < 0) == (stop > start):
        tau = -tau
    points, eigs = [u], [eig]
    bifurcations: list[Bifurcation] = []
    h, h_min, h_max = step, step * 1e-4, step * 10
    while len(points) < max_points:
        trial = _step(system, u, tau, h, lo, hi, e_p)
        if trial is not None:
            new, new_tau, new_eig, iterations = trial
            kinds, resolved = _events(tau, new_tau, eig, new_eig)
            if not resolved and h / 2 >= h_min:
                trial = None  # no single bifurcation explains the step: take a shorter one
        if trial is None:
            h /= 2
            if h < h_min:
                warnings.warn(f"continuation stopped at {name}={float(u[-1]):g}: the corrector fails even at "
                              f"step {h:.3g} (a branch point or a singular Jacobian)", stacklevel=3)
                break
            continue
        found = _locate(system, u, tau, float(tau @ (new - u)), kinds, len(points) - 1)
        n_a, n_b = _unstable(eig), _unstable(new_eig)
        if abs(n_b - n_a) != sum(_CHANGE[b.kind] for b in found):
            where = f"between {name}={float(u[-1]):g} and {float(new[-1]):g}"
            warnings.warn(f"the stability changed {where} ({n_a} -> {n_b} eigenvalues with Re > 0) without a located "
                          f"bifurcation that explains it (a degenerate point, or bifurcations closer than the "
                          f"smallest step {h:.3g})" if n_a != n_b else
                          f"the {' and '.join(b.kind for b in found)} located {where} leaves {n_a} eigenvalues with "
                          "Re > 0 on both sides: an eigenvalue touches 0 without crossing (a degenerate point, "
                          "such as a pitchfork where this branch meets another)", stacklevel=3)
        bifurcations += found
        points.append(new)
        eigs.append(new_eig)
        if not lo < float(new[-1]) < hi:
            break
        u, tau, eig = new, new_tau, new_eig
        if iterations <= _EASY:
            h = min(h * 1.3, h_max)
    else:
        warnings.warn(f"continuation reached max_points={max_points} at {name}={float(u[-1]):g} before leaving "
                      f"the span; raise max_points or step", stacklevel=3)
    U = torch.stack(points)
    E = torch.stack(eigs)
    return Branch(name=name, params=U[:, -1], states=U[:, :-1] / system.scale, eigvals=E, stable=is_stable(E),
                  bifurcations=bifurcations, shapes=shapes)


def _step(system: _System, u: Tensor, tau: Tensor, h: float, lo: float, hi: float,
          e_p: Tensor) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """One predictor-corrector step (landing on ``p = lo`` or ``hi`` when it leaves the span); None if rejected.

    Returns the new point, its tangent and eigenvalues, and the corrector's iterations.
    """
    pred = u + h * tau
    try:
        new, iterations = system.correct(pred, tau)
    except _NotConverged:
        return None
    if float((new - pred).norm()) > _MAX_OFFSET * h:
        return None  # the corrector went far off the predictor: likely onto another branch
    p_u, p_new = float(u[-1]), float(new[-1])
    if not lo <= p_new <= hi:
        end = hi if p_new > hi else lo
        if end == p_u:
            return None  # from the span's end straight out again: a fold within the step, which a shorter resolves
        target = u + (end - p_u) / (p_new - p_u) * (new - u)
        target[-1] = end
        try:
            new = system.correct(target, e_p)[0]
        except _NotConverged:
            return None
    try:
        new_tau, new_eig = system.tangent(new, tau)
    except _NotConverged:
        return None
    if float(tau @ new_tau) < math.cos(_MAX_TURN):
        return None
    return new, new_tau, new_eig, iterations


def _locate(system: _System, u: Tensor, tau: Tensor, h: float, kinds: list[str], index: int) -> list[Bifurcation]:
    """The bifurcations of ``kinds`` between ``u`` and the next point (at arclength ``h`` along ``tau``)."""

    def eigvals(s: float) -> Tensor:
        return _eigvals(system.field(system.point(u, tau, s))[1])

    tests = {
        "fold": lambda s: float(system.tangent(system.point(u, tau, s), tau)[0][-1]),
        "branch point": lambda s: _nearest(eigvals(s), False),
        "hopf": lambda s: _nearest(eigvals(s), True),
    }
    found = []
    for kind in kinds:
        try:
            s = brentq(tests[kind], 0.0, h, xtol=1e-14, rtol=1e-14)
            v = system.point(u, tau, s)
        except (ValueError, RuntimeError, _NotConverged):
            continue  # the test function is not continuous or the corrector fails: warned by the caller
        lam = _eigvals(system.field(v)[1])
        freq = float(lam.imag[lam.real.abs().argmin()].abs()) if kind == "hopf" else None
        found.append(Bifurcation(kind=kind, param=float(v[-1]), state=system.state(v), eigvals=lam, index=index,
                                 frequency=freq))
    return found
