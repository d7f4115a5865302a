"""neurodyn: a differentiable dynamical-systems simulator for computational neuroscience."""

from . import models, plot, regularizers, state
from .equations import Equations, nullclines
from .errors import DivergenceError
from .models import (
    Connectivity,
    DivisiveNormalization,
    EIRateRNN,
    FitzHughNagumo,
    ForceRNN,
    HebbianRNN,
    LinearIntegrator,
    Model,
    RateRNN,
    STPRateRNN,
    WilsonCowan,
    WongWang,
)
from .regularizers import l1_sparsity, l2_rates, l2_weights, selective_training
from .simulate import simulate
from .sweep import SweepResult, sweep
from .trajectory import Trajectory

__version__ = "0.1.0"

__all__ = [
    "Connectivity",
    "DivergenceError",
    "DivisiveNormalization",
    "EIRateRNN",
    "Equations",
    "FitzHughNagumo",
    "ForceRNN",
    "HebbianRNN",
    "LinearIntegrator",
    "Model",
    "RateRNN",
    "STPRateRNN",
    "SweepResult",
    "Trajectory",
    "WilsonCowan",
    "WongWang",
    "l1_sparsity",
    "l2_rates",
    "l2_weights",
    "models",
    "nullclines",
    "plot",
    "regularizers",
    "selective_training",
    "simulate",
    "state",
    "sweep",
]
