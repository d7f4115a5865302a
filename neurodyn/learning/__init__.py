"""Learning: gradient training and fitting (fit), FORCE/RLS, losses, checkpoints."""

from .checkpoints import load_checkpoint, save_checkpoint
from .fit import StopWhen, batch_loss, fit, model_signal
from .force import ForceResult, train_force
from .history import History
from .losses import cross_entropy_loss, mse_loss, poisson_loss, poisson_rate

__all__ = [
    "ForceResult",
    "History",
    "StopWhen",
    "batch_loss",
    "cross_entropy_loss",
    "fit",
    "load_checkpoint",
    "model_signal",
    "mse_loss",
    "poisson_loss",
    "poisson_rate",
    "save_checkpoint",
    "train_force",
]
