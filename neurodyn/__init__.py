"""neurodyn: a differentiable dynamical-systems simulator for computational neuroscience."""

from . import models, state
from .errors import DivergenceError
from .models import Model, RateRNN
from .simulate import simulate
from .trajectory import Trajectory

__version__ = "0.1.0"

__all__ = ["DivergenceError", "Model", "RateRNN", "Trajectory", "models", "simulate", "state"]
