r"""Nullclines of two-dimensional systems: every branch, never joined.

The ``X``-nullcline is the set where ``dX/dt = 0``. For an :class:`Equations`
model the right-hand side is first split into its factors with sympy
(``factor_terms``, and ``factor_list`` for polynomial factors; denominators
are dropped, they have poles, not zeros), so that ``x (a - b y) = 0`` gives
the vertical line ``x = 0`` and the horizontal line ``y = a/b`` as separate
branches, found exactly by 1-D root finding (``scipy.optimize.brentq``).
Factors of both variables, and every model that is not ``Equations``, are
traced by marching squares (``contourpy``) on a ``resolution x resolution``
grid, one branch per connected contour line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, ItemsView, Iterator
from dataclasses import dataclass
from typing import Any

import contourpy
import numpy as np
import sympy as sp
import torch
from scipy.optimize import brentq

from ..errors import ArgumentTypeError
from ..models.base import Model
from ..state import unflatten
from .compile import compile_expr
from .model import Equations
from .shapes import SCALAR, Kind
from .singularities import remove_singularities


@dataclass(frozen=True)
class Nullclines:
    """Branches of the nullclines of ``x_var`` and ``y_var``: ``branches[var]`` lists ``(K, 2)`` arrays of
    ``(x_var, y_var)`` points where ``d var/dt = 0``, one array per separate branch."""

    x_var: str
    y_var: str
    branches: dict[str, list[np.ndarray]]

    def __getitem__(self, var: str) -> list[np.ndarray]:
        return self.branches[var]

    def __iter__(self) -> Iterator[str]:
        return iter(self.branches)

    def items(self) -> ItemsView[str, list[np.ndarray]]:
        return self.branches.items()


def nullclines(
    model: Model,
    x_var: str,
    y_var: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    x: Any = None,
    t: float = 0.0,
    resolution: int = 400,
) -> Nullclines:
    """Every branch of the ``x_var``- and ``y_var``-nullclines of a 2-D ``model`` in a window.

    Args:
        model: a Model with exactly two scalar state variables (any Model;
            :class:`Equations` get exact vertical and horizontal branches).
        x_var, y_var: the state variables on the horizontal and vertical axes.
        x_range, y_range: the window ``(low, high)``.
        x: a constant input ``(n_in,)`` or ``(1, n_in)``; None is zero input.
        t: the time at which a time-dependent vector field is evaluated.
        resolution: grid points per side for the traced branches.
    """
    if not isinstance(model, Model):
        raise ArgumentTypeError(f"model must be a neurodyn Model; got {type(model).__name__}")
    names = list(model.state_vars)
    if model.dim != 2 or len(names) != 2:
        raise ValueError(f"nullclines needs a model with two scalar state variables; got {model.state_vars}")
    if {x_var, y_var} != set(names):
        raise ValueError(f"x_var and y_var must be the two state variables {names}; got {x_var!r}, {y_var!r}")
    spans = [_span("x_range", x_range), _span("y_range", y_range)]
    if not (isinstance(resolution, int) and resolution >= 3):
        raise ValueError(f"resolution must be an int >= 3; got {resolution!r}")
    drive = _constant_input(model, x)
    if isinstance(model, Equations) and all(getattr(model, n).dim() == 0 for n in model.parameter_names):
        branches = _symbolic(model, x_var, y_var, spans, drive, float(t), resolution)
    else:
        branches = _numeric(model, x_var, y_var, spans, drive, float(t), resolution)
    return Nullclines(x_var, y_var, branches)


def _span(name: str, span: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in span)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be (low, high); got {span!r}") from err
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite (low, high) with low < high; got {span!r}")
    return low, high


def _constant_input(model: Model, x: Any) -> torch.Tensor:
    if x is None:
        return torch.zeros(1, model.n_in, dtype=torch.float64)
    x = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64))
    if x.numel() != model.n_in:
        raise ValueError(f"x must be a constant input of n_in={model.n_in} values; got shape {tuple(x.shape)}")
    return x.reshape(1, model.n_in)


def _grid(spans: list[tuple[float, float]], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.linspace(*spans[0], resolution), np.linspace(*spans[1], resolution))


def _trace(gx: np.ndarray, gy: np.ndarray, f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Zero contour lines of ``f`` on the grid, one array per connected line.

    A sign change across a pole (``1/x - y`` at ``x = 0``) also makes a contour line: there ``|f|`` on the
    line is far above its values at the grid cell's corners, while on a true zero it is far below. Points
    where it is above are dropped, splitting the line.
    """
    z = f(gx, gy)
    masked = np.ma.masked_invalid(z)
    if masked.mask.all():
        return []
    lines = contourpy.contour_generator(gx, gy, masked, line_type="Separate").lines(0.0)
    xs, ys, size = gx[0], gy[:, 0], np.abs(z)
    out = []
    for line in lines:
        line = np.asarray(line, dtype=np.float64)
        i = np.clip(np.searchsorted(xs, line[:, 0]) - 1, 0, len(xs) - 2)
        j = np.clip(np.searchsorted(ys, line[:, 1]) - 1, 0, len(ys) - 2)
        corners = np.nanmax([size[j, i], size[j, i + 1], size[j + 1, i], size[j + 1, i + 1]], axis=0)
        zero = np.abs(f(line[:, 0], line[:, 1])) <= corners
        cuts = np.nonzero(np.diff(zero.astype(int)))[0] + 1
        out.extend(piece for piece, ok in zip(np.split(line, cuts), np.split(zero, cuts), strict=True)
                   if ok[0] and len(piece) >= 2)
    return out


