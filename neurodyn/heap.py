"""Keeping the memory torch frees in the process for its next tensors (glibc malloc).

Torch's CPU tensors come from ``malloc``. By default glibc hands large freed blocks
back to the kernel (``munmap``, or trimming the top of the heap past ``M_TRIM_THRESHOLD``),
and the next step's tensors of the same sizes are page-faulted in again, each 4 KiB page
zeroed by the kernel. A training loop frees and re-allocates the same tens of megabytes
every step: the ensemble benchmark (issue 8) took 14 000-28 000 minor faults (60-110 MB)
per ``Ensemble.fit``, about 2 us each on its machine. :func:`keep_freed_memory` sets
(``mallopt``, glibc's documented tuning call) blocks of up to ``MMAP_THRESHOLD`` to come
from the heap, and up to ``TRIM_THRESHOLD`` of free memory at the top of the heap (of each
malloc arena: one per thread that allocates) to stay in the process.

The price is memory: the process keeps what it freed for reuse, and a freed block below a
live one stays in the process as it does on any heap (a QA run that freed 500 MiB of
simulations under a 5 MiB summary kept +527 MiB of resident memory, against +15 MiB by
default). ``NEURODYN_KEEP_FREED_MEMORY=0`` opts out; so does setting glibc's own thresholds
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or the same
``glibc.malloc.*`` entries of ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its adaptive threshold (64-bit)
TRIM_THRESHOLD = 256 << 20  # 64 and 128 MiB still left 8 000-22 000 faults per Ensemble.fit of the benchmark
OPT_OUT = "NEURODYN_KEEP_FREED_MEMORY"
OFF = ("0", "false", "no", "off")
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
USER_TUNABLES = ("glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold", "glibc.malloc.top_pad")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed memory in the process (once per process); return whether the setting is in effect.

    It applies to Linux with glibc only, and not when ``NEURODYN_KEEP_FREED_MEMORY`` is one of
    ``0, false, no, off`` or glibc's thresholds are set by the user (see the module docstring).
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(OPT_OUT, "").strip().lower() in OFF or not sys.platform.startswith("linux"):
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(v in os.environ for v in USER_SETTINGS) or any(t in tunables for t in USER_TUNABLES):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has a mallopt that does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
