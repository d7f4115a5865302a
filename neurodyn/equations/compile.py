"""Compile sympy expressions into torch operations, once, with a small op table.

Each sympy node becomes a closure ``env -> Tensor | float`` that calls one
torch op on its children; nothing is generated as source text and nothing
from the equation text is ever ``eval``-ed. Common subexpressions are
computed once (``sympy.cse``); parameter-free subtrees are folded to
constants; ``W @ r + b`` becomes one ``addmm``, ``-r + f(...)`` a subtraction
and ``(...) / tau`` a division, so a network written as text runs the same
kernels as a hand-written model.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce

import sympy as sp
import torch
from torch import Tensor
from torch.nn import functional as F

from ..models.activations import tanh
from ..models.linear import recurrent
from .functions import matmul, relu, sigmoid, softplus, x_over_expm1
from .shapes import Kind, infer
from .singularities import x_over_expm1 as safe_x_over_expm1

Value = Tensor | float
Fn = Callable[[dict], Value]

UNARY: dict[type, Callable[[Tensor], Tensor]] = {
    sp.exp: torch.exp,
    sp.log: torch.log,
    sp.tanh: tanh,  # numpy's where no graph is recorded (neurodyn.models.activations)
    sp.sin: torch.sin,
    sp.cos: torch.cos,
    sp.tan: torch.tan,
    sp.sinh: torch.sinh,
    sp.cosh: torch.cosh,
    sp.Abs: torch.abs,
    sp.sign: torch.sign,
    sigmoid: torch.sigmoid,
    relu: torch.relu,
    softplus: F.softplus,
    x_over_expm1: safe_x_over_expm1,
}

COMPARE: dict[type, Callable[[Value, Value], Tensor]] = {
    sp.StrictLessThan: torch.lt,
    sp.LessThan: torch.le,
    sp.StrictGreaterThan: torch.gt,
    sp.GreaterThan: torch.ge,
    sp.Equality: torch.eq,
    sp.Unequality: torch.ne,
}


@dataclass(frozen=True)
class Program:
    """Compiled equations: ``steps`` assign shared subexpressions into ``env``, ``outputs`` read them."""

    steps: tuple[tuple[str, Fn], ...]
    outputs: tuple[Fn, ...]

    def __call__(self, env: dict) -> list[Value]:
        """Evaluate every output; ``env`` maps symbol names to tensors (batched ones ``(B, n)`` or ``(B, 1)``)."""
        for name, fn in self.steps:
            env[name] = fn(env)
        return [fn(env) for fn in self.outputs]


def compile_program(exprs: list[sp.Expr], kinds: Mapping[str, Kind]) -> Program:
    """Compile ``exprs`` (sharing common subexpressions) given every symbol's :class:`Kind`."""
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_cse"), optimizations=None)
    kinds = dict(kinds)
    steps = []
    for symbol, sub in replacements:
        compiler = _Compiler(kinds)
        steps.append((symbol.name, compiler(sub)))
        kinds[symbol.name] = compiler.kind(sub)
    compiler = _Compiler(kinds)
    return Program(tuple(steps), tuple(compiler(e) for e in reduced))


def compile_expr(expr: sp.Expr, kinds: Mapping[str, Kind]) -> Fn:
    """Compile one expression (see :func:`compile_program`)."""
    program = compile_program([expr], kinds)
    return lambda env: program(dict(env))[0]


