"""Cutting the connections from one group of units to another (Andalman et al. 2019; primer Sec. 4)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..models.base import Model
from ..models.connectivity import Connectivity
from ..selection import unit_indices
from .wrapper import Perturbation


class _Calls(nn.Module):
    """``forward(name, *args) = model.name(*args)``, so that ``functional_call`` can run any method."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, name: str, *args: Any) -> Any:
        return getattr(self.model, name)(*args)


def recurrent_matrix(model: Model) -> tuple[str, Connectivity]:
    """The path and module of the model's one recurrent matrix; ValueError when there is none or several."""
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, Connectivity)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no recurrent matrix to cut (a Connectivity submodule, as in "
                         "RateRNN, EIRateRNN, STPRateRNN, ForceRNN and HebbianRNN); lesion_connections cannot "
                         "apply to it")
    if len(found) > 1:
        raise ValueError(f"{type(model).__name__} has {len(found)} recurrent matrices "
                         f"({[name for name, _ in found]}); lesion_connections needs exactly one")
    return found[0]


class ConnectionLesion(Perturbation):
    r"""``model`` with the synapses ``W[post, pre]`` cut, for every ``post`` in ``post`` and ``pre`` in ``pre``.

    The model runs through ``torch.func.functional_call`` with its
    :class:`~neurodyn.models.Connectivity` mask ``M`` and fixed part
    ``W_fix`` multiplied by the cut mask ``C`` (``C[post, pre] = 0``, else 1)::

        W' = (M ⊙ C) ⊙ S(W~) + W_fix ⊙ C

    which equals the model with those entries of ``W`` zeroed, keeps Dale's
    law and any sparsity mask, and lets gradients reach ``W~`` (zero on the
    cut synapses). A :class:`~neurodyn.models.HebbianRNN` grows no fast weight
    on a cut synapse; a :class:`~neurodyn.models.ForceRNN`'s output feedback
    ``w_fb W_out`` is a readout loop, not a synapse, and is not cut. The
    buffer ``keep`` holds ``C``.
    """

    def __init__(self, model: Model, pre: Any, post: Any) -> None:
        super().__init__(model)
        self.path, connectivity = recurrent_matrix(model)
        n = connectivity.n
        pre = unit_indices(pre, n, "pre", "the recurrent matrix")
        post = unit_indices(post, n, "post", "the recurrent matrix")
        keep = torch.ones(n, n, dtype=model.dtype)
        keep[post[:, None], pre[None, :]] = 0
        self.register_buffer("keep", keep.to(model.device))
        object.__setattr__(self, "_calls", _Calls(model))  # not a submodule: `.model` already is

    def _call(self, name: str, *args: Any) -> Any:
        connectivity = self.model.get_submodule(self.path)
        prefix = f"model.{self.path}." if self.path else "model."
        cut = {prefix + "mask": self.keep if connectivity.mask is None else connectivity.mask * self.keep}
        if connectivity.W_fix is not None:
            cut[prefix + "W_fix"] = connectivity.W_fix * self.keep
        return functional_call(self._calls, cut, (name, *args))

    def input_drive(self, x: Tensor) -> Tensor:
        return self._call("input_drive", x)

    def vector_field(self, t: Tensor | float, state: Any, drive: Tensor) -> Any:
        return self._call("vector_field", t, state, drive)

    def state_jacobian(self, t: Tensor | float, state: Any, drive: Tensor) -> Tensor | None:
        return self._call("state_jacobian", t, state, drive)

    def output(self, state: Any) -> Tensor | None:
        return self._call("output", state)

    def initial_state(self, batch_size: int = 1) -> Any:
        return self._call("initial_state", batch_size)


def lesion_connections(model: Model, pre: Any, post: Any) -> ConnectionLesion:
    """Cut every recurrent connection from the units ``pre`` to the units ``post`` (Andalman et al. 2019).

    ``pre``/``post``: ints, an integer tensor or a boolean mask over the
    ``n`` units of the model's recurrent matrix. Returns a wrapper model (also
    a context manager) equal to ``model`` with ``W[post, pre] = 0``; ``model``
    itself is never changed. See :class:`ConnectionLesion`.
    """
    return ConnectionLesion(model, pre, post)
