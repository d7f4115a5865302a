"""Models: WHAT evolves. Vector fields with named state, no solver knowledge."""

from .activations import ACTIVATIONS, get_activation
from .base import Model
from .rate_rnn import RateRNN

__all__ = ["ACTIVATIONS", "Model", "RateRNN", "get_activation"]
