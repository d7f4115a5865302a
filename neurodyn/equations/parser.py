"""Parse equation text into sympy expressions, safely.

One statement per line: ``dX/dt = expr`` defines the state variable ``X``
(state order is the order of appearance) and ``name = expr`` an auxiliary
expression substituted into the lines that follow; ``#`` starts a comment.
Each right-hand side is checked on Python's syntax tree (``ast.parse``, which
runs nothing) against a whitelist — numbers, known names, ``+ - * / ** ^ @``,
comparisons, ``& | ~`` and calls of the documented functions — so attribute
access, indexing, strings, lambdas and names starting with ``_`` (such as
``__import__``) are rejected before sympy's ``parse_expr`` sees the text, and
``parse_expr`` runs with only the names of the equations and no builtins.
"""

from __future__ import annotations

import ast
import keyword
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp
from sympy.parsing.sympy_parser import auto_number, parse_expr

from .functions import CONSTANTS, FUNCTIONS, matmul
from .shapes import SCALAR, Kind, infer

RESERVED = frozenset({"t", *FUNCTIONS, "Integer", "Float", "Rational"})  # the last: sympy's number constructors
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
STATEMENT = re.compile(r"\s*(?P<lhs>[^=<>!]+?)\s*=(?!=)\s*(?P<rhs>.*?)\s*\Z")
DERIVATIVE = re.compile(r"d\s*(?P<name>[A-Za-z_]\w*)\s*/\s*dt\Z")
_MATMUL, _EQ, _NE = "_matmul", "_eq", "_ne"
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.BitAnd, ast.BitOr)
_UNARY = (ast.USub, ast.UAdd, ast.Invert)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


@dataclass(frozen=True)
class Line:
    """One statement: ``kind`` is "derivative" or "aux"; ``expr`` uses earlier auxiliaries as symbols."""

    number: int
    text: str
    kind: str
    target: str
    expr: sp.Expr


@dataclass(frozen=True)
class Parsed:
    """The parsed system: states in order, statements, and each state's right-hand side with auxiliaries substituted."""

    states: tuple[str, ...]
    lines: tuple[Line, ...]
    rhs: dict[str, sp.Expr]
    symbols: dict[str, sp.Symbol]
    kinds: dict[str, Kind]


def line_error(number: int, text: str, problem: str) -> ValueError:
    """A ValueError quoting line ``number`` of the equations."""
    return ValueError(f"line {number}: {text.strip()!r}: {problem}")


def parse(text: str, params: Mapping[str, tuple[int, ...]], inputs: tuple[str, ...],
          state_sizes: Mapping[str, int]) -> Parsed:
    """Parse ``text`` given the parameter shapes, the input names and the sizes of vector states."""
    statements = _statements(text)
    states: dict[str, int] = {}
    for number, raw, lhs, _ in statements:
        match = DERIVATIVE.match(lhs)
        if match:
            name = match["name"]
            if name in states:
                raise line_error(number, raw, f"d{name}/dt is already defined on line {states[name]}; "
                                              "give each state variable one equation")
            _check_name(name, number, raw, "a state variable")
            states[name] = number
    if not states:
        raise ValueError("the equations define no state variable; write one line 'dX/dt = ...' per state variable")
    for name in state_sizes:
        if name not in states:
            raise ValueError(f"state_sizes names {name!r} but no line 'd{name}/dt = ...' defines its derivative; "
                             f"the state variables are {list(states)}")
    for group, names in (("parameter", params), ("input", inputs)):
        for name in names:
            if name in states:
                raise line_error(states[name], _raw(statements, states[name]),
                                 f"{name!r} is both a state variable and an {group}; rename one")
    for name in inputs:
        if name in params:
            raise ValueError(f"input {name!r} clashes with the parameter {name!r}{first_use(text, name)}; "
                             "rename the input or the parameter")

    symbols = {name: sp.Symbol(name, real=True) for name in (*states, *params, *inputs, "t")}
    kinds = {name: Kind((state_sizes.get(name, 1),) if name in state_sizes else (), True) for name in states}
    kinds.update({name: Kind(tuple(shape), False) for name, shape in params.items()})
    kinds.update({name: Kind((), True) for name in inputs})
    kinds["t"] = SCALAR
    aux_lines = {lhs: number for number, _, lhs, _ in statements if not DERIVATIVE.match(lhs)}
    known: dict[str, sp.Basic] = {**CONSTANTS, **symbols}
    substitutions: dict[sp.Symbol, sp.Expr] = {}
    lines, rhs = [], {}
    for number, raw, lhs, source in statements:
        match = DERIVATIVE.match(lhs)
        target = match["name"] if match else lhs
        if not match:
            _check_name(target, number, raw, "an auxiliary expression")
            if target in known and target not in CONSTANTS:
                what = "a state variable" if target in states else "a parameter" if target in params else \
                    "an input" if target in inputs else "the time" if target == "t" else \
                    f"an auxiliary expression (line {_aux_number(lines, target)})"
                raise line_error(number, raw, f"{target!r} is already {what}; give the expression another name")
        expr = _parse_expression(source, number, raw, known, aux_lines)
        try:
            kind = infer(expr, kinds)
        except ValueError as err:
            raise line_error(number, raw, str(err)) from None
        if match:
            size = state_sizes.get(target)
            if kind.shape not in ((), (size,) if size else ()):
                want = f"a scalar or shape ({size},)" if size else "a scalar"
                raise line_error(number, raw, f"the right-hand side has shape {kind.shape} but {target} needs "
                                              f"{want}; fix the shapes of the parameters it uses")
            rhs[target] = expr.xreplace(substitutions)
        else:
            symbol = sp.Symbol(target, real=True)
            known[target], kinds[target] = symbol, kind
            substitutions[symbol] = expr.xreplace(substitutions)
        lines.append(Line(number, raw.strip(), "derivative" if match else "aux", target, expr))
    return Parsed(tuple(states), tuple(lines), {s: rhs[s] for s in states}, symbols, kinds)


