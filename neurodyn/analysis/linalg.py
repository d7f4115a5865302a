"""The one batched linear solve used by the analysis code.

With torch 2.13 on CPU (MKL) and more than one thread, *batched* LU breaks for
matrices of size >= 193: ``torch.linalg.solve``/``inv``/``lu_factor`` on a
``(B, n, n)`` batch print "Intel oneMKL ERROR: Parameter 6 was incorrect on
entry to SLASWP" and raise, or return a wrong answer. Single matrices are fine
on any number of threads, so a batched CPU solve factors one matrix at a time:
this is also the faster route (a (128, 256, 256) float64 batch: 0.054 s on 2
threads against 0.133 s for the batched call forced onto one thread). With T > 1
threads the matrices are split among T workers that each run single-threaded:
0.41 ms per 256 x 256 float64 solve on 2 threads, against 0.49 ms for one
matrix at a time on both threads (and no collapse when the cores are busy,
where MKL's two-thread LU took 40 ms).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import Tensor


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``, restoring the count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_POOL: dict[int, ThreadPoolExecutor] = {}  # worker pools by size, made on first use
os.register_at_fork(after_in_child=_POOL.clear)  # a forked child has none of the parent's threads


def _solve_each(As: Tensor, Bs: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``solve_ex`` on each matrix of ``As (k, n, n)``; large ones split among single-threaded workers."""
    workers = min(torch.get_num_threads(), len(As))
    if workers < 2 or As.shape[-1] < 64:
        return [torch.linalg.solve_ex(a, b) for a, b in zip(As, Bs, strict=True)]
    pool = _POOL.setdefault(workers, ThreadPoolExecutor(workers, thread_name_prefix="neurodyn-solve"))
    bounds = [len(As) * i // workers for i in range(workers + 1)]
    grad = torch.is_grad_enabled()  # grad mode is per thread: carry the caller's into the workers

    def part(i: int) -> list[tuple[Tensor, Tensor]]:
        with torch.set_grad_enabled(grad):
            return [torch.linalg.solve_ex(a, b) for a, b in zip(As[bounds[i]:bounds[i + 1]],
                                                                Bs[bounds[i]:bounds[i + 1]], strict=True)]

    with single_thread():
        return [x for chunk in pool.map(part, range(workers)) for x in chunk]


def solve(A: Tensor, B: Tensor) -> Tensor:
    """Solve ``A X = B`` for ``A (..., n, n)`` and ``B (..., n, k)`` (or ``(..., n)``).

    Batched CPU solves go one matrix at a time, split among threads (see the module docstring); a
    singular ``A`` gives non-finite entries in ``X`` rather than an error, so
    callers can treat it as a failed step.
    """
    vector = B.dim() == A.dim() - 1
    rhs = B.unsqueeze(-1) if vector else B
    batch = torch.broadcast_shapes(A.shape[:-2], rhs.shape[:-2])
    if A.device.type == "cpu" and len(batch) and batch.numel():
        As, Bs = A.expand(*batch, *A.shape[-2:]).flatten(0, -3), rhs.expand(*batch, *rhs.shape[-2:]).flatten(0, -3)
        parts = _solve_each(As, Bs)
        X = torch.stack([x for x, _ in parts]).reshape(*batch, *rhs.shape[-2:])
        info = torch.stack([i for _, i in parts]).reshape(batch)
    else:
        X, info = torch.linalg.solve_ex(A, rhs)
    X = torch.where((info > 0)[..., None, None], torch.nan, X)
    return X.squeeze(-1) if vector else X
