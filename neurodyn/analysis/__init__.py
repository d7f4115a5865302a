"""Analysis: Jacobians, fixed points and their stability, line attractors, continuation, PCA.

Everything works on any Model over its whole flat state (``neurodyn.state.flatten``).
"""

from .continuation import Bifurcation, Branch, continuation
from .fixed_points import FixedPoints, find_fixed_points
from .jacobian import input_jacobian, jacobian
from .line_attractor import LineAttractor, line_attractor
from .pca import PCA, pca
from .sampling import sample_states

__all__ = [
    "PCA",
    "Bifurcation",
    "Branch",
    "FixedPoints",
    "LineAttractor",
    "continuation",
    "find_fixed_points",
    "input_jacobian",
    "jacobian",
    "line_attractor",
    "pca",
    "sample_states",
]
