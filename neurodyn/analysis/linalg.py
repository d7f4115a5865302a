"""The one batched linear solve used by the analysis code.

With torch 2.13 on CPU (MKL) and more than one thread, *batched* LU breaks for
matrices of size >= 193: ``torch.linalg.solve``/``inv``/``lu_factor`` on a
``(B, n, n)`` batch print "Intel oneMKL ERROR: Parameter 6 was incorrect on
entry to SLASWP" and raise, or return a wrong answer. Single matrices are fine
on any number of threads, so a batched CPU solve factors one matrix at a time:
this is also the faster route (a (128, 256, 256) float64 batch: 0.054 s on 2
threads against 0.133 s for the batched call forced onto one thread).
"""

from __future__ import annotations

from collections.abc import Iterator
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


def solve(A: Tensor, B: Tensor) -> Tensor:
    """Solve ``A X = B`` for ``A (..., n, n)`` and ``B (..., n, k)`` (or ``(..., n)``).

    Batched CPU solves go one matrix at a time (see the module docstring); a
    singular ``A`` gives non-finite entries in ``X`` rather than an error, so
    callers can treat it as a failed step.
    """
    vector = B.dim() == A.dim() - 1
    rhs = B.unsqueeze(-1) if vector else B
    batch = torch.broadcast_shapes(A.shape[:-2], rhs.shape[:-2])
    if A.device.type == "cpu" and len(batch) and batch.numel():
        As, Bs = A.expand(*batch, *A.shape[-2:]).flatten(0, -3), rhs.expand(*batch, *rhs.shape[-2:]).flatten(0, -3)
        parts = [torch.linalg.solve_ex(a, b) for a, b in zip(As, Bs, strict=True)]
        X = torch.stack([x for x, _ in parts]).reshape(*batch, *rhs.shape[-2:])
        info = torch.stack([i for _, i in parts]).reshape(batch)
    else:
        X, info = torch.linalg.solve_ex(A, rhs)
    X = torch.where((info > 0)[..., None, None], torch.nan, X)
    return X.squeeze(-1) if vector else X
