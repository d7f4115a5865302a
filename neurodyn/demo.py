"""``neurodyn demo``: train a Dale's-law network on parametric working memory, then open the black box.

The main job, end to end (primer Sec. 3-4; Song, Yang & Wang 2016; Romo et al. 1999):

1. train an ``EIRateRNN`` (Dale's law, Eqs. 35-36) on ``ParametricWorkingMemory``
   with Euler steps, showing a progress bar, and measure its accuracy on fresh trials;
2. find fixed points seeded from delay-period states (``find_fixed_points``), and the
   line attractor (``line_attractor``): the eigenvalue nearest 0, its direction, and
   how well f1 is ordered along it (Spearman correlation of f1 with the projection of
   each trial's end-of-delay state on the line direction);
3. write ``summary.json`` and four figures: training curve, PCA trajectories with
   fixed points and the line, eigenvalue spectrum, sorted connectivity.

Every file is written atomically (a temporary file in ``--out``, then ``os.replace``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import is_neurodyn_png, refuse_foreign, save_png, write_atomic


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run."""

    n_e: int
    n_i: int
    steps: int
    batch_size: int
    lr: float
    n_eval: int
    n_seeds: int


FULL = DemoConfig(n_e=80, n_i=20, steps=600, batch_size=64, lr=1e-2, n_eval=512, n_seeds=256)
QUICK = DemoConfig(n_e=80, n_i=20, steps=200, batch_size=64, lr=1e-2, n_eval=256, n_seeds=64)
FIGURES = ("training_curve.png", "pca_trajectories.png", "eigenspectrum.png", "connectivity.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output",
                        help="folder for summary.json and the figures (created if missing; default demo_output)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 200 training steps instead of 600 (< 1 minute on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train (default cpu)")


