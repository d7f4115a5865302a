"""FORCE training speed: neurodyn's train_force against the textbook NumPy RLS loop, on CPU.

Run: python benchmarks/bench_force.py [--steps S] [--n N] [--threads T]
Both train the readout of the same N = 400 network (g = 1.5, tau = 10 ms,
dt = 1 ms) on sin(2 pi t) + 0.5 sin(4 pi t), RLS every step; the NumPy peer is
the loop of Sussillo & Abbott (2009) written directly. Measured side by side in
this run; prints the time per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from neurodyn.learning import train_force
from neurodyn.models import ForceRNN


def numpy_force(W: np.ndarray, w_fb: np.ndarray, r: np.ndarray, target: np.ndarray, dt: float, tau: float) -> None:
    """The reference loop: rate form, Euler steps, RLS update every step."""
    n = W.shape[0]
    P, w = np.eye(n), np.zeros(n)
    for f in target:
        z = w @ r
        k = P @ r
        c = 1.0 / (1.0 + r @ k)
        P -= c * np.outer(k, k)
        w -= c * (z - f) * k
        r = r + dt / tau * (-r + np.tanh(W @ r + w_fb * z))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dt, tau = 1e-3, 0.01
    t = torch.arange(args.steps, dtype=torch.float64) * dt
    target = torch.sin(2 * math.pi * t) + 0.5 * torch.sin(4 * math.pi * t)
    model = ForceRNN(args.n, 1, tau=tau, g=1.5, p=0.1).double()
    r0 = 0.5 * torch.randn(1, args.n, dtype=torch.float64)
    W, w_fb = model.W.detach().numpy(), model.w_fb[:, 0].numpy()

    start = time.perf_counter()
    train_force(model, target[:, None], t, state0=r0)
    ours = (time.perf_counter() - start) / args.steps
    start = time.perf_counter()
    numpy_force(W, w_fb, r0[0].numpy().copy(), target.numpy(), dt, tau)
    peer = (time.perf_counter() - start) / args.steps
    print(f"N={args.n}, {args.steps} RLS steps, {args.threads} thread(s)")
    print(f"train_force  {ours * 1e6:8.1f} us/step")
    print(f"numpy loop   {peer * 1e6:8.1f} us/step")
    print(f"ratio train_force / numpy = {ours / peer:.2f}")


if __name__ == "__main__":
    main()
