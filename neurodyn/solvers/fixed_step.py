"""Fixed-step explicit Runge–Kutta integration (Euler, midpoint, RK4) and Euler–Maruyama.

The right-hand side is ``f(t, y, k) -> dy/dt`` where ``k`` is the index of the
output interval ``[t_k, t_{k+1})`` the step lies in, so piecewise forcing can
be looked up without a search. Each output interval is split into
``ceil((t_{k+1} - t_k) / dt)`` equal steps (one step when ``dt`` is None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .leaves import Leaves

RHS = Callable[[float, Tensor, int], Tensor]


def euler(f: RHS, t: float, h: float, y: Tensor, k: int) -> Tensor:
    return torch.add(y, f(t, y, k), alpha=h)


def midpoint(f: RHS, t: float, h: float, y: Tensor, k: int) -> Tensor:
    return y + h * f(t + h / 2, y + (h / 2) * f(t, y, k), k)


def rk4(f: RHS, t: float, h: float, y: Tensor, k: int) -> Tensor:
    """The classic RK4 step; its last stage is read just before ``t + h`` (the next float down), so a switch
    at the step's end (a perturbation window's edge) belongs to the next step, as the other stages' do."""
    k1 = f(t, y, k)
    k2 = f(t + h / 2, y + (h / 2) * k1, k)
    k3 = f(t + h / 2, y + (h / 2) * k2, k)
    k4 = f(math.nextafter(t + h, t), y + h * k3, k)
    return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


STEPPERS = {"euler": (euler, 1), "midpoint": (midpoint, 2), "rk4": (rk4, 4)}


@dataclass(frozen=True)
class Step:
    t: float
    h: float
    interval: int
    record: bool  # the state after this step is an output


PASS_BYTES = 1 << 20  # states per pass of a run without a graph: about a core's L2 cache
GRAPH_PASS_BYTES = 8 << 20  # with a graph all states are kept anyway: fewer passes, so fewer per-pass costs
Scan = Callable[..., tuple[Tensor, ...]]
"""``scan(steps, y, noise, into=None) -> (y_final, *recorded)``; where no graph is recorded ``into (B, R, ...)``
may be given, and the R recorded states are written there instead (``(y_final,)`` is returned)."""


def substeps(length: float, dt: float) -> int:
    """How many equal steps cover an interval of ``length`` with steps of at most ``dt``, up to 0.1 %: a grid
    ``dt`` apart in float32 (whose spacing is off by up to ~1e-4 relative) takes one step per interval."""
    return max(1, math.ceil(length / dt - 1e-3))


def schedule(t: list[float], dt: float | None) -> list[Step]:
    """The steps covering the output grid ``t``, at most ``dt`` long each (see :func:`substeps`)."""
    steps = []
    for k, (a, b) in enumerate(zip(t[:-1], t[1:])):
        n = 1 if dt is None else substeps(b - a, dt)
        h = (b - a) / n
        steps += [Step(a + j * h, h, k, j == n - 1) for j in range(n)]
    return steps


def _run(f: RHS, stepper, steps: list[Step], y: Tensor, noise: Tensor | None,
         into: Tensor | None = None) -> tuple[Tensor, ...]:
    """Integrate over ``steps``; return the final state followed by the recorded states (a :data:`Scan`)."""
    recorded, filled = [], 0
    for i, s in enumerate(steps):
        y = stepper(f, s.t, s.h, y, s.interval)
        if noise is not None:
            y = y + math.sqrt(s.h) * noise[i]
        if s.record and into is not None:
            into[:, filled] = y
            filled += 1
        elif s.record:
            recorded.append(y)
    return (y, *recorded)