def _numeric(model: Model, x_var: str, y_var: str, spans, drive, t, resolution) -> dict[str, list[np.ndarray]]:
    gx, gy = _grid(spans, resolution)

    def field(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        points = {x_var: a.ravel(), y_var: b.ravel()}
        flat = torch.as_tensor(np.stack([points[n] for n in model.state_vars], 1), dtype=model.dtype,
                               device=model.device)
        with torch.no_grad():
            d = model.input_drive(drive.to(model.device, model.dtype).expand(flat.shape[0], -1))
            values = model.vector_field(torch.as_tensor(t, dtype=model.dtype), unflatten(flat, model), d)
        return {n: v.reshape(a.shape).double().cpu().numpy() for n, v in zip(model.state_vars, values, strict=True)}

    return {var: _trace(gx, gy, lambda a, b, var=var: field(a, b)[var]) for var in (x_var, y_var)}


def _symbolic(model: Equations, x_var: str, y_var: str, spans, drive, t, resolution) -> dict[str, list[np.ndarray]]:
    symbols = model._parsed.symbols
    xs, ys = symbols[x_var], symbols[y_var]
    values = {symbols[n]: sp.Float(float(getattr(model, n).detach()), 17) for n in model.parameter_names}
    values.update({symbols[n]: sp.Float(float(v), 17) for n, v in zip(model.input_names, drive[0], strict=True)})
    values[symbols["t"]] = sp.Float(t, 17)
    kinds = {x_var: Kind((), True), y_var: Kind((), True), **{n: SCALAR for n in ("t",)}}
    gx, gy = _grid(spans, resolution)
    out = {}
    for var in (x_var, y_var):
        branches = []
        for factor in _zero_factors(model.symbolic_rhs()[var], xs, ys):
            g = factor.xreplace(values)
            branches.extend(_factor_branches(g, xs, ys, spans, kinds, gx, gy, var))
        out[var] = branches
    return out


def _zero_factors(expr: sp.Expr, xs: sp.Symbol, ys: sp.Symbol) -> list[sp.Expr]:
    """The factors of ``expr`` that can vanish and depend on ``xs`` or ``ys``, each once."""
    found: list[sp.Expr] = []
    for f in sp.Mul.make_args(sp.factor_terms(expr)):
        if f.is_Pow and f.exp.is_Number:
            if f.exp < 0:
                continue  # a denominator: poles, no zeros
            f = f.base
        if isinstance(f, sp.exp) or not f.free_symbols & {xs, ys}:
            continue
        parts = [f]
        if f.is_polynomial(xs, ys):
            try:
                parts = [g for g, _ in sp.factor_list(f)[1]]
            except (sp.PolificationFailed, sp.PolynomialError):  # e.g. I - x/tau: a parameter in a denominator
                parts = [f]
        found.extend(g for g in parts if g.free_symbols & {xs, ys} and g not in found)
    return found


def _factor_branches(g: sp.Expr, xs, ys, spans, kinds, gx, gy, var: str) -> list[np.ndarray]:
    free = g.free_symbols
    if not free & {xs, ys}:
        if g == 0:
            warnings.warn(f"d{var}/dt vanishes on the whole plane for these parameters; no nullcline drawn",
                          stacklevel=4)
        return []
    fn = compile_expr(remove_singularities(g, {xs, ys}), kinds)

    def evaluate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        env = {xs.name: torch.as_tensor(a, dtype=torch.float64), ys.name: torch.as_tensor(b, dtype=torch.float64)}
        value = fn(env)
        return np.broadcast_to(np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value), a.shape)

    if free & {xs, ys} == {xs, ys}:
        return _trace(gx, gy, evaluate)
    along_x = xs in free
    low, high = spans[0] if along_x else spans[1]
    other = spans[1] if along_x else spans[0]

    def along(u: np.ndarray) -> np.ndarray:
        return evaluate(u, np.zeros_like(u)) if along_x else evaluate(np.zeros_like(u), u)

    lines = []
    for root in _roots(along, low, high, 8 * gx.shape[0]):
        line = np.array([[root, other[0]], [root, other[1]]]) if along_x else \
            np.array([[other[0], root], [other[1], root]])
        lines.append(line)
    return lines


def _roots(f, low: float, high: float, n: int) -> list[float]:
    """Roots on ``[low, high]`` of ``f`` (vectorized over a 1-D array): exact zeros on a grid, refined sign changes
    (not poles)."""
    u = np.linspace(low, high, n)
    v = f(u)
    roots = [float(a) for a, b in zip(u, v, strict=True) if b == 0.0]
    finite = np.isfinite(v)
    for i in np.nonzero(finite[:-1] & finite[1:] & (np.sign(v[:-1]) * np.sign(v[1:]) < 0))[0]:
        root = brentq(lambda a: float(f(np.array([a]))[0]), u[i], u[i + 1], xtol=1e-14, rtol=4 * np.finfo(float).eps)
        if abs(f(np.array([root]))[0]) <= max(abs(v[i]), abs(v[i + 1])):  # a pole changes sign too, |f| soars
            roots.append(root)
    roots.sort()
    return [r for k, r in enumerate(roots) if k == 0 or r - roots[k - 1] > 1e-12 * max(1.0, abs(r))]
