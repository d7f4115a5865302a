"""``neurodyn demo``: a small simulation of a chaotic rate network, saved as a figure."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output", help="folder for the figure (created if missing)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import RateRNN, simulate

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out} is an existing file; pass a folder")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = RateRNN(200, g=1.5, tau=0.01)
    t = torch.linspace(0, 1, 1001)
    state0 = model.State(torch.randn(1, 200))
    with torch.no_grad():
        traj = simulate(model, t, state0=state0, solver="dopri5")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(t, traj["r"][0, :, :5])
    ax.set(xlabel="t (s)", ylabel="r", title="chaotic rate network, g = 1.5")
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=out)
    os.close(fd)
    fig.savefig(tmp)
    os.replace(tmp, out / "trajectories.png")
    print(f"wrote {out / 'trajectories.png'} ({traj.nfe} vector-field evaluations)")
    return 0