def integrate_fixed(
    f: RHS,
    y0: Tensor,
    t: Tensor,
    *,
    method: str,
    dt: float | None,
    diffusion: Tensor | None = None,
    generator: torch.Generator | None = None,
    segments: bool = False,
    max_steps: int,
    scan: Scan | None = None,
    record: Callable[[Tensor], Tensor] | None = None,
    inputs: Sequence[Tensor] = (),
) -> tuple[Tensor, int]:
    """Integrate ``dy = f dt (+ diffusion dW)`` and return ``(ys (B, T, D), nfe)``.

    ``diffusion`` (per-dimension, Euler only) adds ``diffusion * sqrt(h) * N(0, 1)``
    per step (Euler–Maruyama), drawn in ~sqrt(S) segments so that both modes
    see the same noise. ``segments=True`` checkpoints each segment and
    recomputes it during backward (memory ~sqrt(S)), with identical results;
    otherwise consecutive segments run together in passes of about
    ``PASS_BYTES`` of states without a graph (small states: fewer, longer passes;
    large ones stay cache-sized), ``GRAPH_PASS_BYTES`` where autograd records
    (each pass is one fused node of the scans). ``scan(steps, y, noise) -> (y_final, *recorded)``, when
    given, replaces the generic loop over ``method``'s steps (same contract as
    ``_run``; e.g. a fused kernel). ``record(y) -> (B, ...)``, when given, is what is
    kept of each output time's state ``y`` (e.g. a readout) instead of the state.
    ``inputs`` are tensors made before the integration that ``f`` reads (e.g. an input
    signal): checkpointed segments pass their gradients on, as backprop does.
    """
    stepper, stages = STEPPERS[method]
    steps = schedule(t.tolist(), dt)
    if len(steps) > max_steps:
        rounded = (" (in float32 the spacing of t is rounded, and intervals a little longer than dt take two "
                   "steps: simulate in float64, model.double(), or step on the grid with dt=None)"
                   if dt is not None and t.dtype == torch.float32 else "")
        raise ValueError(f"integration needs {len(steps)} steps but max_steps={max_steps}; pass a larger max_steps "
                         f"or a larger dt{rounded}")
    seg = max(1, math.isqrt(len(steps)))
    chunks = [steps[start:start + seg] for start in range(0, len(steps), seg)]
    noises = [None] * len(chunks)
    if diffusion is not None:
        noises = [diffusion * torch.randn((len(c), *y0.shape), generator=generator, device=y0.device, dtype=y0.dtype)
                  for c in chunks]
    graph = torch.is_grad_enabled()
    checkpointed = segments and graph
    per_pass = 1 if checkpointed else max(1, (GRAPH_PASS_BYTES if graph else PASS_BYTES)
                                          // (y0.numel() * y0.element_size() * seg))
    run = scan or partial(_run, f, stepper)
    passes = _passes(chunks, noises, per_pass)
    if not graph:  # copy each pass out at once, so the next pass reuses its (warm) buffers
        return _run_into_output(run, passes, y0, len(t), record), len(steps) * stages
    if checkpointed:
        run = partial(_checkpointed, run, Leaves(stop=inputs), inputs)
    keep = record or (lambda y: y)
    outputs = [keep(y0)]
    y = y0
    for chunk, noise in passes:
        result = run(chunk, y, noise)
        y = result[0]
        outputs.extend(map(keep, result[1:]))
    return torch.stack(outputs, dim=1), len(steps) * stages


def _checkpointed(run: Scan, leaves: Leaves, inputs: Sequence[Tensor], chunk: list[Step], y: Tensor,
                  noise: Tensor | None) -> tuple[Tensor, ...]:
    """``run`` over one segment as one autograd node that keeps only the start state ``y``.

    The forward pass records the segment's graph only to find the tensors requiring grad that the steps
    read (parameters, the noise's sources, whatever a closure holds; ``inputs`` are taken as they are, and
    their gradients passed on), then drops it. Where one of those tensors has a hook (which must see its
    whole gradient once) or was also used to make ``inputs``, torch's checkpoint runs the segment.
    """
    probe = run(chunk, y.detach(), noise)
    outside = [v for v in inputs if v.requires_grad]
    found = [v for v in leaves(probe) if all(v is not o for o in outside)]
    if not (found or outside or y.requires_grad):
        return probe
    if any(v._backward_hooks for v in found) or leaves.behind_stop(found):
        return checkpoint(run, chunk, y, noise, use_reentrant=False, determinism_check="none")
    outputs = probe[1:] if chunk[-1].record else probe  # the last record is then the final state
    outputs = _Segment.apply(run, chunk, noise, tuple(o.detach() for o in outputs), y, *outside, *found)
    return (outputs[-1], *outputs) if chunk[-1].record else outputs


class _Segment(torch.autograd.Function):
    """A segment's ``outputs``, computed without a graph; the backward pass recomputes them from the start
    state ``y`` and returns the gradients of ``y`` and of the ``sources`` (tensors made before the segment
    that it reads), exactly those of backprop."""

    @staticmethod
    def forward(ctx: Any, run: Scan, chunk: list[Step], noise: Tensor | None, outputs: tuple[Tensor, ...],
                y: Tensor, *sources: Tensor) -> tuple[Tensor, ...]:
        ctx.run, ctx.chunk, ctx.noise = run, chunk, noise
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y, *sources)
        return outputs

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: the recomputation starts from a detached state
            raise RuntimeError('second-order gradients (create_graph=True) are not supported with '
                               'gradient="checkpoint"; use gradient="backprop"')
        start, *sources = ctx.saved_tensors
        if any(v._backward_hooks for v in sources):  # the forward pass saw none: added since
            raise RuntimeError('a hook was registered on a tensor that a simulate(..., gradient="checkpoint") reads '
                               "after it ran; register it before simulate, or use gradient=\"backprop\"")
        needs = ctx.needs_input_grad[4:]  # y, *sources
        y = start.detach().requires_grad_(needs[0])
        with torch.enable_grad():
            final, *recorded = ctx.run(ctx.chunk, y, ctx.noise)
        outputs = recorded if ctx.chunk[-1].record else [final, *recorded]
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if g is not None and o.requires_grad]
        wanted = [v for v, need in zip((y, *sources), needs, strict=True) if need]
        found = [None] * len(wanted)
        if pairs and wanted:  # retain_graph: other segments go through the same input and noise sources
            found = torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True,
                                        retain_graph=True)
        found = iter(found)
        return (None, None, None, None, *(next(found) if need else None for need in needs))


