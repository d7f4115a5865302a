"""fit(): gradient training of a model on a task or a neural recording."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..data.recording import Recording
from ..errors import ArgumentTypeError, DivergenceError
from ..heap import keep_freed_memory
from ..models.base import Model
from ..simulate import simulate, simulate_signal
from ..state import flatten
from ..tasks.base import Task, TaskBatch
from ..trajectory import Trajectory
from ..validation import as_int, as_real
from .checkpoints import load_checkpoint, save_checkpoint
from .history import History
from .losses import LOSSES, poisson_rate, poisson_signal

Callback = Callable[[int, History, Model], Any]
Regularizer = Callable[[Model, Trajectory], Tensor]


def model_signal(model: Model, traj: Trajectory) -> Tensor:
    """What is compared with data: the readout, or the units themselves (first state variable) when ``n_out == 0``."""
    return traj.outputs if model.n_out else traj.states[0]


def batch_loss(
    model: Model,
    t: Tensor,
    x: Tensor | None,
    target: Tensor,
    mask: Tensor | None = None,
    state0: Any = None,
    *,
    loss: str = "mse",
    bin_width: float | None = None,
    regularizers: Regularizer | Sequence[Regularizer] = (),
    **simulate_kwargs: Any,
) -> tuple[Tensor, Trajectory]:
    """Simulate one batch and return ``(loss + regularizers, trajectory)``: one training step's forward pass.

    ``target`` is ``(B, T, n)``: task targets or recorded rates ("mse"), class
    probabilities ("cross_entropy"), or spike counts in bins of ``bin_width``
    seconds ("poisson"). ``simulate_kwargs`` go to :func:`neurodyn.simulate`.
    """
    traj = simulate(model, t, x, state0, **simulate_kwargs)
    value = signal_loss(loss, model_signal(model, traj), target, mask, bin_width)
    for reg in regularizers:
        value = value + reg(model, traj)
    return value, traj


def signal_loss(loss: str, signal: Tensor, target: Tensor, mask: Tensor | None, bin_width: float | None) -> Tensor:
    """The loss named ``loss`` between the model's signal and ``target`` (see :func:`batch_loss`)."""
    if loss == "poisson":
        return LOSSES[loss](signal, target, bin_width, mask)
    return LOSSES[loss](signal, target, mask)


class _TaskData:
    """Fresh task batches for training; a fixed held-out batch for evaluation."""

    def __init__(self, model: Model, task: Task, batch_size: int | None, eval_batch_size: int, seed: int) -> None:
        if task.n_in != model.n_in or task.n_out != model.n_out:
            raise ValueError(f"{task!r} has n_in={task.n_in}, n_out={task.n_out} but the model has "
                             f"n_in={model.n_in}, n_out={model.n_out}; build the model with the task's sizes")
        self.model, self.task = model, task
        self.batch_size = batch_size or 64
        self.validation = self._move(task.sample(eval_batch_size, torch.Generator().manual_seed(seed + 1)))
        self.bin_width, self.initial = None, None

    def fingerprint(self) -> tuple:
        """What identifies the training data: the task's class and its fixed evaluation batch."""
        return type(self.task).__name__, _summary(self.validation.x, self.validation.y)

    def _move(self, batch: TaskBatch) -> TaskBatch:
        return batch.to(self.model.device, self.model.dtype)

    def batch(self, generator: torch.Generator) -> tuple:
        b = self._move(self.task.sample(self.batch_size, generator))
        return b.t, b.x, b.y, b.mask, None

    def evaluate(self, loss: str, sim: dict) -> dict[str, Any]:
        b = self.validation
        outputs = simulate_signal(self.model, b.t, b.x, **sim)  # the readout alone: no (B, T, D) states kept
        value = signal_loss(loss, outputs, b.y, b.mask, None)
        return {self.task.metric: self.task.evaluate(outputs, b), "val_loss": float(value)}


