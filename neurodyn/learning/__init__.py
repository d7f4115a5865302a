"""Learning: gradient training and fitting (fit), FORCE/RLS, losses, checkpoints."""

from .checkpoints import load_checkpoint, save_checkpoint
from .fit import StopWhen, batch_loss, fit, model_signal
from .history import History
from .losses import cross_entropy_loss, mse_loss, poisson_loss, poisson_rate
from .regularizers import activity_l2, weight_l2

__all__ = [
    "History",
    "StopWhen",
    "activity_l2",
    "batch_loss",
    "cross_entropy_loss",
    "fit",
    "load_checkpoint",
    "model_signal",
    "mse_loss",
    "poisson_loss",
    "poisson_rate",
    "save_checkpoint",
    "weight_l2",
]