def _statements(text: str) -> list[tuple[int, str, str, str]]:
    """``(number, raw line, lhs, rhs)`` of every non-empty line."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        code = raw.split("#", 1)[0]
        if not code.strip():
            continue
        match = STATEMENT.match(code)
        if not match or not match["rhs"]:
            raise line_error(number, raw, "expected 'dX/dt = expression' or 'name = expression' (each equation "
                                          "on one line)")
        lhs = match["lhs"].strip()
        if not (DERIVATIVE.match(lhs) or NAME.match(lhs)):
            raise line_error(number, raw, f"the left-hand side {lhs!r} must be 'dX/dt' or a name "
                                          "(letters, digits and _, starting with a letter); write "
                                          "tau dX/dt = f as 'dX/dt = f / tau'")
        out.append((number, raw, lhs, match["rhs"]))
    return out


def _raw(statements: list, number: int) -> str:
    return next(raw for n, raw, _, _ in statements if n == number)


def first_use(text: str, name: str) -> str:
    """`` (used on line k: '...')`` for the first right-hand side of ``text`` that mentions ``name``, else ""."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, raw in enumerate(text.splitlines(), start=1):
        match = STATEMENT.match(raw.split("#", 1)[0])
        if match and pattern.search(match["rhs"]):
            return f" (used on line {number}: {raw.strip()!r})"
    return ""


def _aux_number(lines: list[Line], name: str) -> int:
    return next(line.number for line in lines if line.target == name)


def valid_name(name: object) -> bool:
    """Whether ``name`` may name a state, parameter, input or auxiliary expression."""
    return isinstance(name, str) and bool(NAME.match(name)) and not keyword.iskeyword(name) and name not in RESERVED


def _check_name(name: str, number: int, raw: str, what: str) -> None:
    if not NAME.match(name) or keyword.iskeyword(name):
        raise line_error(number, raw, f"{name!r} is not a valid name for {what}; use letters, digits and _, "
                                      "starting with a letter")
    if name in RESERVED:
        raise line_error(number, raw, f"{name!r} is reserved (time or a function); choose another name for {what}")


def _parse_expression(source: str, number: int, raw: str, known: Mapping[str, sp.Basic],
                      aux_lines: Mapping[str, int]) -> sp.Expr:
    try:  # ^ is power, with the precedence of ** (as in papers and sympy's convert_xor)
        tree = ast.parse(source.replace("^", "**"), mode="eval")
    except SyntaxError as err:
        raise line_error(number, raw, f"syntax error ({err.msg}); write a Python-style arithmetic "
                                      "expression") from None
    _Checker(number, raw, known, aux_lines).visit(tree)
    code = ast.unparse(_Rewriter().visit(tree))
    local = {**known, **{name: fn for name, (fn, _) in FUNCTIONS.items()}, _MATMUL: matmul, _EQ: sp.Eq, _NE: sp.Ne}
    glob = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational, "__builtins__": {}}
    try:
        expr = parse_expr(code, local_dict=local, global_dict=glob, transformations=(auto_number,))
    except Exception as err:  # any failure of sympy on validated text is the user's expression
        raise line_error(number, raw, f"cannot build the expression ({err}); check the operands of each "
                                      "operator and function") from None
    if not isinstance(expr, sp.Expr) or expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise line_error(number, raw, f"the right-hand side evaluates to {expr}, not a finite expression; "
                                      "check for division by zero and for comparisons outside where()")
    if expr.has(sp.I):
        raise line_error(number, raw, f"the right-hand side evaluates to {expr}, which is complex; check the "
                                      "constants (the log or square root of a negative number?)")
    return expr