class _RecordingData:
    """Minibatches of training trials; R² per neuron on the held-out trials.

    When the units stand for the neurons (``n_out == 0``) each trial starts
    from its recorded rates at ``t[0]``; otherwise the initial state is learned.
    """

    def __init__(self, model: Model, rec: Recording, loss: str, batch_size: int | None, holdout: float,
                 seed: int) -> None:
        if loss == "cross_entropy":
            raise ValueError('loss="cross_entropy" is for tasks; fit a recording with "mse" (rates) '
                             'or "poisson" (counts)')
        if loss == "poisson" and rec.counts is None:
            raise ValueError('loss="poisson" needs a recording with spike counts; use loss="mse" to fit rates')
        if loss == "mse" and rec.rates is None:
            raise ValueError('loss="mse" fits rates but the recording only has counts; use loss="poisson"')
        if not (isinstance(holdout, (int, float)) and 0 <= holdout < 1):
            raise ValueError(f"holdout must be a fraction in [0, 1); got {holdout!r}")
        n_units = next(iter(model.state_vars.values()))
        width = model.n_out or n_units
        if width != rec.n_neurons:
            raise ValueError(f"the recording has N={rec.n_neurons} neurons but the model compares "
                             f"{'n_out' if model.n_out else 'its units'}={width}; build it with {rec.n_neurons}")
        if rec.x is not None and rec.x.shape[-1] != model.n_in:
            raise ValueError(f"the recording's stimulus x has {rec.x.shape[-1]} channels but the model has "
                             f"n_in={model.n_in}")
        if rec.x is None and model.n_in:
            raise ValueError(f"the model takes n_in={model.n_in} inputs but the recording has no stimulus x; give "
                             "the Recording its x (B, T, n_in), or build the model with n_in=0")
        if model.n_out == 0 and rec.rates is None:
            raise ValueError("the model's units stand for the neurons (n_out=0), so trials start from the recorded "
                             "rates at t[0], but the recording has only counts; add rates or give the model a readout")
        if model.n_out == 0 and loss == "poisson" and not (rec.rates[:, 0] > 0).all():
            raise ValueError('with loss="poisson" and n_out=0 each trial starts from the units whose rate '
                             "softplus(r) is the recorded rate at t[0], which must then be > 0 (found a rate <= 0); "
                             "give the model a readout (n_out > 0) so that the initial state is learned")
        self.model, self.loss = model, loss
        self.rec = rec.to(model.device, model.dtype)
        self.bin_width = rec.bin_width if loss == "poisson" else None
        order = torch.randperm(rec.n_trials, generator=torch.Generator().manual_seed(seed + 1))
        n_hold = int(round(holdout * rec.n_trials)) if rec.n_trials > 1 else 0
        if rec.n_trials == 1 and holdout > 0:
            warnings.warn("the recording has 1 trial, so none is held out: R^2 is measured on the training trial",
                          stacklevel=3)
        self.held_out, self.train = order[:n_hold].sort().values, order[n_hold:].sort().values
        if len(self.train) == 0:
            raise ValueError(f"holdout={holdout} leaves no training trials; lower it")
        self.batch_size = min(batch_size or 32, len(self.train))
        self.initial = None
        if model.n_out:
            start = flatten(model.initial_state(1)).detach().clone()
            self.initial = torch.nn.Parameter(start)

    def fingerprint(self) -> tuple:
        """What identifies the training data: the recording's arrays and the held-out trials."""
        return _summary(self.rec.t, self.rec.rates, self.rec.counts, self.rec.x), self.held_out.tolist()

    def _trials(self, index: Tensor) -> tuple:
        index = index.to(self.rec.t.device)
        x = None if self.rec.x is None else self.rec.x[index]
        target = (self.rec.counts if self.loss == "poisson" else self.rec.rates)[index]
        if self.initial is not None:
            state0 = self.initial.expand(len(index), -1)
        else:
            start = self.rec.rates[index, 0]
            state0 = self.model.initial_state(len(index))
            state0 = state0._replace(**{state0._fields[0]: poisson_signal(start) if self.loss == "poisson" else start})
        return self.rec.t, x, target, None, state0

    def batch(self, generator: torch.Generator) -> tuple:
        pick = torch.randperm(len(self.train), generator=generator)[: self.batch_size]
        return self._trials(self.train[pick])

    def evaluate(self, loss: str, sim: dict) -> dict[str, Any]:
        index = self.held_out if len(self.held_out) else self.train
        t, x, target, mask, state0 = self._trials(index)
        signal = simulate_signal(self.model, t, x, state0, **sim)
        value = signal_loss(loss, signal, target, mask, self.bin_width)
        predicted = poisson_rate(signal) if loss == "poisson" else signal
        truth = self.rec.firing_rates()[index.to(signal.device)]
        residual = ((predicted - truth) ** 2).sum((0, 1))
        spread = ((truth - truth.mean((0, 1))) ** 2).sum((0, 1))
        constant = spread == 0
        r2 = torch.where(constant, torch.nan, 1 - residual / spread).detach().cpu()
        if constant.any():
            warnings.warn(f"R^2 is undefined (NaN) for neurons {torch.nonzero(constant).flatten().tolist()}: their "
                          "held-out rates do not vary (e.g. no spikes); the mean R^2 leaves them out", stacklevel=4)
        return {"r2": float(r2.nanmean()), "val_loss": float(value), "_r2": r2}


