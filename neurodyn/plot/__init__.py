"""Matplotlib figures. Every function returns its Axes (``ax.figure`` is the Figure) and never calls ``plt.show()``.

Pass ``ax=`` to draw into an existing figure. Artists carry gids
(``"fixed-points"``, ``"trajectory"``, ``"nullcline-<var>"``, ``"branch-stable"``, ...)
so that what is drawn can be inspected.
"""

from ._common import STABILITY_STYLES, fixed_point_markers
from .behavior import psychometric
from .bifurcation import bifurcation
from .connectivity import connectivity, unit_blocks
from .phase import phase_portrait
from .spectrum import eigenspectrum
from .state_space import trajectories
from .tuning import task_variance

__all__ = [
    "STABILITY_STYLES",
    "bifurcation",
    "connectivity",
    "eigenspectrum",
    "fixed_point_markers",
    "phase_portrait",
    "task_variance",
    "psychometric",
    "trajectories",
    "unit_blocks",
]
