"""K networks of one architecture run as one model (torch.func ``stack_module_state`` + ``vmap``).

The primer's advice (Sec. 5) is to train many networks with different seeds and
hyperparameters before drawing a conclusion. An :class:`Ensemble` stacks K
same-architecture models' parameters along a leading axis and evaluates every
model method with ``vmap`` over it (swapping the stacked tensors into one copy of the
model, as ``torch.func.functional_call`` does), so the K networks
advance together in one batched call per solver step. For the plain
:class:`~neurodyn.models.RateRNN` (its own equations and a named elementwise
activation) the vector field, drive and readout are written directly as batched
matrix products over the stacked weights (``torch.bmm``/``baddbmm``), which skips vmap's
per-call overhead; every other model takes the general vmap path.

An Ensemble is itself a :class:`~neurodyn.models.Model`: its batch holds K*B rows,
network-major (rows ``k*B ... (k+1)*B - 1`` belong to network k), so
``neurodyn.simulate(ens, t, ens.tile(x))`` integrates all K at once, each with its
own parameters, and ``ens.split(tensor)`` gives ``(K, B, ...)`` back.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import stack_module_state, vmap

from .analysis.fixed_points import FixedPoints, find_fixed_points
from .errors import ArgumentTypeError
from .learning.fit import fit
from .learning.history import History
from .models.activations import ACTIVATIONS, slope_of
from .models.base import Model
from .models.connectivity import Connectivity
from .models.rate_rnn import RateRNN
from .models.rate_scan import rate_scan
from .simulate import simulate
from .state import flatten
from .tasks.base import Task, TaskBatch
from .trajectory import Trajectory


class Ensemble(Model):
    """K same-architecture models with stacked parameters, run together.

    ``Ensemble(models)`` copies the models' parameters and buffers into ``(K, ...)``
    tensors (the originals are left untouched; see :meth:`unstack` to get trained
    copies back). Every method of the member models is evaluated for all K at once:
    ``F_k(t, state_k, drive_k) = model_k.vector_field(...)`` with ``vmap`` over k.

    Rows: inputs and states have K*B rows, network-major; an input with 1 row is
    shared by all networks. :meth:`tile` repeats a B-row tensor for every network,
    :meth:`split` reshapes ``(K*B, ...)`` to ``(K, B, ...)``.
    """

    def __init__(self, models: Sequence[Model]) -> None:
        super().__init__()
        models = _check_members(models)
        first = models[0]
        self.size = len(models)
        self.state_vars = dict(first.state_vars)
        self.n_in, self.n_out = first.n_in, first.n_out
        self._shapes = dict(first.state_shapes)
        params, buffers = stack_module_state(list(models))
        self._names = list(params) + list(buffers)
        self.stacked = nn.ParameterDict()
        for name, value in params.items():
            trainable = dict(first.named_parameters())[name].requires_grad
            self.stacked[_key(name)] = nn.Parameter(value.detach().clone(), requires_grad=trainable)
        for name, value in buffers.items():
            self.register_buffer(_key(name), value.detach().clone())
        member = copy.deepcopy(first)
        object.__setattr__(self, "_member", member)  # not a submodule: its tensors are swapped in on every call
        self._slots = []  # (owning module, "_parameters" or "_buffers", leaf name) of each stacked tensor
        for name in self._names:
            owner, _, leaf = name.rpartition(".")
            module = member.get_submodule(owner)
            self._slots.append((module, "_parameters" if leaf in module._parameters else "_buffers", leaf))
        self._batched_rate_rnn = _is_plain_rate_rnn(member)  # then the RateRNN equations run as batched matmuls
        # Connectivity.forward is W~ itself when a network has no mask, Dale's-law signs or fixed part
        self._plain_recurrent = [n for n in self._names if n.startswith("recurrent.")] == ["recurrent.weight"]
        _check_timescales(models, self._each)

    def __len__(self) -> int:
        return self.size

    def check_parameters(self) -> None:
        if type(self._member).check_parameters is not Model.check_parameters:  # (each call swaps K tensor sets)
            self._each("check_parameters")

    def trained_parts(self) -> dict[int, Tensor]:
        """For each member :class:`~neurodyn.models.connectivity.Connectivity`: the id of its stacked raw weight
        ``(K, n, n)`` and its stacked trained part ``M ⊙ S(W~)`` (what the weight penalties count)."""
        return {id(self._stacked(f"{path}.weight")): self._vmap("trainable_part", within=f"{path}.")
                for path, module in self._member.named_modules() if isinstance(module, Connectivity)}

    def _apply(self, fn: Callable, recurse: bool = True) -> Ensemble:  # .to(), .double(): move the member copy too
        self._member._apply(fn)
        return super()._apply(fn, recurse)

    # --- stacked tensors and vmapped calls -----------------------------------------------------

    def _tensors(self, within: str = "") -> list[Tensor]:
        """The ``(K, ...)`` stacked parameters and buffers (of submodule ``within``), in the order of ``_names``."""
        return [self._stacked(name) for name in self._names if name.startswith(within)]

    def _stacked(self, name: str) -> Tensor:
        """The ``(K, ...)`` stack of the member tensor ``name`` (dotted, e.g. "recurrent.weight")."""
        key = _key(name)
        return self.stacked[key] if key in self.stacked else getattr(self, key)

    def _call(self, tensors: Sequence[Tensor], method: str, *args: Any, within: str = "") -> Any:
        """``method`` (or property) of the member (or its submodule ``within``) holding ``tensors``.

        A lighter ``functional_call``: ``tensors`` replace the member's tensors whose names start with
        ``within``, in the order of ``_names``, for the duration of the call.
        """
        slots = [slot for name, slot in zip(self._names, self._slots, strict=True) if name.startswith(within)]
        saved = [getattr(module, kind)[leaf] for module, kind, leaf in slots]
        try:
            for (module, kind, leaf), value in zip(slots, tensors, strict=True):
                getattr(module, kind)[leaf] = value
            attr = getattr(self._member.get_submodule(within.rstrip(".")), method)
            return attr(*args) if callable(attr) else attr
        finally:
            for (module, kind, leaf), value in zip(slots, saved, strict=True):
                getattr(module, kind)[leaf] = value

    def _vmap(self, method: str, *args: Any, in_dims: tuple[int | None, ...] = (), within: str = "") -> Any:
        """``method`` of every member (or of its submodule ``within``, e.g. "recurrent."): ``args``
        batched over k where ``in_dims`` says 0, shared where None."""
        def call(tensors: list[Tensor], *a: Any) -> Any:
            return self._call(tensors, method, *a, within=within)

        return vmap(call, in_dims=(0, *in_dims), randomness="different")(self._tensors(within), *args)

    def _each(self, method: str, *args: Any) -> list[Any]:
        """``method`` of each member in turn (for non-tensor results such as ``timescale``)."""
        tensors = self._tensors()
        return [self._call([v[i] for v in tensors], method, *args) for i in range(self.size)]

    # --- row layout ------------------------------------------------------------------------------

    def tile(self, x: Tensor) -> Tensor:
        """Repeat a ``(B, ...)`` tensor for every network: ``(K*B, ...)``, network-major."""
        if not isinstance(x, Tensor) or x.dim() == 0:
            raise ArgumentTypeError(f"tile needs a (B, ...) tensor; got {type(x).__name__}")
        return x.repeat(self.size, *([1] * (x.dim() - 1)))

    def split(self, x: Tensor) -> Tensor:
        """``(K*B, ...)`` rows, network-major, as ``(K, B, ...)``."""
        if not isinstance(x, Tensor) or x.dim() == 0 or x.shape[0] % self.size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"split needs a (K*B, ...) tensor with K={self.size}; got {got}")
        return x.reshape(self.size, x.shape[0] // self.size, *x.shape[1:])

    def _rows(self, x: Tensor, name: str) -> Tensor:
        if x.shape[0] % self.size:
            if name == "x" and not x.any():  # likely simulate's zero input for x=None, made with state0's rows
                name = "x (all zero: with x=None, simulate makes it with state0's rows)"
            raise ValueError(f"{name} has {x.shape[0]} rows but an Ensemble of K={self.size} networks needs K*B rows, "
                             "network-major (ens.tile(x) gives every network the same B trials), or 1 shared row; "
                             "functions that evaluate one state at a time (jacobian, find_fixed_points) need "
                             "ens.find_fixed_points or the networks of ens.unstack()")
        return self.split(x)

    # --- the Model interface -----------------------------------------------------------------------

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def input_drive(self, x: Tensor) -> Tensor:
        """Each network's drive ``(K*B, ...)``; a 1-row ``x`` gives ``(K, ...)``, one row per network."""
        if self._batched_rate_rnn:
            rows = x.expand(self.size, *x.shape) if x.shape[0] == 1 else self._rows(x, "x")
            return self._linear(rows, "W_in", "b" if self._member.b is not None else "b_fixed")
        if x.shape[0] == 1:
            out = self._vmap("input_drive", x, in_dims=(None,))
        else:
            out = self._vmap("input_drive", self._rows(x, "x"), in_dims=(0,))
        return out.flatten(0, 1)

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        parts = type(state)(*(self._rows(s, "state") for s in state))
        if self._batched_rate_rnn:
            return self.State(self._rate_derivative(parts[0], self._rows(drive, "drive")).flatten(0, 1))
        out = self._vmap("vector_field", t, parts, self._rows(drive, "drive"), in_dims=(None, 0, 0))
        return type(out)(*(o.flatten(0, 1) for o in out))

    def output(self, state: Any) -> Tensor | None:
        if not self.n_out:
            return None
        parts = type(state)(*(self._rows(s, "state") for s in state))
        if self._batched_rate_rnn:
            return self._linear(parts[0], "W_out", "b_out")
        out = self._vmap("output", parts, in_dims=(0,))
        return out.flatten(0, 1)

    # --- the RateRNN equations as batched matrix products over the K stacked weights -------------

    def _linear(self, x: Tensor, weight: str, bias: str) -> Tensor:
        """``F.linear(x_k, weight_k, bias_k)`` of every network k for ``x`` ``(K, B, ..., m)``: ``(K*B, ..., n)``."""
        w, b = self._stacked(weight), self._stacked(bias)
        by_time = x.permute(2, 0, 1, 3) if x.dim() == 4 else None  # (S, K, B, m) of x (K, B, S, m)
        if by_time is not None and by_time.is_contiguous():  # Drive.on_steps' time-major samples: keep that layout
            out = torch.matmul(by_time, w.transpose(1, 2)).add_(b.unsqueeze(1))  # (S, K, B, n), no transposing copy
            return out.permute(1, 2, 0, 3).flatten(0, 1)
        out = _StackedLinear.apply(x.flatten(1, -2), w, b)
        return out.reshape(-1, *x.shape[2:-1], out.shape[-1])

    def _recurrent_weights(self) -> Tensor:
        """The effective ``(K, n, n)`` matrices, ``Connectivity.forward`` of each network (no vmap when plain)."""
        if self._plain_recurrent:
            return self._stacked("recurrent.weight")
        return self._vmap("forward", within="recurrent.")

    def _rate_derivative(self, r: Tensor, drive: Tensor) -> Tensor:
        """RateRNN's ``dr/dt = (-r + f(W r + drive)) / tau`` (primer Eq. 26) of every network, ``r`` ``(K, B, n)``."""
        W = self._recurrent_weights()
        current = torch.baddbmm(drive, r, W.transpose(1, 2))
        rate = self._member.activation(current)
        tau = self._stacked("tau").reshape(self.size, 1, -1)  # each network's tau is () or (n,)
        if torch.is_grad_enabled():
            return (rate - r) / tau
        return rate.sub_(r).div_(tau)  # no graph to keep (e.g. fit's evaluation): reuse the fresh tensor

    def euler_scan(self) -> Callable[[Tensor, Tensor, list[float], Tensor | None], Tensor] | None:
        """RateRNN's fused Euler scan (:mod:`neurodyn.models.rate_scan`) over the K stacked weights at once."""
        slope = slope_of(self._member.activation) if self._batched_rate_rnn else None
        if slope is None:
            return None

        def scan(y0: Tensor, drive: Tensor, h: list[float], noise: Tensor | None) -> Tensor:
            r0 = self._rows(y0, "state0")
            per_network = (len(h), self.size, -1, r0.shape[-1])
            ys = rate_scan(r0, drive.reshape(per_network), h, None if noise is None else noise.reshape(per_network),
                           W=self._recurrent_weights(), tau=self._stacked("tau").reshape(self.size, 1, -1),
                           f=self._member.activation, slope=slope, match_generic=False)
            return ys.flatten(1, 2)

        return scan

    def initial_state(self, batch_size: int = 1) -> Any:
        """Each network's initial state for ``batch_size // K`` trials (``batch_size`` must be a multiple of K)."""
        if batch_size % self.size:
            raise ValueError(f"an Ensemble of K={self.size} networks needs a batch of K*B rows; got {batch_size} "
                             "(pass state0=ens.initial_state(K * B), or use ens.simulate, which tiles x and state0)")
        if type(self._member).initial_state is Model.initial_state:  # the members' zeros, without K calls
            return super().initial_state(batch_size)
        states = self._each("initial_state", batch_size // self.size)
        return self.State(*(torch.cat(parts) for parts in zip(*states, strict=True)))

    @property
    def timescale(self) -> float:
        if self._batched_rate_rnn and type(self._member).timescale is RateRNN.timescale:  # the smallest tau of all
            return float(self._stacked("tau").detach().min())
        return min(float(v) for v in self._each("timescale"))

    def state_tau(self) -> Tensor:
        """Each network's time constants ``(K, D)`` (one row per network's block of rows), ``(D,)`` if all equal."""
        return self._per_network("state_tau")

    def state_noise(self) -> Tensor:
        """Each network's noise amplitudes (:meth:`Model.state_noise`), laid out as :meth:`state_tau`."""
        return self._per_network("state_noise")

    def _per_network(self, method: str) -> Tensor:
        rows = torch.stack(self._each(method))
        return rows[0] if torch.equal(rows, rows[:1].expand_as(rows)) else rows

    # --- running all K together ------------------------------------------------------------------

    def simulate(self, t: Tensor, x: Tensor | Callable[[Tensor], Tensor] | None = None, state0: Any = None,
                 **kwargs: Any) -> Trajectory:
        """:func:`neurodyn.simulate` of all K networks on the same B trials.

        ``x`` (``(B, T, n_in)``, ``(B, n_in)`` or a callable ``x(t) -> (B, n_in)``) and ``state0``
        (flat ``(B, D)`` or a named state) are given once and tiled; the trajectory has K*B rows
        (``ens.split(traj.outputs)`` is ``(K, B, T, n_out)``). For different inputs per network,
        call ``neurodyn.simulate(ens, t, x)`` with a K*B-row ``x``.
        """
        rows = {name: v.shape[0] for name, v in (("x", x), ("state0", state0)) if isinstance(v, Tensor) and v.dim() > 1}
        if len(rows) == 2 and 1 not in rows.values() and rows["x"] != rows["state0"]:
            raise ValueError(f"x has batch size {rows['x']} but state0 has {rows['state0']}; give both the same B "
                             f"(each is tiled to K*B rows for the K={self.size} networks)")
        if state0 is not None:
            state0 = state0 if isinstance(state0, Tensor) else flatten(state0)
            if state0.dim() == 2 and state0.shape[0] == 1 and rows.get("x", 1) > 1:
                state0 = state0.expand(rows["x"], -1)  # one initial state for all B trials, as simulate takes it
            state0 = self.tile(state0)
        if callable(x) and not isinstance(x, Tensor):
            shared = x
            x = lambda time: self.tile(shared(time))  # noqa: E731 - the tiled callable input
        elif isinstance(x, Tensor):
            x = self.tile(x if x.dim() > 1 else x.unsqueeze(0))
        if state0 is None:
            rows = 1 if x is None else (x(t[0]) if callable(x) else x).shape[0]
            state0 = self.initial_state(rows if x is not None else self.size)
        return simulate(self, t, x, state0, **kwargs)

    def fit(self, data: Task, **kwargs: Any) -> History:
        """:func:`neurodyn.fit` of all K networks at once on a task; returns one ``History``.

        Every network sees the same trials each step (the task's batch, tiled), which is
        what K separate ``fit(model_k, task, seed=s)`` calls see. The loss is the mean over
        networks, and its gradient is scaled by K so that each network gets exactly the
        gradient of its own loss: with the default Adam and no ``grad_clip`` / noise, the
        K trained networks equal K sequential fits (``grad_clip`` clips the whole ensemble's
        norm). ``history.loss`` and the metrics are ensemble means. Regularizers see the whole
        ensemble: a penalty that is a mean over trials (``l2_rates``) acts on each network as in
        its own fit; one summed over the weights (``l2_weights``) acts K times as strongly, so
        divide its coefficient by K.
        """
        if not isinstance(data, Task):
            raise ArgumentTypeError(f"Ensemble.fit trains on a neurodyn Task; got {type(data).__name__} (fit "
                                    "networks to a Recording one by one, or in parallel with neurodyn.sweep)")
        # scale each accumulated gradient once (a tensor hook would also run inside checkpointed segments'
        # and the adjoint's backward passes, on every partial gradient)
        def scale(p: Tensor) -> None:
            p.grad.mul_(self.size)

        hooks = [p.register_post_accumulate_grad_hook(scale) for p in self.parameters() if p.requires_grad]
        try:
            return fit(self, _TiledTask(data, self.size), **kwargs)
        finally:
            for h in hooks:
                h.remove()

    def find_fixed_points(self, init: Any, x: Any = None, **kwargs: Any) -> list[FixedPoints]:
        """:func:`neurodyn.find_fixed_points` of every network: a list of K ``FixedPoints``.

        ``init`` is shared by all networks (flat ``(M, D)`` or a named state) or given per
        network as ``(K, M, D)``; ``x`` and the keyword arguments go to each call, which is
        batched over the M starts.
        """
        per_network = isinstance(init, Tensor) and init.dim() == 3
        if per_network and init.shape[0] != self.size:
            raise ValueError(f"a per-network init must be (K={self.size}, M, D); got {tuple(init.shape)}")
        return [find_fixed_points(m, init[k] if per_network else init, x, **kwargs)
                for k, m in enumerate(self.unstack())]

    def unstack(self) -> list[Model]:
        """K independent models holding the ensemble's current parameters (detached copies)."""
        tensors = self._tensors()
        models = []
        for k in range(self.size):
            model = copy.deepcopy(self._member)
            model.load_state_dict({name: v[k].detach().clone() for name, v in zip(self._names, tensors, strict=True)})
            models.append(model)
        return models

    def extra_repr(self) -> str:
        return f"K={self.size}, member={type(self._member).__name__}"


def ensemble(model_factory: Callable[[int], Model], n: int, *, seed: int = 0) -> Ensemble:
    """An :class:`Ensemble` of ``n`` networks ``model_factory(seed + k)``, k = 0..n-1.

    Torch's global RNG is seeded with ``seed + k`` around the k-th call (and restored
    afterwards), so network k is exactly ``torch.manual_seed(seed + k); model_factory(seed + k)``.
    """
    if not callable(model_factory):
        raise ArgumentTypeError(f"model_factory must be callable, seed -> Model; got {type(model_factory).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (the number of networks); got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError(f"seed must be an int; got {type(seed).__name__}")
    models = []
    for k in range(n):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + k)
            models.append(model_factory(seed + k))
    return Ensemble(models)


def _is_plain_rate_rnn(model: Model) -> bool:
    """Whether ``model`` computes exactly :class:`RateRNN`'s equations with a named elementwise activation."""
    cls = type(model)
    return (isinstance(model, RateRNN) and type(model.recurrent) is Connectivity
            and any(model.activation is f for f in ACTIVATIONS.values())
            and all(getattr(cls, name) is getattr(RateRNN, name)
                    for name in ("input_drive", "vector_field", "rate_derivative", "output", "W", "bias")))


def _key(name: str) -> str:
    return name.replace(".", "__")


def _check_members(models: Any) -> list[Model]:
    if isinstance(models, Model) or not isinstance(models, Sequence) or isinstance(models, str):
        raise ArgumentTypeError(f"models must be a list of neurodyn Models; got {type(models).__name__}")
    models = list(models)
    if not models:
        raise ValueError("models is empty; give at least one Model")
    first = models[0]
    for i, m in enumerate(models):
        if not isinstance(m, Model) or isinstance(m, Ensemble):
            raise ArgumentTypeError(f"models[{i}] must be a neurodyn Model (not an Ensemble); got {type(m).__name__}")
        if type(m) is not type(first):
            raise ValueError(f"models[{i}] is a {type(m).__name__} but models[0] is a {type(first).__name__}; "
                             "an Ensemble stacks networks of one architecture")
        for what in ("state_vars", "n_in", "n_out"):
            if getattr(m, what) != getattr(first, what):
                raise ValueError(f"models[{i}].{what}={getattr(m, what)!r} but models[0].{what}="
                                 f"{getattr(first, what)!r}; an Ensemble stacks networks of one architecture")
        mine = {n: t for n, t in (*m.named_parameters(), *m.named_buffers())}
        ref = {n: t for n, t in (*first.named_parameters(), *first.named_buffers())}
        if list(mine) != list(ref):
            raise ValueError(f"models[{i}] has tensors {sorted(set(mine) ^ set(ref))} that models[0] does not "
                             "share; an Ensemble stacks networks of one architecture")
        for name, tensor in mine.items():
            r = ref[name]
            if (tensor.shape, tensor.dtype, tensor.device) != (r.shape, r.dtype, r.device):
                raise ValueError(f"models[{i}].{name} is {tuple(tensor.shape)} {tensor.dtype} on {tensor.device} but "
                                 f"models[0].{name} is {tuple(r.shape)} {r.dtype} on {r.device}")
            if tensor.requires_grad != r.requires_grad:
                raise ValueError(f"models[{i}].{name} has requires_grad={tensor.requires_grad} but models[0].{name} "
                                 f"has {r.requires_grad}; train (or freeze) the same tensors in every network")
        for where, value, expected in _differences(m, first):
            raise ValueError(f"models[{i}].{where} is {value!r} but models[0].{where} is {expected!r}; the networks "
                             "of an Ensemble may differ only in their tensors (parameters and buffers)")
    return models


def _check_timescales(models: list[Model], each: Callable[[str], list[Any]]) -> None:
    """Raise unless every member's ``timescale`` is what the Ensemble computes for it (from its tensors with
    models[0]'s code): a plain number such as ``Equations(..., timescale=)`` is not stacked."""
    try:
        own = [float(m.timescale) for m in models]
    except NotImplementedError:
        return
    for i, (value, seen) in enumerate(zip(own, each("timescale"), strict=True)):
        if not math.isclose(value, float(seen), rel_tol=1e-6):
            raise ValueError(f"models[{i}].timescale is {value:g}, but an Ensemble runs models[0]'s code with each "
                             f"network's tensors, which gives {float(seen):g}; give every network the same timescale")


def _differences(model: Model, reference: Model) -> Iterator[tuple[str, Any, Any]]:
    """``(attribute, value, reference value)`` for each setting that is not a tensor and differs between the two
    models (each submodule's class and plain attributes: what stacking their tensors cannot carry)."""
    for (path, mod), (_, ref) in zip(model.named_modules(), reference.named_modules(), strict=True):
        prefix = f"{path}." if path else ""
        if type(mod) is not type(ref):
            yield f"{prefix}__class__", type(mod).__name__, type(ref).__name__
            continue
        for name, value in vars(mod).items():
            if name.startswith("_") or isinstance(value, Tensor | nn.Module):
                continue
            expected = vars(ref).get(name)
            try:
                same = bool(value == expected)
            except (RuntimeError, TypeError, ValueError):  # e.g. containers of tensors: compare their identity
                same = value is expected
            if not same:
                yield prefix + name, value, expected


class _StackedLinear(torch.autograd.Function):
    """``y_k = x_k W_k^T + b_k`` of K networks, ``x (K, M, m)``, ``W (K, n, m)``, ``b (K, n)``.

    The backward forms ``dL/dW_k`` as the product with the fewer rows: ``g_k^T x_k`` for a wide W
    (a readout), ``(x_k^T g_k)^T`` for a tall one (an input projection). Autograd's bmm backward
    always forms ``x_k^T g_k``, which MKL runs 3-6x slower for a wide W (a 3-unit readout: 2.7
    against 0.9 ms in a training step with K=32, M=848, m=64; torch 2.13).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        # bmm then add_: baddbmm with a broadcast (K, 1, n) bias is several times slower on CPU
        return torch.bmm(x, w.transpose(1, 2)).add_(b.unsqueeze(1))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        x, w, _ = inputs
        ctx.save_for_backward(x, w)
        ctx.save_for_forward(x, w)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_w = None
        if need_w:
            wide = w.shape[1] <= w.shape[2]
            grad_w = torch.bmm(g.transpose(1, 2), x) if wide else torch.bmm(x.transpose(1, 2), g).transpose(1, 2)
        return torch.bmm(g, w) if need_x else None, grad_w, g.sum(1) if need_b else None

    @staticmethod
    def jvp(ctx: Any, dx: Tensor | None, dw: Tensor | None, db: Tensor | None) -> Tensor:
        x, w = ctx.saved_tensors
        out = x.new_zeros(x.shape[0], x.shape[1], w.shape[1])
        if dx is not None:
            out.baddbmm_(dx, w.transpose(1, 2))
        if dw is not None:
            out.baddbmm_(x, dw.transpose(1, 2))
        return out if db is None else out.add_(db.unsqueeze(1))


class _TiledTask(Task):
    """A task whose batches repeat the wrapped task's B trials for each of K networks (K*B rows)."""

    def __init__(self, task: Task, k: int) -> None:  # the wrapped task holds the timing; no Task.__init__
        self.task, self.k, self.dt = task, k, task.dt
        self.n_in, self.n_out, self.n_choices, self.metric = task.n_in, task.n_out, task.n_choices, task.metric

    def __repr__(self) -> str:
        return f"{self.task!r} x {self.k} networks"

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> TaskBatch:
        b = self.task.sample(batch_size, generator)
        return TaskBatch(b.t, *(_repeat(v, self.k) for v in (b.x, b.y, b.mask, b.info)))

    def evaluate(self, outputs: Tensor, batch: TaskBatch) -> float:
        return self.task.evaluate(outputs, batch)


def _repeat(value: Any, k: int) -> Any:
    if isinstance(value, Tensor):
        return value.repeat(k, *([1] * (value.dim() - 1))) if value.dim() else value
    if isinstance(value, dict):
        return {key: _repeat(v, k) for key, v in value.items()}
    return value

