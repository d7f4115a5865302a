r"""Removable singularities of the form ``c E / (1 - exp(E))``.

Rate functions such as Wong & Wang's (2006) ``H(x) = (a x - b) / (1 - exp(-d (a x - b)))``
or the Hodgkin–Huxley ``alpha_n(V) = 0.01 (V + 55) / (1 - exp(-(V + 55) / 10))``
are 0/0 where the exponent vanishes, although the function is smooth there.
Before compiling, every product ``g / (s (exp(E) - 1))`` (``s`` a number; also
``1 - K exp(E')``, which is how sympy stores ``1 - exp(E' + log K)`` for a Float
``log K``) in which ``E`` divides ``g = h E`` (``h`` has no state, input or time
in a denominator: ``c``, ``x``, ``c y``) is rewritten as ``(h / s) B(E)`` with the
Bernoulli function ``B(u) = u / (exp(u) - 1)``.
:func:`x_over_expm1` evaluates ``B`` without NaN in value and gradient:
the Taylor series ``1 - u/2 + u^2/12 - u^4/720 + u^6/30240 - u^8/1209600``
for ``|u| <`` 0.1 (float64; 1.0 in lower precision: the next term is below
the rounding error there) and ``u / (exp(u) - 1)`` written with ``expm1``
and without overflow elsewhere. The symbolic expressions (``symbolic_rhs``,
``latex``, ``symbolic_jacobian``) keep the form the user wrote.
"""

from __future__ import annotations

import sympy as sp
import torch
from torch import Tensor

from .functions import x_over_expm1 as bernoulli


def remove_singularities(expr: sp.Expr, dynamic: set[sp.Symbol]) -> sp.Expr:
    """``expr`` with every ``h E / (s (exp(E) - 1))`` replaced by ``(h / s) B(E)``; ``dynamic``: state, input, time."""
    if not expr.args:
        return expr
    node = expr.func(*(remove_singularities(a, dynamic) for a in expr.args))
    return _rewrite_product(node, dynamic) if node.is_Mul else node


def _rewrite_product(node: sp.Mul, dynamic: set[sp.Symbol]) -> sp.Expr:
    factors = list(node.args)
    for i, f in enumerate(factors):
        if not (f.is_Pow and f.exp == -1):
            continue
        found = _expm1_argument(f.base)
        if found is None:
            continue
        exponent, sign = found
        varying = [g for j, g in enumerate(factors) if j != i and g.free_symbols & dynamic]
        ratio = _regular_ratio(sp.Mul(*varying), exponent, dynamic) if varying else None
        if ratio is None:
            continue
        rest = [g for j, g in enumerate(factors) if j != i and g not in varying]
        return sp.Mul(*rest, ratio / sign, bernoulli(exponent))
    return node


def _regular_ratio(g: sp.Expr, e: sp.Expr, dynamic: set[sp.Symbol]) -> sp.Expr | None:
    """``g / e`` when ``e`` divides ``g`` (no dynamic symbol left in the denominator; Floats compared to 15
    digits), else None: ``x^2 / (exp(x) - 1) = x B(x)``."""
    for ratio in (sp.cancel(g / e), sp.cancel(sp.nsimplify(g / e, rational=True))):
        if (not sp.fraction(ratio)[1].free_symbols & dynamic and not ratio.has(sp.zoo, sp.nan)
                and ratio.is_zero is not True):
            return ratio
    return None


def _expm1_argument(base: sp.Expr) -> tuple[sp.Expr, sp.Number] | None:
    """``(E, s)`` when ``base = s (exp(E) - 1)`` for a number ``s``, else None.

    sympy splits ``exp(c + k x)`` into ``exp(c) exp(k x)`` when ``c`` is a Float, so
    ``c0 + c1 exp(E')`` with ``-c1 / c0 > 0`` is read as ``-c0 (exp(E' + log(-c1 / c0)) - 1)``.
    """
    c0, terms = base.as_coeff_add()
    if len(terms) != 1 or c0 == 0:
        return None
    c1, term = terms[0].as_coeff_Mul()
    if not isinstance(term, sp.exp) or not (-c1 / c0) > 0:
        return None
    scale = -c1 / c0
    exponent = term.args[0] if scale == 1 else term.args[0] + sp.log(scale)
    return exponent, -c0


def x_over_expm1(u: Tensor) -> Tensor:
    """``u / (exp(u) - 1)``, equal to 1 at ``u = 0``, finite in value and gradient for every real ``u``."""
    threshold = 0.1 if u.dtype == torch.float64 else 1.0
    small = u.abs() < threshold
    s = torch.where(small, u, torch.zeros_like(u))
    s2 = s * s
    series = 1 - s / 2 + s2 * (1 / 12 + s2 * (-1 / 720 + s2 * (1 / 30240 - s2 / 1209600)))
    v = torch.where(small, torch.full_like(u, threshold), u.abs())
    # u < 0: v / (1 - e^-v);  u > 0: v e^-v / (1 - e^-v) = v / (e^v - 1). Neither overflows.
    direct = v * torch.exp(torch.where(u > 0, -v, torch.zeros_like(v))) / -torch.expm1(-v)
    return torch.where(small, series, direct)
