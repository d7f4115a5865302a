"""Shapes of equation terms: scalars, per-unit vectors and matrix parameters.

Every term of an equation has a per-sample ``shape`` (``()``, ``(n,)`` or
``(m, n)``) and is ``batched`` when it depends on the state, the input or time
through the state (states and inputs carry the batch dimension; parameters do
not). Elementwise operations need equal shapes or a scalar; ``@`` follows
numpy's ``matmul`` on vectors and matrices. At run time a batched term is a
``(B, *shape)`` tensor, except a batched scalar which is ``(B, 1)`` so that it
broadcasts against ``(B, n)`` vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .functions import matmul


@dataclass(frozen=True)
class Kind:
    """Per-sample ``shape`` of a term and whether it carries the batch dimension."""

    shape: tuple[int, ...]
    batched: bool


SCALAR = Kind((), False)


def infer(expr: sp.Basic, kinds: Mapping[str, Kind], memo: dict | None = None) -> Kind:
    """The :class:`Kind` of ``expr``; ``kinds`` gives each symbol's. Raises ValueError on a shape mismatch."""
    memo = {} if memo is None else memo
    if expr in memo:
        return memo[expr]
    if isinstance(expr, sp.Symbol):
        kind = kinds[expr.name]
    elif not expr.args:
        kind = SCALAR
    elif isinstance(expr, matmul):
        kind = _matmul(expr, *(infer(a, kinds, memo) for a in expr.args))
    else:
        kind = _elementwise(expr, [infer(a, kinds, memo) for a in expr.args])
    memo[expr] = kind
    return kind


def _elementwise(expr: sp.Basic, args: list[Kind]) -> Kind:
    shapes = {k.shape for k in args if k.shape}
    batched = any(k.batched for k in args)
    if len(shapes) > 1:
        sizes = " and ".join(str(s) for s in sorted(shapes))
        raise ValueError(f"'{expr}' combines terms of shapes {sizes} elementwise; elementwise operations need "
                         "equal shapes or a scalar (use @ for a matrix times a vector)")
    shape = shapes.pop() if shapes else ()
    if len(shape) == 2 and batched:
        raise ValueError(f"'{expr}' combines a matrix elementwise with the state or input; multiply a matrix "
                         "with a vector by @ (W @ r)")
    return Kind(shape, batched)


def _matmul(expr: matmul, a: Kind, b: Kind) -> Kind:
    left, right = expr.args
    if not a.shape or not b.shape:
        scalar = left if not a.shape else right
        raise ValueError(f"'{expr}': {scalar} is a scalar; @ needs a vector or matrix on both sides. A state "
                         f"variable is a vector of n units with state_sizes={{'{scalar}': n}} (a [sizes] line "
                         f"'{scalar} = n' in a file), a parameter with a tensor value; inputs are scalar channels "
                         "(one name each); to scale, use *")
    inner_a, inner_b = a.shape[-1], b.shape[0]
    if inner_a != inner_b:
        matrix_left = len(a.shape) == 2
        fix = f"{left} a shape with {inner_b} columns" if matrix_left else f"{right} a shape with {inner_a} rows"
        raise ValueError(f"'{expr}': {left} has shape {a.shape} but {right} has shape {b.shape}; give {fix}")
    return Kind(a.shape[:-1] + b.shape[1:], a.batched or b.batched)
