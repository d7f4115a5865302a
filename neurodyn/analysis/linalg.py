"""The one batched linear solve used by the analysis code.

With torch 2.13 on CPU (MKL) and more than one thread, *batched* LU breaks for
matrices of size >= 193: ``torch.linalg.solve``/``inv``/``lu_factor`` on a
``(B, n, n)`` batch print "Intel oneMKL ERROR: Parameter 6 was incorrect on
entry to SLASWP" and raise, or return a wrong answer. Single matrices and one
thread are fine, so a batched CPU solve runs with torch's intra-op thread count
set to 1 for its duration (the batch itself is the parallel dimension).
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

    Batched CPU solves run single-threaded (see the module docstring); a
    singular ``A`` gives non-finite entries in ``X`` rather than an error, so
    callers can treat it as a failed step.
    """
    vector = B.dim() == A.dim() - 1
    rhs = B.unsqueeze(-1) if vector else B
    if A.device.type == "cpu" and A.dim() > 2 and torch.get_num_threads() > 1:
        with single_thread():
            X, info = torch.linalg.solve_ex(A, rhs)
    else:
        X, info = torch.linalg.solve_ex(A, rhs)
    X = torch.where((info > 0)[..., None, None], torch.nan, X)
    return X.squeeze(-1) if vector else X
