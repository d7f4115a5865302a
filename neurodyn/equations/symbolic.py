"""Scalar (unit-by-unit) sympy forms of the equations: Jacobians and LaTeX.

A vector equation such as ``dr/dt = (-r + relu(W @ r + I)) / tau`` is
expanded into one scalar expression per unit, ``r[i]`` standing for unit ``i``
(``sympy.Indexed``) and ``@`` expanded into sums, so that
``sympy.Matrix.jacobian`` gives the exact ``D x D`` Jacobian over the flat
state. The expansion has ``n^2`` terms for an ``n x n`` matrix: it is meant
for the small systems one studies symbolically.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy as sp

from .functions import matmul


def entries(name: str, shape: tuple[int, ...], symbol: sp.Symbol) -> np.ndarray:
    """An object array of ``shape`` holding ``symbol`` (scalar) or its entries ``name[i]``, ``name[i, j]``."""
    array = np.empty(shape, dtype=object)
    if not shape:
        array[()] = symbol
        return array
    base = sp.IndexedBase(name, real=True)
    for index in np.ndindex(*shape):
        array[index] = base[index]
    return array


def constant_array(value: np.ndarray) -> np.ndarray:
    """The numbers of ``value`` as an object array of sympy Floats (exact binary values)."""
    value = np.asarray(value, dtype=np.float64)
    array = np.empty(value.shape, dtype=object)
    for index in np.ndindex(*value.shape):
        array[index] = sp.Float(float(value[index]), 17)
    return array


def expand(expr: sp.Basic, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """``expr`` evaluated elementwise on object arrays: each symbol is replaced by ``values[name]``."""
    if isinstance(expr, sp.Symbol):
        return values[expr.name]
    if not expr.args:
        array = np.empty((), dtype=object)
        array[()] = expr
        return array
    args = [expand(a, values) for a in expr.args]
    if isinstance(expr, matmul):
        return np.asarray(np.matmul(*args), dtype=object)
    return np.vectorize(expr.func, otypes=[object])(*args)


def jacobian(rhs: list[np.ndarray], state: list[np.ndarray]) -> sp.Matrix:
    """``d rhs / d state`` over the flattened unit-by-unit expressions."""
    f = [e for array in rhs for e in np.ravel(array)]
    y = [s for array in state for s in np.ravel(array)]
    return sp.Matrix(f).jacobian(y)


def latex_system(lines: list[tuple[str, str, sp.Expr]]) -> str:
    r"""``\begin{aligned} ... \end{aligned}`` with one row per ``(kind, target, expr)``, kind "derivative" or "aux"."""
    rows = []
    for kind, target, expr in lines:
        name = sp.latex(sp.Symbol(target))
        lhs = rf"\frac{{d {name}}}{{d t}}" if kind == "derivative" else name
        rows.append(f"{lhs} &= {sp.latex(expr)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