def _passes(chunks: list[list[Step]], noises: list, per_pass: int) -> Iterator[tuple[list[Step], Tensor | None]]:
    """The steps and noise of each pass: ``per_pass`` consecutive noise segments run together."""
    for first in range(0, len(chunks), per_pass):
        noise = None if noises[0] is None else torch.cat(noises[first:first + per_pass])
        yield [s for c in chunks[first:first + per_pass] for s in c], noise


def _run_into_output(run: Scan, passes: Iterator[tuple[list[Step], Tensor | None]], y0: Tensor,
                     times: int, record: Callable[[Tensor], Tensor] | None) -> Tensor:
    """The no-graph loop: ``(B, times, ...)`` filled pass by pass (fresh memory is touched once, for the output:
    each pass's states are copied into it once, ``record``'s from a stack)."""
    first = y0 if record is None else record(y0)
    ys = first.new_empty(first.shape[0], times, *first.shape[1:])
    ys[:, 0] = first
    y, filled = y0, 1
    for chunk, noise in passes:
        if record is None:
            count = sum(s.record for s in chunk)
            (y,) = run(chunk, y, noise, ys[:, filled:filled + count])
            filled += count
            continue
        y, *states = run(chunk, y, noise)
        recorded = [record(s) for s in states]
        if recorded and len(recorded) * recorded[0].numel() * recorded[0].element_size() > PASS_BYTES:
            for i, state in enumerate(recorded):  # past the cache: no stacked temporary (8192 x 64 x 7: 2x faster)
                ys[:, filled + i] = state
        elif recorded:
            ys[:, filled:filled + len(recorded)] = torch.stack(recorded, dim=1)
        filled += len(recorded)
        y = y.clone() if states and y is states[-1] else y  # do not keep the pass's buffer alive
    return ys
