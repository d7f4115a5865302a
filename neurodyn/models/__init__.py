"""Models: WHAT evolves. Vector fields with named state, no solver knowledge."""

from .activations import ACTIVATIONS, get_activation
from .base import Model
from .classic import ClassicModel, FitzHughNagumo, LinearIntegrator, WilsonCowan, WongWang
from .connectivity import INITS, Connectivity
from .ei_rnn import EIRateRNN, PopulationActivation
from .force import ForceRNN
from .hebbian import HebbianRNN
from .normalization import DivisiveNormalization
from .rate_rnn import RateRNN
from .stp import STPRateRNN

__all__ = [
    "ACTIVATIONS",
    "ClassicModel",
    "Connectivity",
    "DivisiveNormalization",
    "EIRateRNN",
    "FitzHughNagumo",
    "ForceRNN",
    "HebbianRNN",
    "INITS",
    "LinearIntegrator",
    "Model",
    "PopulationActivation",
    "RateRNN",
    "STPRateRNN",
    "WilsonCowan",
    "WongWang",
    "get_activation",
]
