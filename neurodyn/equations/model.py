"""``Equations``: a model written as text, compiled by sympy into torch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from ..errors import ArgumentTypeError
from ..models.base import Model
from ..models.params import check_trainable, register_tensor
from . import symbolic
from .compile import compile_program
from .parser import RESERVED, first_use, parse, valid_name
from .singularities import remove_singularities


class Equations(Model):
    r"""A model written the way a paper writes it: one ``dX/dt = expr`` line per state variable.

    Example (Wilson & Cowan 1972, no refractoriness)::

        model = Equations('''
            dE/dt = (-E + sigmoid(wEE*E - wEI*I + P)) / tauE
            dI/dt = (-I + sigmoid(wIE*E - wII*I)) / tauI
        ''', params=dict(wEE=12, wEI=4, wIE=13, wII=11, tauE=1, tauI=2), inputs=("P",))

    Syntax: ``dX/dt = expr`` defines the state variable ``X`` (state order is
    the order of appearance); ``name = expr`` an auxiliary expression
    substituted into the lines below it; ``#`` starts a comment. Operators
    ``+ - * / ** ^ @``, comparisons, ``& | ~`` and the functions ``exp log
    sqrt abs tanh sigmoid relu softplus sin cos tan sinh cosh min max where(cond, a, b)``;
    ``t`` is time and ``pi`` the constant.

    Args:
        text: the equations.
        params: name -> value (number, or a tensor/array for per-unit vectors
            ``(n,)`` and matrices ``(m, n)``). Buffers, or ``nn.Parameter`` for
            names in ``trainable``; readable as attributes (``model.tau``) and
            settable with :meth:`set_params` (or ``model.tau = 0.2``).
        inputs: names of the input channels: the columns of ``x``, in order.
        state_sizes: ``{name: n}`` for vector states of ``n`` units; then
            ``dr/dt = (-r + relu(W @ r + I)) / tau`` is a whole network.
        trainable: names of parameters to train.
        timescale: the model's smallest time constant; default the smallest
            value of the parameters whose names start with ``tau``, else 1.0.
        dtype: floating dtype of the parameters; default that of the first
            floating tensor in ``params``, else torch's default.

    ``input_drive(x)`` is ``x`` itself. Removable singularities ``c E / (1 - exp(E))``
    (Wong–Wang's ``H``) are evaluated by a series near ``E = 0`` (see
    :mod:`neurodyn.equations.singularities`).
    """

    def __init__(
        self,
        text: str,
        params: Mapping[str, Any] | None = None,
        inputs: Sequence[str] = (),
        state_sizes: Mapping[str, int] | None = None,
        trainable: Sequence[str] = (),
        *,
        timescale: float | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(text, str):
            raise ArgumentTypeError(f"text must be a str of equations; got {type(text).__name__}")
        params = {} if params is None else params
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"params must be a dict name -> value; got {type(params).__name__}")
        inputs = _names("inputs", inputs)
        state_sizes = _sizes(state_sizes)
        self.text = text
        self.input_names = inputs
        self._timescale = None
        self.parameter_names: tuple[str, ...] = ()
        self.state_vars = {}
        values = _values(params, text, dtype)
        for name in values:
            _check_parameter_name(self, name)
        chosen = check_trainable(trainable, values)
        untrained = [k for k, v in (params or {}).items()
                     if isinstance(v, Tensor) and v.requires_grad and k not in chosen]
        if untrained:
            warnings.warn(f"params {untrained} require grad, but the model keeps its own copies of parameters and "
                          f"trains only those in trainable=; pass trainable={untrained} to train them", stacklevel=2)
        self._parsed = parse(text, {k: tuple(v.shape) for k, v in values.items()}, inputs, state_sizes)
        for name, value in values.items():
            register_tensor(self, name, value, trainable=name in chosen, shapes=(tuple(value.shape),))
        self.parameter_names = tuple(values)
        if not values:  # no tensors to carry the model's dtype and device: keep an empty one that .to() moves
            self.register_buffer("_dtype_anchor", torch.empty(0, dtype=dtype or torch.get_default_dtype()))
        self.state_vars = {s: state_sizes.get(s, 1) for s in self._parsed.states}
        self.n_in, self.n_out = len(inputs), 0
        if timescale is not None and not (isinstance(timescale, (int, float)) and math.isfinite(timescale)
                                          and timescale > 0):
            raise ValueError(f"timescale must be a positive number; got {timescale!r}")
        self._timescale = None if timescale is None else float(timescale)
        self._compile()

    def _compile(self) -> None:
        symbols = self._parsed.symbols
        dynamic = {symbols[n] for n in (*self._parsed.states, *self.input_names, "t")}
        exprs = [remove_singularities(e, dynamic) for e in self._parsed.rhs.values()]
        self._uses_t = any(symbols["t"] in e.free_symbols for e in exprs)
        self._program = compile_program(exprs, self._parsed.kinds)

    def __getstate__(self) -> dict:
        """Pickle without the compiled closures; :meth:`__setstate__` compiles again."""
        state = self.__dict__.copy()
        state.pop("_program", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._compile()

    # -- the Model interface -------------------------------------------------------------------------------
    def input_drive(self, x: Tensor) -> Tensor:
        return x

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        env = {**self._buffers, **self._parameters}
        env.update(zip(self.state_vars, state, strict=True))
        if self.n_in:
            env.update(zip(self.input_names, drive.split(1, dim=-1), strict=True))
        first = state[0]
        if self._uses_t:
            env["t"] = torch.as_tensor(t, dtype=first.dtype, device=first.device)
        batch = first.shape[0]
        out = []
        for value, size in zip(self._program(env), self.state_vars.values(), strict=True):
            if not isinstance(value, Tensor):
                value = torch.full((batch, size), value, dtype=first.dtype, device=first.device)
            elif value.shape != (batch, size):
                value = value.expand(batch, size).contiguous()
            out.append(value)
        return self.State(*out)

    @property
    def timescale(self) -> float:
        if self._timescale is not None:
            return self._timescale
        taus = [float(getattr(self, n).detach().min()) for n in self.parameter_names if n.startswith("tau")]
        taus = [v for v in taus if v > 0]
        return min(taus) if taus else 1.0

    # -- parameters ---------------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Tensor]:
        """The current parameter tensors by name."""
        return {n: getattr(self, n) for n in self.parameter_names}

    def set_params(self, **values: Any) -> Equations:
        """Set parameters by name in place (``model.set_params(I0=0.35)``), keeping their shape, dtype and device."""
        for name, value in values.items():
            if name not in self.parameter_names:
                raise ValueError(f"{name!r} is not a parameter of these equations; the parameters are "
                                 f"{list(self.parameter_names)}")
            current = getattr(self, name)
            try:
                new = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value,
                                                 dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise ArgumentTypeError(f"{name} must be a number or an array; got {type(value).__name__}") from err
            if new.shape != current.shape:
                raise ValueError(f"{name} has shape {tuple(current.shape)}; got a value of shape {tuple(new.shape)}")
            if not torch.isfinite(new).all():
                raise ValueError(f"{name} must be finite; got {value!r}")
            with torch.no_grad():
                current.copy_(new.to(current))
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        """``model.k = 2.0`` sets the value in place (:meth:`set_params`); a tensor replaces the parameter, keeping
        its graph, after a check of its shape (and, for an ``nn.Parameter``, its dtype and device)."""
        if name not in self.__dict__.get("parameter_names", ()):
            super().__setattr__(name, value)
        elif not isinstance(value, Tensor):
            self.set_params(**{name: value})
        else:
            current = getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(f"{name} has shape {tuple(current.shape)}; got a tensor of shape {tuple(value.shape)}")
            if isinstance(value, torch.nn.Parameter) and (value.dtype, value.device) != (current.dtype, current.device):
                raise ValueError(f"{name} is {current.dtype} on {current.device}; got a Parameter of {value.dtype} on "
                                 f"{value.device} (convert it first, e.g. value.to(model.dtype))")
            super().__setattr__(name, value if isinstance(value, torch.nn.Parameter) else value.to(current))

    # -- symbolic forms -----------------------------------------------------------------------------------
    def symbolic_rhs(self) -> dict[str, sp.Expr]:
        """Each state's right-hand side (sympy, auxiliaries substituted, parameters as symbols), in state order."""
        return dict(self._parsed.rhs)

    @property
    def state_symbols(self) -> list[sp.Basic]:
        """The scalar state symbols in flat-state order (``r[i]`` for the units of a vector state)."""
        return [s for array in self._state_arrays() for s in np.ravel(array)]

    def symbolic_jacobian(self, substitute: bool = True) -> sp.Matrix:
        """``dF/dy`` as a ``(D, D)`` sympy Matrix over :attr:`state_symbols`.

        With ``substitute=True`` the current parameter values are substituted
        (exact binary values of the tensors), leaving state, input and time
        symbols; with ``substitute=False`` the parameter symbols are kept.
        """
        values = {}
        for name, array in zip(self.state_vars, self._state_arrays(), strict=True):
            values[name] = array
        for name in (*self.input_names, "t"):
            values[name] = symbolic.entries(name, (), self._parsed.symbols[name])
        for name in self.parameter_names:
            tensor = getattr(self, name).detach().cpu().double().numpy()
            values[name] = symbolic.constant_array(tensor) if substitute else \
                symbolic.entries(name, tensor.shape, self._parsed.symbols[name])
        rhs = [symbolic.expand(e, values) for e in self._parsed.rhs.values()]
        rhs = [np.broadcast_to(r, (size,) if name in self._vector_states else r.shape)
               for r, (name, size) in zip(rhs, self.state_vars.items(), strict=True)]
        return symbolic.jacobian(rhs, self._state_arrays())

    def latex(self) -> str:
        r"""The equations as LaTeX (an ``aligned`` block, auxiliaries kept by name)."""
        return symbolic.latex_system([(line.kind, line.target, line.expr) for line in self._parsed.lines])

    @property
    def _vector_states(self) -> set[str]:
        return {n for n, k in self._parsed.kinds.items() if n in self.state_vars and k.shape}

    def _state_arrays(self) -> list[np.ndarray]:
        return [symbolic.entries(n, self._parsed.kinds[n].shape, self._parsed.symbols[n]) for n in self.state_vars]

    def extra_repr(self) -> str:
        return "; ".join(line.text for line in self._parsed.lines)


