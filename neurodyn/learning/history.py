"""The record of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import Tensor


@dataclass
class History:
    """What :func:`neurodyn.fit` measured.

    ``loss[i]`` and ``wall_time[i]`` (seconds since the run began, resumed runs
    included) belong to step ``i``; ``metrics[name][j]`` to step ``eval_steps[j]``
    (for a task its ``metric``, e.g. "accuracy", on a fixed held-out batch;
    for a recording "r2", the mean over neurons of R² on the held-out trials;
    both have "val_loss"). ``r2 (N,)``: per-neuron R² at the last evaluation;
    ``held_out``: indices of the held-out recording trials; ``initial_state
    (1, D)``: the learned initial state when one was fitted (pass it as ``state0``).
    """

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    r2: Tensor | None = None
    held_out: Tensor | None = None
    initial_state: Tensor | None = None

    @property
    def steps(self) -> int:
        """Number of optimizer steps taken."""
        return len(self.loss)

    def last(self, metric: str) -> float:
        """The latest value of ``metric`` ("loss" or a key of ``metrics``)."""
        values = self.loss if metric == "loss" else self.metrics.get(metric)
        if not values:
            raise KeyError(f"no value of {metric!r} recorded yet; recorded: {['loss', *self.metrics]}")
        return values[-1]

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(**state)
