"""Solvers: HOW a vector field is integrated. No neuroscience knowledge."""

from .adaptive import ADAPTIVE, integrate_torchdiffeq
from .fixed_step import STEPPERS, integrate_fixed

__all__ = ["ADAPTIVE", "STEPPERS", "integrate_fixed", "integrate_torchdiffeq"]
