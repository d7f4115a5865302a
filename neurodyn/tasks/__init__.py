"""Cognitive tasks: batches of trials ``TaskBatch(t, x, y, mask, info)`` for training networks."""

from .base import Task, TaskBatch
from .decision import ContextDependentDecisionMaking, PerceptualDecisionMaking
from .matching import DelayedMatchToCategory, DelayedMatchToSample
from .neurogym import NeurogymTask, from_neurogym
from .periodic import PeriodicTarget
from .working_memory import ParametricWorkingMemory

__all__ = [
    "ContextDependentDecisionMaking",
    "DelayedMatchToCategory",
    "DelayedMatchToSample",
    "NeurogymTask",
    "ParametricWorkingMemory",
    "PerceptualDecisionMaking",
    "PeriodicTarget",
    "Task",
    "TaskBatch",
    "from_neurogym",
]
