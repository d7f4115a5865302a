"""simulate(): where a model, an input and a solver meet."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .errors import ArgumentTypeError, DivergenceError
from .inputs import Drive, as_input
from .models.base import Model
from .solvers.adaptive import ADAPTIVE, anchored_times, integrate_torchdiffeq
from .solvers.fixed_step import STEPPERS, Scan, Step, integrate_fixed
from .solvers.leaves import Leaves
from .state import flatten, flattener, state_dim, unflatten, unflattener
from .trajectory import Trajectory
from .transforms import transforms_active, vmap_active
from .validation import as_int, as_real, rounding

SOLVERS = (*STEPPERS, *ADAPTIVE)
GRADIENTS = ("backprop", "checkpoint", "adjoint")
DEFAULT_MAX_STEPS = 1_000_000


def simulate(
    model: Model,
    t: Tensor,
    x: Tensor | Callable[[Tensor], Tensor] | None = None,
    state0: Any = None,
    *,
    solver: str = "euler",
    dt: float | None = None,
    gradient: str = "backprop",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    anchor_dt: float | None = None,
) -> Trajectory:
    """Integrate ``model`` from ``state0`` and sample it at the times ``t``.

    Args:
        t: 1-D strictly increasing output times ``(T,)``.
        x: external input: ``(B, T, n_in)`` sampled on ``t`` (zero-order hold),
            a constant ``(B, n_in)``, a callable ``x(t) -> (B, n_in)``, or None (zero).
        state0: named state, ``{name: (B, size)}`` dict, or flat ``(B, D)``;
            default ``model.initial_state(B)``.
        solver: fixed-step "euler", "midpoint", "rk4" (step ``dt``, or the grid
            of ``t`` when ``dt`` is None) or adaptive "dopri5", "bosh3",
            "adaptive_heun", "dopri8" (torchdiffeq; where a grid input changes and ``model.switch_times(t)``
            are jump points; torchdiffeq's dopri8 is less accurate than dopri5 at equal tolerances).
        gradient: "backprop" (autograd through the steps; fastest, memory ~ steps),
            "checkpoint" (the same gradients, memory ~ sqrt(steps): the one to use
            for long trials), or "adjoint" (continuous adjoint, memory ~ state x
            anchors; re-anchored every ``anchor_dt``, default ``model.timescale``,
            because torchdiffeq's unanchored adjoint is silently wrong on chaotic
            networks; its gradients match backprop only to the solver tolerance).
        noise_std: sigma of Euler–Maruyama noise, added as ``sigma sqrt(2 dt / tau) N(0, 1)``
            per step (euler only; per state variable as ``model.state_noise()`` says, e.g.
            none on STP's u and x); reproducible with ``generator``.
        max_steps: the most solver steps allowed (an error says how to raise it).

    Returns:
        A :class:`Trajectory`. Raises :class:`DivergenceError` if the state
        becomes NaN or infinite, naming the first output time where it did.
    """
    t, ys, nfe = _integrate(model, t, x, state0, solver=solver, dt=dt, gradient=gradient, rtol=rtol, atol=atol,
                            noise_std=noise_std, generator=generator, max_steps=max_steps, anchor_dt=anchor_dt)
    states = unflatten(ys, model)
    return Trajectory(t=t, states=states, outputs=_outputs(model, states), nfe=nfe)


def simulate_signal(model: Model, t: Tensor, x: Any = None, state0: Any = None, **options: Any) -> Tensor:
    """What a fit compares with data, ``(B, T, ...)``: the readout ``model.output`` along the trajectory, or
    the first state variable when the model has none (``n_out == 0``).

    It integrates as :func:`simulate` does, with the same arguments, but records only the signal at
    each output time, so memory is ``B T n_out`` rather than ``B T D`` (fit's evaluation batches).
    A state that becomes NaN or infinite raises :class:`DivergenceError`, as in :func:`simulate`.
    """
    args = inspect.signature(simulate).bind(model, t, x, state0, **options)  # simulate's options and defaults
    args.apply_defaults()
    to_state = unflattener(model)

    def signal(y: Tensor) -> Tensor:
        state = to_state(y)
        return model.output(state) if model.n_out else state[0]

    return _integrate(**args.arguments, record=signal)[1]


def _integrate(model: Model, t: Any, x: Any, state0: Any, *, solver: str, dt: Any, gradient: str, rtol: Any,
               atol: Any, noise_std: Any, generator: torch.Generator | None, max_steps: Any, anchor_dt: Any,
               record: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor, int]:
    """``(t, ys (B, T, ...), nfe)``: :func:`simulate`'s checks and integration, ``ys`` the flat states, or
    ``record`` of each output time's flat ``(B, D)`` state."""
    if not isinstance(model, Model):
        raise ArgumentTypeError(f"model must be a neurodyn.models.Model; got {type(model).__name__}")
    t = _check_times(t, model)
    dt, rtol, atol, noise_std, max_steps, anchor_dt = _check_options(model, t, solver, dt, gradient, rtol, atol,
                                                                     noise_std, max_steps, anchor_dt, generator)
    _check_parameters(model)
    switches = model.switch_times(t)
    batch = batch_size_of(state0)
    signal = as_input(x, t, model, batch)
    if batch is not None and signal.batch_size is not None and signal.batch_size not in (1, batch) and batch != 1:
        raise ValueError(f"x has batch size {signal.batch_size} but state0 has {batch}; give both the same B")
    batch = max(batch or 1, signal.batch_size or 1)
    y0 = initial_flat(model, state0, batch)
    fused = model.euler_scan() if solver == "euler" and gradient != "adjoint" and not transforms_active() else None
    # a table of the drive for all times, except: the fused scan computes it per segment; the adjoint and the
    # checkpointed segments need gradients to reach the input weights from each step, not through one table
    # that every segment's backward pass would go through whole
    drive = Drive(model, signal, precompute=gradient == "backprop" and fused is None)
    to_state, to_flat = unflattener(model), flattener(model)
    _check_vector_field(model, t, y0, drive, to_state)

    fixed = solver in STEPPERS and gradient != "adjoint"
    extremes: list[Tensor] = []  # per output time, the state's min and max (NaN if any is), where only `record` is kept

    def keep(y: Tensor) -> Tensor:  # `record`, noting the state's extremes for the divergence check
        if y.numel():
            extremes.extend(torch.aminmax(y.detach()))  # one pass (isfinite(y).all() takes 20x as long)
        return record(y)

    if fixed:
        def rhs(time: float, y: Tensor, k: int) -> Tensor:
            return to_flat(model.vector_field(time, to_state(y), drive.on_interval(k, time)))

        diffusion = None
        if noise_std > 0:
            diffusion = noise_std * model.state_noise().to(y0)
            if diffusion.dim() == 2:  # (G, D): one row per block of y0's rows (an Ensemble's networks)
                diffusion = diffusion.repeat_interleave(y0.shape[0] // diffusion.shape[0], dim=0)
        ys, nfe = integrate_fixed(rhs, y0, t, method=solver, dt=dt, diffusion=diffusion, generator=generator,
                                  segments=gradient == "checkpoint", max_steps=max_steps,
                                  scan=None if fused is None else _fused_scan(fused, drive),
                                  record=None if record is None else keep, inputs=drive.tensors())
    else:
        jump_t = torch.cat([signal.jump_times, switches]).unique()  # sorted, no repeats (torchdiffeq's rule)
        ys, nfe = _integrate_torchdiffeq(model, t, y0, drive, (to_state, to_flat), jump_t, solver=solver, dt=dt,
                                         gradient=gradient, rtol=rtol, atol=atol, max_steps=max_steps,
                                         anchor_dt=anchor_dt)
    if record is not None and not fixed:  # torchdiffeq returns the states: check and record them all at once
        _check_finite(ys, t)
        ys = record(ys.flatten(0, 1)).unflatten(0, ys.shape[:2])
    if extremes:
        _raise_at(~torch.isfinite(torch.stack(extremes).view(-1, 2)).all(dim=1), t)
    _check_finite(ys, t)
    return t, ys, nfe


def _fused_scan(fused: Callable, drive: Drive) -> Scan:
    """A run of Euler steps as the model's fused scan (:meth:`Model.euler_scan`), fed the steps' drive
    (a :data:`~neurodyn.solvers.fixed_step.Scan`)."""

    def scan(steps: list[Step], y: Tensor, noise: Tensor | None, into: Tensor | None = None) -> tuple[Tensor, ...]:
        drives = drive.on_steps([s.interval for s in steps], [s.t for s in steps])
        if noise is not None:  # Euler–Maruyama increments sqrt(h) * diffusion * N(0, 1), as fixed_step._run adds them
            noise = noise * torch.tensor([math.sqrt(s.h) for s in steps], dtype=noise.dtype,
                                         device=noise.device).view(-1, 1, 1)
        ys = fused(y, drives, [s.h for s in steps], noise)
        recorded = [i for i, s in enumerate(steps) if s.record]
        if into is not None:  # one copy of the recorded states into the output
            into.copy_((ys if len(recorded) == len(steps) else ys[recorded]).transpose(0, 1))
            return (ys[-1].clone(),)  # (not a view that keeps the pass's buffer alive)
        kept = recorded if steps[-1].record else [*recorded, len(steps) - 1]
        if len(kept) < len(steps):  # copy out what is kept: views would hold the segment's whole buffer
            ys = ys[kept]
        ys = ys.unbind(0)  # unbind: one gradient buffer, not S selects
        return (ys[-1], *(ys if steps[-1].record else ys[:-1]))

    return scan


def _integrate_torchdiffeq(model, t, y0, drive, converters, jump_t, *, solver, dt, gradient, rtol, atol,
                           max_steps, anchor_dt):
    to_state, to_flat = converters
    cache = gradient != "checkpoint"  # torch's checkpoint recomputes each segment: no drive cached across them

    def rhs(time: Tensor, y: Tensor) -> Tensor:
        return to_flat(model.vector_field(time, to_state(y), drive(time, cache)))

    times, index = t, None
    if gradient == "adjoint" and (solver in ADAPTIVE or dt is not None):
        times, index = anchored_times(t, anchor_dt or model.timescale)
    params = tuple(p for p in model.parameters() if p.numel())  # torchdiffeq's adjoint breaks on empty tensors
    if gradient == "adjoint":  # what the field reads as closures must be named to the adjoint as its inputs
        params += tuple(v for v in drive.tensors() if v.requires_grad and v.numel())
        params += tuple(v for v in _closure_leaves(rhs, t, y0, model, drive)
                        if v.numel() and all(v is not p for p in params))
    try:
        ys, nfe = integrate_torchdiffeq(rhs, y0, times, method=solver, rtol=rtol, atol=atol,
                                        jump_t=jump_t, max_steps=max_steps,
                                        gradient=gradient, params=params, dt=dt)
    except AssertionError as err:
        if "max_num_steps" in str(err):
            raise RuntimeError(f"the {solver} solver hit max_steps={max_steps} ({err}); "
                               "pass a larger max_steps, or loosen rtol/atol") from err
        stuck = getattr(err, "t", None)  # the time the solver could not step past
        reached = t[t >= stuck] if stuck is not None else t[:0]
        where = "" if stuck is None else f" before output time t={float(reached[0] if len(reached) else t[-1]):g}"
        raise DivergenceError(f"the {solver} step size underflowed{where} ({err}): the state diverged or the "
                              "system is too stiff; check the parameters or use a smaller tau-relative dt") from err
    return (ys if index is None else ys[:, index]), nfe


def _closure_leaves(rhs: Callable, t: Tensor, y0: Tensor, model: Model, drive: Drive) -> list[Tensor]:
    """The leaf tensors requiring grad the vector field reads at ``t[0]`` and at the model's switch times
    (a user activation's, a callable input's or current's), besides the input tensors (their own inputs)."""
    leaves = Leaves(stop=drive.tensors())
    with torch.enable_grad():
        for time in torch.cat([t[:1], model.switch_times(t)]):
            leaves((rhs(time, y0.detach()),))
    return list(leaves.found.values())


def _check_times(t: Any, model: Model) -> Tensor:
    if not isinstance(t, Tensor):
        raise ArgumentTypeError(
            f"t must be a 1-D floating-point torch.Tensor; got {type(t).__name__} (use torch.linspace)"
        )
    if not torch.is_floating_point(t):
        raise ArgumentTypeError(f"t must be floating point; got dtype {t.dtype} (use t.to({model.dtype}))")
    if t.dim() != 1:
        raise ValueError(f"t must be 1-D (T,); got shape {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise ValueError(f"t must hold at least 2 times (start and end); got {t.shape[0]}")
    if not torch.isfinite(t).all():
        raise ValueError("t contains NaN or Inf")
    t = t.to(device=model.device, dtype=model.dtype)
    bad = torch.nonzero(t[1:] <= t[:-1])
    if bad.numel():
        i = int(bad[0]) + 1
        raise ValueError(f"t must be strictly increasing; got t[{i}]={float(t[i]):g} <= t[{i - 1}]={float(t[i - 1]):g}")
    return t


def _check_options(model, t, solver, dt, gradient, rtol, atol, noise_std, max_steps, anchor_dt,
                   generator) -> tuple:
    """Validate the options; return ``(dt, rtol, atol, noise_std, max_steps, anchor_dt)`` as Python numbers."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}; got {solver!r}")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {list(GRADIENTS)}; got {gradient!r}")
    if vmap_active():
        raise ValueError("simulate does not run under torch.func.vmap, which jacfwd and hessian also use (its "
                         "NaN/divergence checks read the values): take jacrev (jacrev(jacrev(f)) for a Hessian), "
                         "batch the trials along the first axis of x and state0, or stack networks in an Ensemble")
    if (gradient != "backprop" or solver in ADAPTIVE) and transforms_active():
        raise ValueError(f'simulate(solver="{solver}", gradient="{gradient}") does not run under torch.func '
                         "transforms (grad, jvp, jacrev, ...) or forward-mode AD: its custom autograd step (or "
                         'torchdiffeq\'s) has no rule for them; use a fixed-step solver ("euler", "midpoint", "rk4") '
                         'with gradient="backprop"')
    dt = None if dt is None else as_real("dt", dt, gt=0, expected="a positive number")
    rtol, atol = (as_real(name, value, gt=0, expected="> 0") for name, value in (("rtol", rtol), ("atol", atol)))
    noise_std = as_real("noise_std", noise_std, ge=0)
    max_steps = as_int("max_steps", max_steps, 1)
    anchor_dt = None if anchor_dt is None else as_real("anchor_dt", anchor_dt, gt=0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or "
                                f"None; got {type(generator).__name__}")
    if noise_std > 0 and (solver != "euler" or gradient == "adjoint"):
        raise ValueError('noise_std > 0 (Euler–Maruyama) needs solver="euler" with gradient "backprop" or "checkpoint"')
    if anchor_dt is not None and gradient == "adjoint" and float(t[-1] - t[0]) / anchor_dt > max_steps:
        raise ValueError(f"anchor_dt={anchor_dt:g} puts more than max_steps={max_steps} anchors in the trial; "
                         "pass a larger anchor_dt (default: the model's timescale)")
    if gradient == "adjoint" and solver == "euler":
        warnings.warn('gradient="adjoint" with solver="euler" integrates the state and the adjoint backward with '
                      "Euler: the gradient is only first order in dt and can be far off (17 % on a small tanh "
                      'network at dt = tau/20). Use gradient="checkpoint" (the exact gradient of the Euler run) or '
                      'solver="rk4"/"dopri5" with the adjoint', stacklevel=4)
    _check_step(model, t, solver, dt)
    return dt, rtol, atol, noise_std, max_steps, anchor_dt


def _check_step(model: Model, t: Tensor, solver: str, dt: float | None) -> None:
    """Refuse a time constant <= 0 (a trained one can step below 0: the dynamics would run away from rest), and
    warn when the step (``dt``, or the grid's with ``dt=None``) is longer than the smallest one."""
    try:
        timescale = model.timescale  # read once: an Ensemble's asks each of its networks
    except NotImplementedError:
        if dt is not None:
            raise  # simulate needs it for dt (and for noise and anchors), not for a grid
        return
    if not timescale > 0:
        raise ValueError(f"the model's smallest time constant is {timescale:g}, not > 0 (a trained time constant can "
                         "step below 0): reset it, or train with a smaller lr")
    if dt is not None:
        if dt > timescale:
            _warn_long_step(f"dt={dt:g}", timescale)
    elif solver not in ADAPTIVE and len(t) > 1:
        step = float((t[1:] - t[:-1]).max())
        if step > timescale * (1 + 1e-5) + rounding(t):  # a grid of step tau is fine, whatever its rounding
            _warn_long_step(f"the step of the grid t ({step:g}, the step when dt is None)", timescale)


def _warn_long_step(what: str, timescale: float) -> None:
    warnings.warn(f"{what} is larger than the model's smallest time constant {timescale:g}; the integration may "
                  "be inaccurate or unstable: pass a smaller dt", stacklevel=5)


def _check_parameters(model: Model) -> None:
    """Every floating parameter and buffer finite, then the model's own ranges (:meth:`Model.check_parameters`)."""
    tensors = [(n, p) for n, p in (*model.named_parameters(), *model.named_buffers()) if torch.is_floating_point(p)]
    # one sync for all: a NaN or Inf anywhere makes its tensor's sum non-finite
    if tensors and not torch.isfinite(torch.stack([p.detach().sum() for _, p in tensors])).all():
        for name, p in tensors:
            if not torch.isfinite(p).all():
                raise ValueError(
                    f"model parameter {name!r} contains NaN or Inf; re-initialize it or lower the learning rate"
                )
    model.check_parameters()


def batch_size_of(state0: Any) -> int | None:
    """The trials of an initial state (flat ``(B, D)``, named or a dict), None when not given."""
    if state0 is None:
        return None
    if isinstance(state0, Tensor):
        if state0.dim() != 2:
            raise ValueError(f"a flat state0 must be (B, D); got shape {tuple(state0.shape)} (one state: state0[None])")
        return state0.shape[0]
    values = list(state0.values()) if isinstance(state0, Mapping) else list(state0)
    return values[0].shape[0] if values and isinstance(values[0], Tensor) and values[0].dim() else None


def initial_flat(model: Model, state0: Any, batch: int) -> Tensor:
    """``state0`` (or the model's initial state) as a checked flat ``(batch, D)`` tensor."""
    if state0 is None:
        return flatten(model.initial_state(batch))
    names = list(model.state_vars)
    if isinstance(state0, Tensor):
        if state0.dim() != 2 or state0.shape[1] != state_dim(model):
            raise ValueError(f"a flat state0 must be (B, D={state_dim(model)}); got shape {tuple(state0.shape)}")
        flat = state0
    else:
        if isinstance(state0, Mapping):
            missing = [k for k in names if k not in state0]
            unknown = [k for k in state0 if k not in names]
            if missing or unknown:
                raise ValueError(
                    f"state0 dict must have exactly the keys {names}; missing {missing}, unknown {unknown}"
                )
            parts = [state0[k] for k in names]
        elif hasattr(state0, "_fields"):
            if list(state0._fields) != names:
                raise ValueError(f"state0 has variables {list(state0._fields)} but the model has {names}")
            parts = list(state0)
        else:
            raise ArgumentTypeError(
                f"state0 must be a named state, a dict or a (B, D) tensor; got {type(state0).__name__}"
            )
        for name, part, shape in zip(names, parts, model.state_shapes.values()):
            if not isinstance(part, Tensor) or tuple(part.shape[1:]) != shape:
                got = tuple(part.shape) if isinstance(part, Tensor) else type(part).__name__
                raise ValueError(f"state0[{name!r}] must be (B, {', '.join(map(str, shape))}); got {got}")
        flat = flatten(parts)
    if flat.device != model.device or flat.dtype != model.dtype:
        raise ValueError(f"state0 is on {flat.device} with dtype {flat.dtype} but the model is on {model.device} "
                         f"with dtype {model.dtype}; move it with .to(device, dtype)")
    if not torch.isfinite(flat).all():
        raise ValueError("state0 contains NaN or Inf")
    if flat.shape[0] != batch:
        if flat.shape[0] != 1:
            raise ValueError(f"state0 has batch size {flat.shape[0]} but x has {batch}; give both the same B")
        flat = flat.expand(batch, -1)
    return flat


def _check_vector_field(model: Model, t: Tensor, y0: Tensor, drive: Drive, to_state) -> None:
    with torch.no_grad():
        dy = model.vector_field(t[0], to_state(y0), drive.on_interval(0, t[0]))
    fields = getattr(dy, "_fields", None)
    expected = {k: (y0.shape[0], *s) for k, s in model.state_shapes.items()}
    got = dict(zip(fields or expected, (tuple(v.shape) for v in dy))) if isinstance(dy, tuple) else None
    if got != expected:
        raise ValueError(f"{type(model).__name__}.vector_field must return a state with shapes {expected}; "
                         f"got {got if got is not None else type(dy).__name__}")


def _check_finite(ys: Tensor, t: Tensor) -> None:
    if torch.isfinite(ys.sum()):  # one flat reduction, 4x faster than per time: NaN or Inf anywhere spoils it
        return
    _raise_at(~torch.isfinite(ys).flatten(2).all(dim=2).all(dim=0), t)  # exact, per time: the sum may overflow


def _raise_at(bad: Tensor, t: Tensor) -> None:
    """A DivergenceError naming the first output time where ``bad (T,)`` is True, if any."""
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        raise DivergenceError(f"the state became NaN or infinite by t[{i}]={float(t[i]):g}; reduce dt, the "
                              "input or the weights (the dynamics diverge)")


def _outputs(model: Model, states: Any) -> Tensor | None:
    batch, steps = states[0].shape[:2]
    merged = type(states)(*(s.reshape(batch * steps, *s.shape[2:]) for s in states))
    out = model.output(merged)
    return None if out is None else out.reshape(batch, steps, *out.shape[1:])
