"""Training K networks as one Ensemble against K sequential fit calls, on CPU.

Run: python benchmarks/bench_ensemble.py [--quick] [--threads 1,2] [--repeat R] [--batch-size B]
Trains K = 32 RateRNNs of N = 64 units on perceptual decision making, once as
``nd.ensemble(...).fit(task)`` and once as 32 ``fit(model_k, task)`` calls with the
same settings (the two give the same trained networks; tests/test_ensemble.py checks
that), measured side by side in this run, and prints the times and their ratio: in
total, for the Adam steps alone (``History.wall_time``), and for the rest (setup and
the final evaluation). Both sides run at each thread count of ``--threads`` in turn
(default: 1 and torch's default for this machine, one per core), and the last line
compares each side at its best thread count. Timings with more than one thread need
otherwise idle cores: a busy core stalls every parallel op.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import neurodyn as nd
from neurodyn.learning import fit
from neurodyn.tasks import PerceptualDecisionMaking, Task


def thread_counts(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``: the thread counts to run at."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads takes positive ints separated by commas; got {text!r}")
    return counts


def _time_both(factory: Callable[[int], nd.RateRNN], k: int, task: Task,
               options: dict) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((total, steps) of one Ensemble.fit, (total, steps) of k sequential fits)`` in seconds."""
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
    return (together, together_train), (time.perf_counter() - start, sequential_train)


def main() -> None:
    default_threads = sorted({1, torch.get_num_threads()})  # 1 and torch's default here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 networks, 5 steps")
    parser.add_argument("--threads", type=thread_counts, default=default_threads,
                        help=f"torch CPU thread counts, comma-separated (default {','.join(map(str, default_threads))}:"
                             " 1 and torch's default here)")
    parser.add_argument("--batch-size", type=int, default=16, help="trials per network per step (default 16)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 20, quick 5)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measure both sides this many times, alternately, and keep each side's fastest run "
                             "(default 3: shrugs off other processes' bursts on a shared machine)")
    args = parser.parse_args()
    k, n = (8, 64) if args.quick else (32, 64)
    steps = args.steps or (5 if args.quick else 20)
    task = PerceptualDecisionMaking(dt=0.02)
    options = {"steps": steps, "lr": 1e-2, "batch_size": args.batch_size, "progress": False, "eval_every": steps}

    def factory(seed: int) -> nd.RateRNN:
        return nd.RateRNN(n, task.n_in, task.n_out, tau=0.1)

    print(f"K={k} RateRNNs of N={n}, {steps} Adam steps of {args.batch_size} trials "
          f"(T={task.sample(1).t.shape[0]} Euler steps) + one 256-trial evaluation")
    print(f"{'':<32}{'total':>9}{'steps':>9}{'eval+setup':>12}")
    totals: dict[str, list[float]] = {"ensemble": [], "sequential": []}
    for threads in args.threads:
        torch.set_num_threads(threads)
        warm_up = {**options, "steps": 1}
        fit(factory(0), task, **warm_up)  # warm-up of both sides: lazy imports, allocator, thread pool, kernels
        nd.ensemble(factory, k).fit(task, **warm_up)
        runs = [_time_both(factory, k, task, options) for _ in range(args.repeat)]
        (together, together_train), _ = min(runs, key=lambda run: run[0][0])
        _, (sequential, sequential_train) = min(runs, key=lambda run: run[1][0])
        for name, total, train in ((f"one Ensemble.fit, {threads} thr.", together, together_train),
                                   (f"{k} sequential fit calls, {threads} thr.", sequential, sequential_train)):
            print(f"{name:<32}{total:8.2f}s{train:8.2f}s{total - train:11.2f}s")
        rest = (sequential - sequential_train) / (together - together_train)
        print(f"{'speed-up (sequential / ens.)':<32}{sequential / together:8.1f}x"
              f"{sequential_train / together_train:8.1f}x{rest:11.1f}x")
        totals["ensemble"].append(together)
        totals["sequential"].append(sequential)
    if len(args.threads) > 1:  # each side at its own best thread count
        print(f"{'speed-up, best of each':<32}{min(totals['sequential']) / min(totals['ensemble']):8.1f}x")


if __name__ == "__main__":
    main()