class _Compiler:
    def __init__(self, kinds: Mapping[str, Kind]) -> None:
        self.kinds, self.memo = kinds, {}

    def kind(self, expr: sp.Basic) -> Kind:
        return infer(expr, self.kinds, self.memo)

    def __call__(self, expr: sp.Basic) -> Fn:
        if isinstance(expr, sp.Symbol):
            return operator.itemgetter(expr.name)
        if not expr.free_symbols:
            value = _constant(expr)
            return lambda env: value
        if expr.is_Add:
            return self._add(expr)
        if expr.is_Mul:
            return self._mul(expr)
        if expr.is_Pow:
            return self._pow(expr)
        if isinstance(expr, matmul):
            return self._matmul(*expr.args)
        if isinstance(expr, (sp.Min, sp.Max)):
            pick = _minimum if isinstance(expr, sp.Min) else _maximum
            return self._nary(pick, expr.args)
        if isinstance(expr, sp.Piecewise):
            return self._piecewise(expr)
        if type(expr) in COMPARE:
            return self._nary(COMPARE[type(expr)], expr.args)
        if isinstance(expr, (sp.And, sp.Or)):
            return self._nary(torch.logical_and if isinstance(expr, sp.And) else torch.logical_or, expr.args)
        if isinstance(expr, sp.Not):
            arg = self(expr.args[0])
            return lambda env: torch.logical_not(arg(env))
        if type(expr) in UNARY:
            op, arg = UNARY[type(expr)], self(expr.args[0])
            return lambda env: op(arg(env))
        raise ValueError(f"cannot compile '{expr}' ({type(expr).__name__}) to torch; rewrite it with the "
                         "documented functions")

    def _nary(self, op: Callable[[Value, Value], Value], args: tuple) -> Fn:
        fns = [self(a) for a in args]
        if len(fns) == 2:
            a, b = fns
            return lambda env: op(a(env), b(env))
        return lambda env: reduce(op, (f(env) for f in fns))

    def _add(self, expr: sp.Add) -> Fn:
        const, terms = expr.as_coeff_add()
        pos, neg = [], []
        for term in terms:
            coeff, rest = term.as_coeff_Mul()
            (neg if coeff < 0 else pos).append(-term if coeff < 0 else term)
        fused = next((p for p in pos if self._is_linear_layer(p)), None)
        if fused is not None:
            pos.remove(fused)
            weight, vector = self(fused.args[0]), self(fused.args[1])
            if not pos and not neg and const == 0:
                return lambda env: F.linear(vector(env), weight(env))
            bias = self._sum(pos, neg, const)

            def linear_layer(env: dict) -> Tensor:  # W @ v + bias, the bias a tensor or a number
                v, b = vector(env), bias(env)
                return recurrent(v, weight(env), b if isinstance(b, Tensor) else v.new_tensor(b))

            return linear_layer
        return self._sum(pos, neg, const)

    def _is_linear_layer(self, term: sp.Basic) -> bool:
        """``W @ v`` with an unbatched matrix ``W`` and a batched vector ``v``: ``F.linear(v, W)``."""
        if not isinstance(term, matmul):
            return False
        w, v = (self.kind(a) for a in term.args)
        return len(w.shape) == 2 and not w.batched and len(v.shape) == 1 and v.batched

    def _sum(self, pos: list, neg: list, const: sp.Number) -> Fn:
        adds, subs, c = [self(p) for p in pos], [self(n) for n in neg], float(const)
        first = adds.pop(0) if adds else None
        if first is None:
            head = subs.pop(0)
            first = lambda env: -head(env)  # noqa: E731

        def total(env: dict) -> Value:
            value = first(env)
            for f in adds:
                value = value + f(env)
            for f in subs:
                value = value - f(env)
            return value + c if c else value

        if not adds and not subs and not c:
            return first
        if len(adds) == 1 and not subs and not c:
            a = adds[0]
            return lambda env: first(env) + a(env)
        if not adds and len(subs) == 1 and not c:
            s = subs[0]
            return lambda env: first(env) - s(env)
        return total

    def _mul(self, expr: sp.Mul) -> Fn:
        coeff, rest = expr.as_coeff_Mul()
        num, den = [], []
        for factor in sp.Mul.make_args(rest):
            if factor.is_Pow and factor.exp.is_Number and factor.exp < 0:
                den.append(factor.base ** -factor.exp)
            else:
                num.append(factor)
        c = float(coeff)
        top = self._product(num)
        if den:
            bottom = self._product(den)
            if top is None:
                return lambda env: c / bottom(env)
            ratio = lambda env: top(env) / bottom(env)  # noqa: E731
        else:
            ratio = top
        if c == 1.0:
            return ratio
        if c == -1.0:
            return lambda env: -ratio(env)
        return lambda env: ratio(env) * c

    def _product(self, factors: list) -> Fn | None:
        fns = [self(f) for f in factors]
        if not fns:
            return None
        if len(fns) == 1:
            return fns[0]
        if len(fns) == 2:
            a, b = fns
            return lambda env: a(env) * b(env)
        return lambda env: reduce(operator.mul, (f(env) for f in fns))

    def _pow(self, expr: sp.Pow) -> Fn:
        base, exp = expr.args
        b = self(base)
        if exp.is_Number:
            e = float(exp)
            if e == 2.0:
                return lambda env: torch.square(b(env))
            if e == 0.5:
                return lambda env: torch.sqrt(b(env))
            if e == -1.0:
                return lambda env: torch.reciprocal(b(env))
            if e == -0.5:
                return lambda env: torch.rsqrt(b(env))
            return lambda env: torch.pow(b(env), e)
        power = self(exp)
        if not base.free_symbols:
            c = _constant(base)
            return lambda env: torch.pow(c, power(env))
        return lambda env: torch.pow(b(env), power(env))

    def _matmul(self, left: sp.Basic, right: sp.Basic) -> Fn:
        a, b = self(left), self(right)
        ka, kb = self.kind(left), self.kind(right)
        if len(ka.shape) == 2 and len(kb.shape) == 1 and kb.batched:
            return lambda env: F.linear(b(env), a(env))
        if len(ka.shape) == 1 and len(kb.shape) == 1:
            if ka.batched or kb.batched:
                return lambda env: (a(env) * b(env)).sum(-1, keepdim=True)
            return lambda env: torch.dot(a(env), b(env))
        return lambda env: torch.matmul(a(env), b(env))

    def _piecewise(self, expr: sp.Piecewise) -> Fn:
        pieces = [(self(e), None if c == sp.true else self(c)) for e, c in expr.args]
        if pieces[-1][1] is not None:
            pieces.append((lambda env: float("nan"), None))
        otherwise = pieces.pop()[0]

        def select(env: dict) -> Value:
            value = otherwise(env)
            for e, c in reversed(pieces):
                value = _where(c(env), e(env), value, env)
            return value

        return select


def _where(cond: Tensor, a: Value, b: Value, env: dict) -> Tensor:
    """``torch.where`` in the precision of the equations' tensors (with two constant branches torch would
    pick its default dtype: float32 constants in a float64 model)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        like = next(v for v in env.values() if isinstance(v, Tensor) and v.is_floating_point())
        a = torch.tensor(a, dtype=like.dtype, device=like.device)
    return torch.where(cond, a, b)


def _constant(expr: sp.Basic) -> float:
    try:
        return float(expr)
    except TypeError as err:
        raise ValueError(f"'{expr}' is not a real number; check the constants in the equations") from err


def _minimum(a: Value, b: Value) -> Value:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return torch.minimum(a, b)
    return torch.clamp(a, max=b) if isinstance(a, Tensor) else torch.clamp(b, max=a)


def _maximum(a: Value, b: Value) -> Value:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return torch.maximum(a, b)
    return torch.clamp(a, min=b) if isinstance(a, Tensor) else torch.clamp(b, min=a)
