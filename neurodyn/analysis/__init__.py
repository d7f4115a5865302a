"""Analysis: Jacobians, fixed points and their stability, line attractors, continuation, PCA;
representational similarity, task-variance tuning, selectivity and preferred inputs.

Everything works on any Model over its whole flat state (``neurodyn.state.flatten``).
"""

from .continuation import Bifurcation, Branch, continuation
from .fixed_points import FixedPoints, find_fixed_points
from .jacobian import input_jacobian, jacobian
from .line_attractor import LineAttractor, line_attractor
from .pca import PCA, pca
from .preferred_input import PreferredInput, input_activity, preferred_input
from .sampling import sample_states
from .selectivity import SelectivityOrder, dprime, dprime_by_condition, sort_by_selectivity
from .similarity import ConditionResponses, cka, condition_responses, linear_predictivity, rdm, rsa
from .task_variance import (
    TaskVariance,
    UnitClusters,
    cluster_units,
    epoch_mask,
    silhouette_score,
    task_variance,
    task_variance_from_activity,
)

__all__ = [
    "PCA",
    "ConditionResponses",
    "PreferredInput",
    "SelectivityOrder",
    "TaskVariance",
    "UnitClusters",
    "cka",
    "cluster_units",
    "condition_responses",
    "dprime",
    "dprime_by_condition",
    "epoch_mask",
    "input_activity",
    "linear_predictivity",
    "preferred_input",
    "rdm",
    "rsa",
    "silhouette_score",
    "sort_by_selectivity",
    "task_variance",
    "task_variance_from_activity",
    "Bifurcation",
    "Branch",
    "FixedPoints",
    "LineAttractor",
    "continuation",
    "find_fixed_points",
    "input_jacobian",
    "jacobian",
    "line_attractor",
    "pca",
    "sample_states",
]
