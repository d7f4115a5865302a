"""The function vocabulary of equation text, as sympy functions.

``exp log sqrt abs tanh sin cos tan sinh cosh`` are sympy's own; ``sigmoid``, ``relu`` and
``softplus`` are defined here with their derivatives (so that symbolic
Jacobians are exact), ``min``/``max`` are sympy's ``Min``/``Max`` and
``where(cond, a, b)`` is ``Piecewise((a, cond), (b, True))``. ``matmul`` is the
``@`` of a matrix parameter and a vector state (``W @ r``), kept unevaluated.
"""

from __future__ import annotations

import sympy as sp


class _Elementary(sp.Function):
    """A function that code printers (``sympy.lambdify`` to numpy, math or mpmath) print in elementary form."""

    def elementary(self) -> sp.Expr:
        raise NotImplementedError

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return printer._print(self.elementary())

    _numpycode = _scipycode = _mpmathcode = _lambdacode = _pythoncode


class sigmoid(_Elementary):  # noqa: N801 - named as written in equations
    r"""Logistic function ``sigmoid(z) = 1 / (1 + exp(-z))``."""

    @classmethod
    def eval(cls, z: sp.Expr) -> sp.Expr | None:
        return 1 / (1 + sp.exp(-z)) if z.is_Number else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    def elementary(self) -> sp.Expr:
        return 1 / (1 + sp.exp(-self.args[0]))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class relu(_Elementary):  # noqa: N801
    r"""Rectifier ``relu(z) = max(z, 0)``; its derivative is ``Heaviside(z)`` with value 0 at 0, as in torch."""

    @classmethod
    def eval(cls, z: sp.Expr) -> sp.Expr | None:
        return sp.Max(z, 0) if z.is_Number else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, z: sp.Expr, **kwargs: object) -> sp.Expr:  # noqa: N802 - sympy's hook name
        return sp.Max(z, 0)

    def elementary(self) -> sp.Expr:
        return sp.Max(self.args[0], 0)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return rf"\operatorname{{relu}}\left({printer._print(self.args[0])}\right)"


class softplus(_Elementary):  # noqa: N801
    r"""``softplus(z) = log(1 + exp(z))``, derivative ``sigmoid(z)``."""

    @classmethod
    def eval(cls, z: sp.Expr) -> sp.Expr | None:
        return sp.log(1 + sp.exp(z)) if z.is_Number else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(z))

    def elementary(self) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"


class matmul(sp.Function):  # noqa: N801
    """``A @ B`` of vectors and matrix parameters, kept unevaluated (the only non-elementwise operation)."""

    nargs = 2

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return "({} @ {})".format(*(printer.parenthesize(a, 50) for a in self.args))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return " ".join(printer.parenthesize(a, 50) for a in self.args)


class x_over_expm1(_Elementary):  # noqa: N801
    r"""The Bernoulli function ``B(u) = u / (exp(u) - 1)``, with its removable singularity ``B(0) = 1`` filled in."""

    @classmethod
    def eval(cls, u: sp.Expr) -> sp.Expr | None:
        if u.is_zero:
            return sp.Integer(1)
        return u / (sp.exp(u) - 1) if u.is_Number else None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u = self.args[0]
        return (sp.exp(u) - 1 - u * sp.exp(u)) / (sp.exp(u) - 1) ** 2

    def elementary(self) -> sp.Expr:
        u = self.args[0]
        return sp.Piecewise((1, sp.Eq(u, 0)), (u / (sp.exp(u) - 1), True))

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        u = printer._print(self.args[0])
        return rf"\frac{{{u}}}{{e^{{{u}}} - 1}}"


def where(cond: sp.Basic, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``where(cond, a, b)``: ``a`` where ``cond`` holds, else ``b`` (elementwise). Both branches are
    computed everywhere, so a branch undefined outside its region (``u**1.5`` for ``u < 0``) gives a NaN
    gradient there: write ``relu(u)**1.5`` instead."""
    if not _is_condition(cond):
        raise TypeError(f"where's first argument must be a comparison such as x > 0; got {cond}")
    return sp.Piecewise((a, cond), (b, True))


def _is_condition(cond: object) -> bool:
    """A comparison, a constant truth value, or and/or/not of conditions (a bare symbol is sympy-Boolean too)."""
    if isinstance(cond, (bool, sp.logic.boolalg.BooleanAtom, sp.core.relational.Relational)):
        return True
    return isinstance(cond, sp.logic.boolalg.BooleanFunction) and all(_is_condition(a) for a in cond.args)


#: name in equation text -> (sympy callable, number of arguments; None: two or more)
FUNCTIONS: dict[str, tuple[object, int | None]] = {
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "abs": (sp.Abs, 1),
    "tanh": (sp.tanh, 1),
    "sigmoid": (sigmoid, 1),
    "relu": (relu, 1),
    "softplus": (softplus, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "tan": (sp.tan, 1),
    "sinh": (sp.sinh, 1),
    "cosh": (sp.cosh, 1),
    "min": (sp.Min, None),
    "max": (sp.Max, None),
    "where": (where, 3),
}

#: constants usable in equation text (a user name of the same spelling takes precedence)
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi}