def _summary(*arrays: Tensor | None) -> tuple:
    """The shape and sum of each given array: enough to tell data sets apart in a checkpoint."""
    return tuple((tuple(a.shape), float(a.double().sum())) for a in arrays if a is not None)


def _check_fit_args(steps: Any, lr: Any, loss: str, batch_size: Any, grad_clip: Any, every: dict[str, Any]) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    as_real("lr", lr, gt=0)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}; got {loss!r}")
    for name, value in (("batch_size", batch_size), *every.items()):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int or None; got {value!r}")
    if grad_clip is not None and not (isinstance(grad_clip, (int, float)) and grad_clip > 0):
        raise ValueError(f"grad_clip must be a number > 0 or None; got {grad_clip!r}")


def _make_optimizer(optimizer: Any, params: list[Tensor], extra: Tensor | None, lr: float) -> torch.optim.Optimizer:
    if optimizer is None:
        return torch.optim.Adam(params + ([extra] if extra is not None else []), lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = sum(id(p) not in held for p in params)
        if missing:
            raise ValueError(f"optimizer does not hold {missing} of the model's {len(params)} trainable parameters, "
                             "so fit would not train them; build it from model.parameters(), or pass a callable "
                             "params -> Optimizer")
        if extra is not None:
            optimizer.add_param_group({"params": [extra]})
        return optimizer
    if callable(optimizer):
        return optimizer(params + ([extra] if extra is not None else []))
    raise ArgumentTypeError("optimizer must be None, a torch.optim.Optimizer or a callable params -> Optimizer; "
                            f"got {type(optimizer).__name__}")


def _callables(name: str, value: Any, signature: str) -> tuple[Callable, ...]:
    """``value`` as a tuple of callables: one callable or an iterable of them."""
    if callable(value):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be a callable {signature} or a list of them; "
                                f"got {type(value).__name__}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not callable(item):
            raise ArgumentTypeError(f"{name}[{i}] must be a callable {signature}; got {type(item).__name__} "
                                    f"{item!r}")
    return items


def _resume(path: Path, model: Model, opt: torch.optim.Optimizer, initial: Tensor | None,
            generators: tuple[torch.Generator, torch.Generator], settings: dict[str, Any], steps: int) -> History:
    """Load the checkpoint ``path`` into the model, optimizer, learned initial state and generators.

    The run's ``settings`` must match the checkpoint's (:func:`_check_settings`). The learning rates given
    to this call win over the checkpoint's (with a warning when they differ).
    """
    state = load_checkpoint(path, map_location=model.device)
    _check_settings(path, state.get("settings"), settings)
    done = len(state.get("history", {}).get("loss", ()))
    if done > steps:  # checked before anything is loaded into the caller's model and optimizer
        raise ValueError(f"checkpoint {str(path)!r} has already run {done} steps, more than steps={steps}; pass "
                         f"steps >= {done} to continue it, or a new checkpoint path")
    rates = [group["lr"] for group in opt.param_groups]
    try:
        model.load_state_dict(state["model"])
        if initial is not None:
            initial.data.copy_(state["initial_state"])
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        reason = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"checkpoint {str(path)!r} was written for another model or optimizer ({reason}); resume "
                         "with the model and optimizer of that run, or pass a new checkpoint path (or delete the "
                         "file) to start afresh") from err
    saved = [group["lr"] for group in opt.param_groups]
    if saved != rates:
        warnings.warn(f"resuming {str(path)!r} with lr={rates} instead of the checkpoint's {saved}: the "
                      "remaining steps use the new lr, so the run no longer repeats the original one",
                      stacklevel=3)
        for group, lr in zip(opt.param_groups, rates, strict=True):
            group["lr"] = lr
    for generator, key in zip(generators, ("generator", "noise"), strict=True):
        generator.set_state(state[key])
    return History.from_state_dict(state["history"])


