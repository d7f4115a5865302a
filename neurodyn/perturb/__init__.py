"""Perturbations of a model, for causal tests of a trained network (primer Sec. 4).

Each function returns a wrapper that is itself a :class:`~neurodyn.models.Model`
(so ``simulate`` with any solver and gradient mode, ``fit``, ``jacobian`` and
``find_fixed_points`` work on it unchanged) and a context manager; the wrapped
model is never modified, and wrappers compose:

- :func:`lesion`: silence units for the whole run (Yang et al. 2019);
- :func:`lesion_connections`: cut the connections between two groups (Andalman et al. 2019);
- :func:`clamp`: optogenetic-style inactivation or activation during a time window;
- :func:`stimulate`: inject a current into chosen units during a time window.
"""

from .connections import ConnectionLesion, lesion_connections
from .lesion import Lesion, lesion
from .window import DRIVE_OFFSETS, Clamp, Stimulation, clamp, stimulate
from .wrapper import Perturbation, UnitPerturbation

__all__ = [
    "Clamp",
    "ConnectionLesion",
    "DRIVE_OFFSETS",
    "Lesion",
    "Perturbation",
    "Stimulation",
    "UnitPerturbation",
    "clamp",
    "lesion",
    "lesion_connections",
    "stimulate",
]
