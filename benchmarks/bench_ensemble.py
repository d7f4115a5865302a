"""Training K networks as one Ensemble against K sequential fit calls, on CPU.

Run: python benchmarks/bench_ensemble.py [--quick] [--threads N] [--batch-size B]
Trains K = 32 RateRNNs of N = 64 units on perceptual decision making, once as
``nd.ensemble(...).fit(task)`` and once as 32 ``fit(model_k, task)`` calls with the
same settings (the two give the same trained networks; tests/test_ensemble.py checks
that), measured side by side in this run, and prints the times and their ratio: in
total, for the Adam steps alone (``History.wall_time``), and for the rest (setup and
the final evaluation).
"""

from __future__ import annotations

import argparse
import time

import torch

import neurodyn as nd
from neurodyn.learning import fit
from neurodyn.tasks import PerceptualDecisionMaking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 networks, 5 steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="trials per network per step (default 16)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 20, quick 5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    k, n = (8, 64) if args.quick else (32, 64)
    steps = args.steps or (5 if args.quick else 20)
    task = PerceptualDecisionMaking(dt=0.02)
    options = {"steps": steps, "lr": 1e-2, "batch_size": args.batch_size, "progress": False, "eval_every": steps}

    def factory(seed: int) -> nd.RateRNN:
        return nd.RateRNN(n, task.n_in, task.n_out, tau=0.1)

    fit(factory(0), task, **{**options, "steps": 1})  # warm-up: lazy imports and allocator
    ens = nd.ensemble(factory, k)
    members = ens.unstack()

    start = time.perf_counter()
    history = ens.fit(task, **options)
    together = time.perf_counter() - start
    together_train = history.wall_time[-1]  # the Adam steps; the rest is the final evaluation

    start = time.perf_counter()
    sequential_train = 0.0
    for model in members:
        sequential_train += fit(model, task, **options).wall_time[-1]
    sequential = time.perf_counter() - start

    print(f"K={k} RateRNNs of N={n}, {steps} Adam steps of {args.batch_size} trials "
          f"(T={task.sample(1).t.shape[0]} Euler steps) + one 256-trial evaluation, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'':<28}{'total':>9}{'steps':>9}{'eval+setup':>12}")
    for name, total, train in (("one Ensemble.fit", together, together_train),
                               (f"{k} sequential fit calls", sequential, sequential_train)):
        print(f"{name:<28}{total:8.2f}s{train:8.2f}s{total - train:11.2f}s")
    rest = (sequential - sequential_train) / (together - together_train)
    print(f"{'speed-up (sequential / ens.)':<28}{sequential / together:8.1f}x{sequential_train / together_train:8.1f}x"
          f"{rest:11.1f}x")


if __name__ == "__main__":
    main()