def _names(argument: str, names: Any) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ArgumentTypeError(f"{argument} must be a sequence of names, e.g. ('I',); got {names!r}")
    for name in names:
        if not valid_name(name):
            raise ValueError(f"{argument} holds {name!r}, not a valid name; use letters, digits and _, starting with "
                             f"a letter, other than {sorted(RESERVED)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{argument} repeats a name: {list(names)}")
    return tuple(names)


def _sizes(state_sizes: Any) -> dict[str, int]:
    if state_sizes is None:
        return {}
    if not isinstance(state_sizes, Mapping):
        raise ArgumentTypeError(f"state_sizes must be a dict name -> number of units; got {type(state_sizes).__name__}")
    for name, size in state_sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"state_sizes[{name!r}] must be a positive int; got {size!r}")
    return dict(state_sizes)


def _values(params: Mapping[str, Any], text: str, dtype: torch.dtype | None) -> dict[str, Tensor]:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ArgumentTypeError(f"dtype must be a floating torch.dtype such as torch.float64; got {dtype!r}")
    if dtype is None:
        dtype = next((v.dtype for v in params.values() if isinstance(v, Tensor) and v.is_floating_point()),
                     torch.get_default_dtype())
    values = {}
    for name, value in params.items():
        if not valid_name(name):
            raise ValueError(f"params holds {name!r}, not a valid parameter name; use letters, digits and _, "
                             f"starting with a letter, other than {sorted(RESERVED)}")
        if value is None:
            raise ValueError(f"parameter {name!r} has no value{first_use(text, name)}; give params={{{name!r}: value}}")
        try:
            tensor = value.detach().clone() if isinstance(value, Tensor) else \
                torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"parameter {name!r} must be a number or an array; got {value!r}") from err
        if tensor.dim() > 2:
            raise ValueError(f"parameter {name!r} has shape {tuple(tensor.shape)}; parameters are scalars, "
                             "vectors (n,) or matrices (m, n)")
        values[name] = tensor.to(dtype)
    return values


def _check_parameter_name(model: Model, name: str) -> None:
    if hasattr(type(model), name) or name in model.__dict__:
        raise ValueError(f"parameter name {name!r} clashes with an attribute of the model; rename it "
                         f"(e.g. {name + '_'!r})")
