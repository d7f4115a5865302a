"""Fixed points of a random tanh RateRNN: trust-region Newton ("newton") vs Sussillo–Barak Adam.

N = 256, g = 0.9 and 1.5, 128 starts sampled (with noise) from trajectories, as in
the primer's Fig. 6 workflow; Adam done the FixedPointFinder way (initial lr 1.0,
decayed on plateaus) to q < 1e-10 or 10k iterations. Both methods run side by
side in one process; the table prints time, iterations, the fraction of starts
converged, the unique fixed points, the final q (median and max over starts), the
speed ratio, and (not in the ratio) the time of the stability analysis of the
unique points (one eigendecomposition each, right and left eigenvectors).

    python benchmarks/bench_fixed_points.py [--n 256] [--starts 128] [--adam-iters 10000] [--g 0.9 1.5] [--repeat 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import neurodyn as nd


def run(n: int, g: float, starts: int, adam_iters: int, tol: float, seed: int, repeat: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    W = g * torch.randn(n, n, generator=gen, dtype=torch.float64) / n**0.5
    model = nd.RateRNN(n, W=W, tau=1.0)
    t = torch.linspace(0, 20, 201, dtype=torch.float64)
    traj = nd.simulate(model, t, state0=torch.randn(16, n, generator=gen, dtype=torch.float64), dt=0.1)
    init = nd.sample_states(traj, starts, noise=0.1, generator=gen)
    rows = []
    for method, max_iter in (("newton", None), ("adam", adam_iters)):
        seconds = math.inf
        for _ in range(repeat):  # the fastest of `repeat` runs, for both methods alike
            t0 = time.perf_counter()
            fps = nd.find_fixed_points(model, init, method=method, tol=tol, max_iter=max_iter)
            seconds = min(seconds, time.perf_counter() - t0)
        t0 = time.perf_counter()
        fps.stability  # noqa: B018 -- the eigendecompositions are computed on first access
        rows.append(dict(g=g, method=method, seconds=seconds, eig_seconds=time.perf_counter() - t0,
                         iterations=fps.iterations,
                         converged=1 - fps.n_unconverged / fps.n_starts, unique=len(fps),
                         q_median=float(fps.start_q.median()), q_max=float(fps.start_q.max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--starts", type=int, default=128)
    parser.add_argument("--adam-iters", type=int, default=10_000)
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--g", type=float, nargs="+", default=[0.9, 1.5])
    parser.add_argument("--repeat", type=int, default=1, help="time each method this many times, keep the fastest")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, N={args.n}, "
          f"{args.starts} starts, tol q < {args.tol:g}")
    print(f"{'g':>4} {'method':>7} {'time s':>8} {'iters':>6} {'conv':>6} {'unique':>6} {'q median':>9} "
          f"{'q max':>9} {'speedup':>8} {'eig s':>6}")
    for g in args.g:
        rows = run(args.n, g, args.starts, args.adam_iters, args.tol, args.seed, args.repeat)
        for r in rows:
            ratio = rows[1]["seconds"] / r["seconds"]
            print(f"{r['g']:4.1f} {r['method']:>7} {r['seconds']:8.2f} {r['iterations']:6d} {r['converged']:6.0%} "
                  f"{r['unique']:6d} {r['q_median']:9.1e} {r['q_max']:9.1e} {ratio:7.1f}x {r['eig_seconds']:6.2f}")


if __name__ == "__main__":
    main()
