"""neurodyn: a differentiable dynamical-systems simulator for computational neuroscience."""

from . import analysis, data, learning, models, plot, regularizers, state, tasks
from .analysis import (
    PCA,
    Bifurcation,
    Branch,
    FixedPoints,
    LineAttractor,
    continuation,
    find_fixed_points,
    input_jacobian,
    jacobian,
    line_attractor,
    pca,
    sample_states,
)
from .data import Recording
from .ensemble import Ensemble, ensemble
from .equations import Equations, nullclines
from .errors import DivergenceError
from .learning import History, fit
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
from .tasks import (
    ContextDependentDecisionMaking,
    DelayedMatchToCategory,
    DelayedMatchToSample,
    ParametricWorkingMemory,
    PerceptualDecisionMaking,
    PeriodicTarget,
    Task,
    TaskBatch,
    from_neurogym,
)
from .trajectory import Trajectory

__version__ = "0.1.0"

__all__ = [
    "PCA",
    "Bifurcation",
    "Branch",
    "FixedPoints",
    "LineAttractor",
    "analysis",
    "continuation",
    "ensemble",
    "find_fixed_points",
    "input_jacobian",
    "jacobian",
    "line_attractor",
    "pca",
    "sample_states",
    "Connectivity",
    "ContextDependentDecisionMaking",
    "DelayedMatchToCategory",
    "DelayedMatchToSample",
    "History",
    "ParametricWorkingMemory",
    "PerceptualDecisionMaking",
    "PeriodicTarget",
    "Recording",
    "Task",
    "TaskBatch",
    "data",
    "fit",
    "from_neurogym",
    "learning",
    "tasks",
    "DivergenceError",
    "DivisiveNormalization",
    "Ensemble",
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