class _Checker(ast.NodeVisitor):
    """Reject every syntax node outside the whitelist, naming it and the fix."""

    def __init__(self, number: int, raw: str, known: Mapping[str, sp.Basic], aux_lines: Mapping[str, int]) -> None:
        self.number, self.raw, self.known, self.aux_lines = number, raw, known, aux_lines

    def fail(self, problem: str) -> None:
        raise line_error(self.number, self.raw, problem)

    def generic_visit(self, node: ast.AST) -> None:
        allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
                   ast.Load, *_BINARY, *_UNARY, *_COMPARE)
        if isinstance(node, ast.Attribute):
            self.fail("attribute access ('.') is not allowed in equations")
        if isinstance(node, (ast.BoolOp, ast.Not)):
            self.fail("'and', 'or' and 'not' are not allowed; combine comparisons with &, | and ~, "
                      "e.g. where((x > 0) & (y > 0), a, b)")
        if not isinstance(node, allowed):
            self.fail(f"{type(node).__name__} syntax is not allowed in equations; use numbers, names, "
                      f"+ - * / ** @, comparisons and the functions {sorted(FUNCTIONS)}")
        super().generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:  # noqa: N802 - ast's hook name
        if len(node.ops) != 1:
            self.fail("chained comparisons such as 0 < x < 1 are not allowed; write (0 < x) & (x < 1)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:  # noqa: N802
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            self.fail(f"the constant {node.value!r} is not allowed; only real numbers are")

    def visit_BinOp(self, node: ast.BinOp) -> None:  # noqa: N802
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            self._logical_operands(node.left, node.right)
        try:
            _constant_value(node)
        except OverflowError as err:
            self.fail(f"the constant {err} is beyond float64's range; write a smaller number")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:  # noqa: N802
        if isinstance(node.op, ast.Invert):
            self._logical_operands(node.operand)
        self.generic_visit(node)

    def _logical_operands(self, *operands: ast.AST) -> None:
        """``& | ~`` combine conditions: on numbers Python would compute bitwise (``~2`` is -3)."""
        try:
            numbers = [_constant_value(a) for a in operands]
        except OverflowError:
            numbers = [0.0]
        if any(v is not None for v in numbers):
            self.fail("& | ~ combine comparisons (e.g. (x > 0) & (y < 1)), not numbers")

    def visit_Name(self, node: ast.Name) -> None:  # noqa: N802
        name = node.id
        if name.startswith("_"):
            self.fail(f"names starting with '_' (such as {name!r}) are not allowed in equations")
        if not NAME.match(name):
            self.fail(f"{name!r} is not a valid name; use ASCII letters, digits and _, starting with a letter "
                      "(e.g. tau for \u03c4)")
        if name in FUNCTIONS:
            self.fail(f"the function {name!r} must be called, e.g. {name}(x)")
        if name not in self.known:
            later = self.aux_lines.get(name)
            if later is not None and later >= self.number:
                self.fail(f"{name!r} is defined on line {later}, at or below this line; move its definition above")
            self.fail(f"unknown symbol {name!r}; give it a value in params={{{name!r}: ...}}, list it in inputs=, "
                      f"define it above with '{name} = ...', or, if it is a state variable, add a line "
                      f"'d{name}/dt = ...'")

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        if not isinstance(node.func, ast.Name):
            self.visit(node.func)  # reports attribute access and the like first
            self.fail(f"only the functions {sorted(FUNCTIONS)} can be called")
        name = node.func.id
        if name.startswith("_"):
            self.fail(f"names starting with '_' (such as {name!r}) are not allowed in equations")
        if name not in FUNCTIONS:
            self.fail(f"{name!r} is not a function; the functions are {sorted(FUNCTIONS)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(f"{name}() takes positional arguments only")
        arity = FUNCTIONS[name][1]
        if (arity is None and len(node.args) < 2) or (arity is not None and len(node.args) != arity):
            self.fail(f"{name}() takes {'two or more' if arity is None else arity} argument"
                      f"{'' if arity == 1 else 's'}; got {len(node.args)}")
        for arg in node.args:
            self.visit(arg)


def _constant_value(node: ast.AST) -> float | None:
    """The float value of a number-only subtree (None if it holds a name or call); raises OverflowError when
    it leaves float64's range, before sympy would compute it exactly (``10**10**10`` has 10^10 digits)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _constant_value(node.operand)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow))):
        return None
    a, b = _constant_value(node.left), _constant_value(node.right)
    if a is None or b is None:
        return None
    try:
        value = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
                 ast.Pow: operator.pow}[type(node.op)](a, b)
    except ZeroDivisionError:
        return None  # reported as not finite once sympy has built the expression
    except OverflowError:
        value = math.inf
    if isinstance(value, complex):
        return None  # (-8)**0.5: reported as complex once sympy has built the expression
    if not math.isfinite(value):
        raise OverflowError(ast.unparse(node))
    return value


class _Rewriter(ast.NodeTransformer):
    """``a @ b`` -> ``_matmul(a, b)``; ``a == b``, ``a != b`` -> ``Eq(a, b)``, ``Ne(a, b)`` (Python's would compare
    the expressions structurally and give a bool)."""

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        if isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            name = _EQ if isinstance(node.ops[0], ast.Eq) else _NE
            return ast.Call(func=ast.Name(name, ast.Load()), args=[node.left, node.comparators[0]], keywords=[])
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:  # noqa: N802
        node = self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):
            return ast.Call(func=ast.Name(_MATMUL, ast.Load()), args=[node.left, node.right], keywords=[])
        return node