def run(args: argparse.Namespace) -> int:
    try:
        if not 0 <= args.seed < 2**63:
            raise DemoError(f"--seed must be in [0, 2**63); got {args.seed}")
        if not args.out:
            raise DemoError("--out is empty; pass a folder path (e.g. --out demo_output, or . for here)")
        device = _device(args.device)  # before creating --out: a refused run leaves nothing behind
        out = prepare_output(Path(args.out))
    except (DemoError, FileExistsError) as err:
        print(f"neurodyn demo: error: {err}", file=sys.stderr)
        return 2
    from .errors import DivergenceError

    try:
        summary = main_job(out, QUICK if args.quick else FULL, seed=args.seed, device=device)
    except OSError as err:
        print(f"neurodyn demo: error: could not write to {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    except DivergenceError as err:
        print(f"neurodyn demo: error: training diverged: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    print(_verdict(summary["slow_mode"]))
    print(f"wrote {out / 'summary.json'} and {len(FIGURES)} figures in {out}")
    return 0


class DemoError(Exception):
    """A problem with the command line (reported as a message, never a traceback)."""


def prepare_output(out: Path) -> Path:
    """Create ``out`` if missing and check that files can be written in it."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is an existing file, not a folder; pass a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise DemoError(f"cannot write to --out {out}: {err.strerror or err}; pass a writable folder") from None
    refuse_foreign(out / "summary.json", _is_summary)
    for name in FIGURES:
        refuse_foreign(out / name, is_neurodyn_png)
    return out


def _is_summary(path: Path) -> bool:
    """Whether ``path`` is a demo's summary.json (a rerun replaces it)."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"accuracy", "n_fixed_points", "slow_mode"} <= set(summary)


def _device(name: str) -> Any:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise DemoError("--device cuda was requested but CUDA is not available; use --device cpu")
    return torch.device(name)


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)


def main_job(out: Path, config: DemoConfig, *, seed: int, device: Any) -> dict[str, Any]:
    """Train, analyse and plot; write ``summary.json`` and the figures in ``out``; return the summary."""
    import torch

    from .analysis import find_fixed_points, line_attractor, sample_states
    from .learning import fit
    from .models import EIRateRNN
    from .simulate import simulate
    from .tasks import ParametricWorkingMemory

    timings: dict[str, float] = {}
    if device.type == "cpu":
        # 100-unit matmuls gain nothing from intra-op threads, and on a busy 2-core machine two
        # spinning threads per process made each training step 40x slower (3.9 s vs 0.08 s, measured).
        torch.set_num_threads(1)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    task = ParametricWorkingMemory()
    model = EIRateRNN(config.n_e, config.n_i, task.n_in, task.n_out, tau=0.1, activation="relu").to(device)
    with _timed(timings, "train"):
        history = fit(model, task, steps=config.steps, lr=config.lr, batch_size=config.batch_size,
                      solver="euler", dt=task.dt, progress=True, seed=seed)
    with _timed(timings, "evaluate"):
        batch = task.sample(config.n_eval, generator=generator).to(device)
        with torch.no_grad():
            traj = simulate(model, batch.t, batch.x, solver="euler", dt=task.dt)
        accuracy = task.evaluate(traj.outputs, batch)
    with _timed(timings, "fixed_points"):
        delay = delay_states(traj.flat(), batch)
        # starting states: delay-period states plus a little noise (Sussillo & Barak 2013)
        init = sample_states(delay, config.n_seeds, noise=0.01 * float(delay.std()), generator=generator)
        x_delay = torch.zeros(1, task.n_in, device=device)
        x_delay[0, 0] = 1.0  # only the fixation cue is on during the delay
        fps = find_fixed_points(model, init, x=x_delay)
        line = line_attractor(fps)
        end_of_delay = delay[:, -1]
        correlation = f1_order_correlation(end_of_delay, line.direction, batch.info["f1"])
    with _timed(timings, "figures"):
        write_figures(out, history, traj, batch, fps, line, model, end_of_delay)
    summary = {
        "accuracy": accuracy,
        "n_fixed_points": int(fps.states.shape[0]),
        "fixed_point_stability": fps.stability,
        "n_unconverged_starts": fps.n_unconverged,
        "line_attractor_eigval": _complex_json(line.eigval),
        "slow_mode": slow_mode(line.eigval, float(max(task.durations["delay"]))),
        "f1_order_correlation": correlation,
        "timings_s": timings,
        "config": {**config.__dict__, "seed": seed, "device": str(device)},
    }
    write_atomic(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"),
                 suffix=".json")
    return summary


def delay_states(flat: Any, batch: Any) -> Any:
    """The flat states ``(B, T_delay, D)`` of each trial's delay epoch (the shortest delay of the batch)."""
    import torch

    window = batch.info["epochs"]["delay"].to(flat.device)
    length = int((window[:, 1] - window[:, 0]).min())
    if length < 1:
        raise ValueError("the task has no delay epoch; the demo needs a delay to find the memory's fixed points")
    index = window[:, :1] + torch.arange(length, device=flat.device)
    return torch.gather(flat, 1, index[..., None].expand(-1, -1, flat.shape[-1]))


def f1_order_correlation(states: Any, direction: Any, f1: Any) -> float:
    """|Spearman rho| between f1 and the position of each end-of-delay state along the line direction."""
    from scipy.stats import spearmanr

    position = (states @ direction.to(states)).detach().cpu().numpy()
    rho = spearmanr(position, f1.detach().cpu().numpy()).statistic
    return float(abs(rho))


def write_figures(out: Path, history: Any, traj: Any, batch: Any, fps: Any, line: Any, model: Any,
                  end_of_delay: Any) -> None:
    """The four demo figures, each saved atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from . import plot

    f1 = batch.info["f1"].cpu()
    levels = torch.unique(f1)
    delay = delay_states(traj.flat(), batch).cpu()
    mean_delay = torch.stack([delay[f1 == v].mean(0) for v in levels])  # trial-averaged, as in Fig. 6B
    centered = end_of_delay.cpu() - end_of_delay.cpu().mean(0)
    selectivity = ((centered * (f1 - f1.mean())[:, None]).mean(0)
                   / (centered.std(0) * f1.std() + 1e-12))  # correlation of each unit's delay rate with f1

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(history.loss)
    ax.set(xlabel="training step", ylabel="loss", title="training curve")
    figures = {
        "training_curve.png": fig,
        "pca_trajectories.png": plot.trajectories(mean_delay, fixed_points=fps, line=line, color_by=levels).figure,
        "eigenspectrum.png": plot.eigenspectrum(fps).figure,
        "connectivity.png": plot.connectivity(model, selectivity=selectivity).figure,
    }
    for name, figure in figures.items():
        figure.tight_layout()
        save_png(out / name, figure)
        plt.close(figure)


def slow_mode(eigval: complex, delay: float) -> dict[str, Any]:
    """What the eigenvalue nearest 0 says about the memory held over a ``delay`` (s).

    ``time_constant_s = 1/|Re lambda|`` (None if 0) and ``rotation_hz = |Im lambda|/(2 pi)``. It is a line
    attractor over the delay (Seung 1996) when the mode is real (no rotation) and decays more slowly than the
    delay lasts; a complex pair is a slowly decaying rotation, which holds f1 only at the trained delay.
    """
    eigval = complex(eigval)
    rate, rotation = abs(eigval.real), abs(eigval.imag) / (2 * math.pi)
    real = abs(eigval.imag) <= 1e-6 * max(1.0, abs(eigval))
    time_constant = 1 / rate if rate > 0 else math.inf
    return {"time_constant_s": time_constant if math.isfinite(time_constant) else None,
            "rotation_hz": 0.0 if real else rotation, "delay_s": delay,
            "line_attractor": bool(real and time_constant > delay)}


def _verdict(mode: dict[str, Any]) -> str:
    tau = "no decay" if mode["time_constant_s"] is None else f"time constant {mode['time_constant_s']:.2g} s"
    if mode["line_attractor"]:
        return f"slowest mode: {tau}, real: a line attractor over the {mode['delay_s']:g} s delay"
    if mode["rotation_hz"]:
        return (f"slowest mode: {tau}, rotating at {mode['rotation_hz']:.2g} Hz: f1 is held in a slowly decaying "
                "rotation, not on a line attractor")
    return f"slowest mode: {tau}, shorter than the {mode['delay_s']:g} s delay: not a line attractor"


def _complex_json(value: Any) -> float | dict[str, float]:
    """A real number, or ``{"real": ..., "imag": ...}`` when the eigenvalue is complex."""
    value = complex(value)
    return value.real if value.imag == 0 else {"real": value.real, "imag": value.imag}
