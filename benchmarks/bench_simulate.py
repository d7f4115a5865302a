"""simulate() speed and memory against a tutorial hand loop and torchdiffeq's euler.

Run: python benchmarks/bench_simulate.py [--quick]
Prints one table of times (ms) and ratios measured side by side in this run,
then peak memory of forward+backward per gradient mode (each in a subprocess).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from torchdiffeq import odeint

import neurodyn as nd
from neurodyn.models.linear import recurrent_steps

N_IN, STEPS, DT = 4, 1000, 0.01


def hand_loop(model, x, r0):
    """The loop tutorials write: input projection inside, out-of-place updates (primer Eq. 27)."""
    W, W_in, b, tau = model.W, model.W_in, model.b, model.tau
    r, rs = r0, []
    for k in range(x.shape[1] - 1):
        r = r + DT / tau * (-r + torch.tanh(r @ W.T + x[:, k] @ W_in.T + b))
        rs.append(r)
    return torch.stack(rs, 1)


def torchdiffeq_euler(model, x, r0, t):
    def f(s, r):
        k = min(int(s / DT + 1e-6), x.shape[1] - 2)
        return (-r + torch.tanh(r @ model.W.T + x[:, k] @ model.W_in.T + model.b)) / model.tau

    return odeint(f, r0, t, method="euler").transpose(0, 1)


def neurodyn_euler(model, x, r0, t):
    return nd.simulate(model, t, x, state0=r0)["r"]


def gemm_only(model, x, r0, product=None):
    """The T recurrent products alone: ``torch.mm`` (MKL), or ``product(drive, r, out)``."""
    W = model.W.detach()
    r = r0.detach()
    zero = torch.zeros(W.shape[0])
    for _ in range(x.shape[1] - 1):
        torch.mm(r, W.T) if product is None else product(zero, r, None)


def best_of(fn, backward, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


SLOW_MS = 5000  # a side slower than this is timed once (torchdiffeq's fwd+bwd at B = 64 takes over a minute)


def time_cells(model, x, r0, t, backward, repeats):
    """The fastest of ``repeats`` runs of each side, the sides taking turns (a burst of load on a shared
    machine then hits every side alike instead of one side's whole series)."""
    sides = {"neurodyn": lambda: neurodyn_euler(model, x, r0, t), "hand": lambda: hand_loop(model, x, r0),
             "tdq": lambda: torchdiffeq_euler(model, x, r0, t)}
    best = dict.fromkeys(sides, float("inf"))
    with torch.enable_grad() if backward else torch.no_grad():
        for turn in range(repeats):
            for name, fn in sides.items():
                if turn == 0 or best[name] < SLOW_MS:
                    best[name] = min(best[name], best_of(fn, backward, 1))
    return best


def speed_table(sizes, repeats):
    print(f"{'N':>5} {'B':>3} {'pass':>8} | {'neurodyn':>9} {'hand':>9} {'tdiffeq':>9} | "
          f"{'hand/nd':>7} {'tdq/nd':>7}")
    for n, b in sizes:
        torch.manual_seed(0)
        model = nd.RateRNN(n, N_IN, tau=0.1)
        t = torch.arange(STEPS + 1) * DT
        x = torch.randn(b, STEPS + 1, N_IN)
        r0 = torch.randn(b, n) * 0.1
        for backward in (False, True):
            cells = time_cells(model, x, r0, t, backward, repeats)
            print(f"{n:>5} {b:>3} {'fwd+bwd' if backward else 'fwd':>8} | {cells['neurodyn']:>9.1f} "
                  f"{cells['hand']:>9.1f} {cells['tdq']:>9.1f} | {cells['hand'] / cells['neurodyn']:>7.2f} "
                  f"{cells['tdq'] / cells['neurodyn']:>7.2f}")
        if n == 1024 and b == 64:
            with torch.no_grad():
                packed = recurrent_steps(model.W.detach(), r0)  # what simulate's scan multiplies with
                gemm = best_of(lambda: gemm_only(model, x, r0), False, repeats)  # noqa: B023
                ours = best_of(lambda: gemm_only(model, x, r0, packed), False, repeats)  # noqa: B023
                fwd = best_of(lambda: neurodyn_euler(model, x, r0, t), False, repeats)  # noqa: B023
            print(f"      N=1024 B=64 forward / recurrent GEMMs alone: {fwd:.1f} / {gemm:.1f} ms (torch.mm) = "
                  f"{fwd / gemm:.2f}x; / {ours:.1f} ms (neurodyn's product) = {fwd / ours:.2f}x")


MEMORY_CHILD = """
import ctypes, json, sys, time, torch, neurodyn as nd

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def live_mb():  # bytes malloc has handed out and not taken back (RSS would also count freed, unreturned memory)
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20

solver, mode, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
model = nd.RateRNN(256, 4, 1, tau=0.1)
t = torch.linspace(0, steps * 0.01, 11)
x = torch.randn(64, 11, 4)
r0 = torch.randn(64, 256) * 0.1
kept, seconds = None, float("inf")
for _ in range(3):  # memory from the first run; time: the fastest of three
    base = live_mb()
    start = time.perf_counter()
    traj = nd.simulate(model, t, x, state0=r0, dt=0.01, solver=solver, gradient=mode)
    kept = live_mb() - base if kept is None else kept  # what the forward pass keeps alive for the backward pass
    traj.outputs.pow(2).mean().backward()
    seconds = min(seconds, time.perf_counter() - start)
    del traj
print(json.dumps({"mb": kept, "s": seconds}))
"""


def memory_table():
    print("\nmemory the forward pass keeps for backward (live heap), N=256, B=64, dt=0.01, 11 output times;"
          " time of forward+backward: the fastest of 3 runs (euler: the fused scan; rk4: the generic step loop)")
    print(f"{'solver':>6} {'gradient':>10} | {'T=1000 MB':>9} {'T=4000 MB':>9} {'growth':>7} | {'T=4000 s':>8}")
    results = {}
    for solver, mode in (("euler", "backprop"), ("euler", "checkpoint"), ("euler", "adjoint"),
                         ("rk4", "backprop"), ("rk4", "checkpoint")):
        row = []
        for steps in (1000, 4000):
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, solver, mode, str(steps)], capture_output=True,
                                 text=True, check=True)
            row.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results[solver, mode] = row
        print(f"{solver:>6} {mode:>10} | {row[0]['mb']:>9.1f} {row[1]['mb']:>9.1f} "
              f"{row[1]['mb'] / max(row[0]['mb'], 1e-9):>7.2f} | {row[1]['s']:>8.2f}")
    for solver in ("euler", "rk4"):
        ratio = results[solver, "checkpoint"][1]["s"] / results[solver, "backprop"][1]["s"]
        print(f"{solver} checkpoint time / backprop time at T=4000: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args()
    sizes = [(256, 1), (256, 64)] if args.quick else [(256, 1), (256, 64), (1024, 1), (1024, 64)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, T={STEPS} Euler steps, n_in={N_IN}")
    speed_table(sizes, repeats=2 if args.quick else 5)
    memory_table()


if __name__ == "__main__":
    main()
