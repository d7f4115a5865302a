"""Equations compiled from text vs the hand-written RateRNN, N=256, B=64 (same W, b, tau).

Times the vector field alone and a 200-step Euler simulation with its
backward pass, interleaving the two models so that machine noise hits both;
prints medians and the ratio Equations / RateRNN (1.0 = as fast).
"""

from __future__ import annotations

import statistics
import time

import torch

import neurodyn as nd

N, B, STEPS = 256, 64, 200


def models(device: str) -> tuple[nd.RateRNN, nd.Equations]:
    torch.manual_seed(0)
    W, b = 1.5 * torch.randn(N, N) / N**0.5, 0.1 * torch.randn(N)
    rnn = nd.RateRNN(N, W=W, b=b, tau=0.1).to(device)
    text = nd.Equations("dr/dt = (-r + tanh(W @ r + b)) / tau", dict(W=W, b=b, tau=0.1),
                        state_sizes={"r": N}, trainable=("W", "b")).to(device)
    return rnn, text


def field_call(model, state, drive):
    return lambda: model.vector_field(0.0, state, drive)


def simulate_call(model, r0, t):
    def run():
        traj = nd.simulate(model, t, None, r0, solver="euler")
        traj["r"].square().mean().backward()
    return run


def timed(fn, repeats: int) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def compare(name: str, fns: dict, repeats: int, rounds: int = 15) -> None:
    for fn in fns.values():
        timed(fn, max(1, repeats // 4))  # warm-up
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            samples[k].append(timed(fn, repeats))
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"{name:<28} RateRNN {med['RateRNN'] * 1e6:10.1f} us   Equations {med['Equations'] * 1e6:10.1f} us   "
          f"ratio Equations/RateRNN = {med['Equations'] / med['RateRNN']:.3f}")


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(1)
    rnn, text = models(device)
    r = torch.randn(B, N, device=device)
    drive_rnn = rnn.input_drive(torch.zeros(B, 0, device=device))
    drive_text = text.input_drive(torch.zeros(B, 0, device=device))
    assert torch.allclose(rnn.vector_field(0.0, rnn.State(r), drive_rnn).r,
                          text.vector_field(0.0, text.State(r), drive_text).r, atol=1e-6)
    print(f"N={N}, B={B}, {device}, {torch.get_num_threads()} thread(s)")
    compare("vector field", {"RateRNN": field_call(rnn, rnn.State(r), drive_rnn),
                             "Equations": field_call(text, text.State(r), drive_text)}, repeats=200)
    t = torch.linspace(0, STEPS * 0.01, STEPS + 1, device=device)
    compare(f"simulate {STEPS} steps + backward", {"RateRNN": simulate_call(rnn, r, t),
                                                   "Equations": simulate_call(text, r, t)}, repeats=1, rounds=7)


if __name__ == "__main__":
    main()
