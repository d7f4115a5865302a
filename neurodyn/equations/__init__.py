"""Models written as text equations, compiled by sympy into torch (``Equations``), and nullclines."""

from .model import Equations
from .nullclines import Nullclines, nullclines

__all__ = ["Equations", "Nullclines", "nullclines"]