def _check_settings(path: Path, saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """Refuse to resume with other data, loss, batch size or seed (the history and held-out trials would mix two
    runs); warn when the simulation options differ (the run continues, but no longer repeats the original)."""
    if saved is None:  # a checkpoint from before settings were saved
        return
    differ = [key for key in now if not _same(saved.get(key), now[key])]
    fixed = [key for key in differ if key != "simulate"]
    if fixed:
        described = "; ".join("another task or recording, or other held-out trials" if key == "data" else
                              f"{key}: checkpoint {saved.get(key)!r}, this call {now[key]!r}" for key in fixed)
        raise ValueError(f"checkpoint {str(path)!r} was written by a run with other settings ({described}); resume "
                         "with that run's data, loss, batch_size, holdout and seed, or pass a new checkpoint path to "
                         "start afresh")
    if differ:
        warnings.warn(f"resuming {str(path)!r} with simulate options {now['simulate']} instead of the checkpoint's "
                      f"{saved['simulate']}: the run no longer repeats the original one", stacklevel=4)


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats compared to 1e-9 (sums over data can round differently on another device)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def fit(
    model: Model,
    data: Task | Recording,
    *,
    loss: str = "mse",
    steps: int,
    lr: float = 1e-3,
    optimizer: Any = None,
    batch_size: int | None = None,
    solver: str = "euler",
    dt: float | None = None,
    gradient: str = "backprop",
    regularizers: Regularizer | Sequence[Regularizer] = (),
    grad_clip: float | None = None,
    noise_std: float = 0.0,
    callbacks: Callback | Sequence[Callback] = (),
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    eval_batch_size: int = 256,
    holdout: float = 0.2,
    seed: int = 0,
) -> History:
    """Train ``model`` by gradient descent through :func:`neurodyn.simulate` (Song, Yang & Wang 2016).

    ``data`` is a :class:`~neurodyn.tasks.Task` (a fresh batch of ``batch_size``
    trials, default 64, each step; the targets weighted by the task's mask) or a
    :class:`~neurodyn.data.Recording` (minibatches of ``batch_size`` training
    trials, default 32; a fraction ``holdout`` of trials is held out for R² per
    neuron). ``loss`` is "mse", "cross_entropy" (task outputs as logits) or
    "poisson" (spike counts, rate ``softplus(output)``; with ``n_out == 0`` each
    trial then starts from ``softplus^-1`` of the recorded rates). ``steps`` is the total
    number of optimizer steps (Adam with ``lr`` unless ``optimizer``: an
    Optimizer or a callable ``params -> Optimizer``). ``solver``, ``dt``,
    ``gradient`` and ``noise_std`` go to ``simulate``. ``regularizers`` (one or a
    list) are callables ``(model, trajectory) -> scalar`` added to the loss, e.g.
    ``lambda m, traj: neurodyn.l2_rates(traj["r"], 1e-3)``; ``grad_clip``
    clips the gradient norm. Every ``eval_every`` steps (default ``steps // 20``)
    and at the end the metrics are recorded (a task's on a fixed batch of
    ``eval_batch_size`` trials); each of ``callbacks`` (one or a list),
    ``callback(step, history, model)``, runs after
    every step and stops the run by returning True. With ``checkpoint`` (a file)
    the run saves itself atomically every ``checkpoint_every`` steps (default
    ``eval_every``) and resumes from the file when it exists, continuing the
    identical sequence of batches and losses (``seed`` fixes it). A resumed run
    takes the learning rate of this call: if it differs from the checkpoint's, a
    warning says so and the remaining steps use the new one; other simulate options
    likewise warn, while other data, loss, batch size, holdout or seed are an error. A NaN loss or
    gradient, or a simulation that diverges (in training or evaluation), raises
    :class:`~neurodyn.DivergenceError` naming the step and leaves the last good
    checkpoint in place. On Linux (glibc), from the first fit on, the process keeps the memory
    that a step frees for the next step's tensors instead of page-faulting it in again, at the
    price of a higher resident size (:mod:`neurodyn.heap`; ``NEURODYN_KEEP_FREED_MEMORY=0`` opts out).
    """
    if not isinstance(model, Model):
        raise ArgumentTypeError(f"model must be a neurodyn Model; got {type(model).__name__}")
    seed = as_int("seed", seed, 0)
    eval_every = eval_every or max(1, steps // 20) if isinstance(steps, int) else eval_every
    checkpoint_every = checkpoint_every or eval_every
    _check_fit_args(steps, lr, loss, batch_size, grad_clip,
                    {"eval_every": eval_every, "checkpoint_every": checkpoint_every,
                     "eval_batch_size": eval_batch_size})
    regularizers = _callables("regularizers", regularizers, "(model, trajectory) -> scalar tensor")
    callbacks = _callables("callbacks", callbacks, "(step, history, model) -> bool")
    if isinstance(data, Task):
        if loss == "poisson":
            raise ValueError('loss="poisson" fits the spike counts of a Recording; train on a task with "mse" or '
                             '"cross_entropy"')
        problem: _TaskData | _RecordingData = _TaskData(model, data, batch_size, eval_batch_size, seed)
    elif isinstance(data, Recording):
        problem = _RecordingData(model, data, loss, batch_size, holdout, seed)
    else:
        raise ArgumentTypeError(f"data must be a neurodyn Task or Recording; got {type(data).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params and problem.initial is None:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=True), so fit has "
                         "nothing to train; e.g. Equations(..., trainable=[...])")
    opt = _make_optimizer(optimizer, params, problem.initial, lr)
    keep_freed_memory()
    trained = params + ([problem.initial] if problem.initial is not None else [])
    sim = {"solver": solver, "dt": dt, "gradient": gradient, "noise_std": noise_std}
    generator = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=model.device).manual_seed(seed + 2)
    history = History(held_out=getattr(problem, "held_out", None))

    settings = {"data": problem.fingerprint(), "loss": loss, "batch_size": problem.batch_size, "seed": seed,
                "simulate": sim}
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None and path.exists():
        history = _resume(path, model, opt, problem.initial, (generator, noise), settings, steps)

    def save() -> None:
        if path is not None:
            history.initial_state = None if problem.initial is None else problem.initial.detach().clone()
            save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "history": history.state_dict(), "generator": generator.get_state(),
                                   "noise": noise.get_state(), "initial_state": problem.initial,
                                   "settings": settings})

    def diverged(step: int, what: str) -> DivergenceError:
        kept = (f"the last good checkpoint ({str(path)!r}) is kept" if path is not None and path.exists()
                else "no checkpoint was written")
        return DivergenceError(f"{what} at step {step}; the run stopped and {kept}. Lower lr, set grad_clip, "
                               "or reduce dt")

    start = history.steps
    clock = time.perf_counter() - (history.wall_time[-1] if history.wall_time else 0.0)
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="fit", unit="step", leave=False)
    try:
        for step in range(start, steps):
            t, x, target, mask, state0 = problem.batch(generator)
            opt.zero_grad(set_to_none=True)
            try:
                value, _ = batch_loss(model, t, x, target, mask, state0, loss=loss, bin_width=problem.bin_width,
                                      regularizers=regularizers, generator=noise, **sim)
            except DivergenceError as err:
                raise diverged(step, f"the simulation diverged ({err})") from err
            current = float(value.detach())
            if not math.isfinite(current):
                raise diverged(step, f"the loss became {current}")
            value.backward()
            norm = torch.nn.utils.clip_grad_norm_(trained, grad_clip if grad_clip else math.inf)
            if not torch.isfinite(norm):
                raise diverged(step, "the gradient became NaN or Inf")
            opt.step()
            history.loss.append(current)
            history.wall_time.append(time.perf_counter() - clock)
            done = step + 1
            if done % eval_every == 0 or done == steps:
                try:
                    with torch.no_grad():
                        metrics = problem.evaluate(loss, {**sim, "generator": torch.Generator(device=model.device)
                                                          .manual_seed(seed + 3)})
                except DivergenceError as err:
                    raise diverged(done, f"the evaluation on held-out data diverged ({err})") from err
                history.r2 = metrics.pop("_r2", history.r2)
                for name, v in metrics.items():
                    history.metrics.setdefault(name, []).append(v)
                history.eval_steps.append(done)
                bar.set_postfix(loss=f"{current:.4g}", **{k: f"{v:.3g}" for k, v in metrics.items()})
            bar.update(1)
            stop = [bool(cb(done, history, model)) for cb in callbacks]
            if done % checkpoint_every == 0 or done == steps or any(stop):
                save()
            if any(stop):
                break
    finally:
        bar.close()
    history.initial_state = None if problem.initial is None else problem.initial.detach().clone()
    return history


class StopWhen:
    """Callback that stops :func:`fit` once ``history.last(metric)`` reaches ``at_least`` (or falls to ``at_most``)."""

    def __init__(self, metric: str, *, at_least: float | None = None, at_most: float | None = None) -> None:
        if (at_least is None) == (at_most is None):
            raise ValueError("give exactly one of at_least and at_most")
        self.metric, self.at_least, self.at_most = metric, at_least, at_most

    def __call__(self, step: int, history: History, model: Model) -> bool:
        try:
            value = history.last(self.metric)
        except KeyError:
            return False
        return value >= self.at_least if self.at_least is not None else value <= self.at_most
