"""Keeping the memory torch frees in the process for its next tensors (glibc malloc).

Torch's CPU tensors come from ``malloc``. By default glibc hands large freed blocks
back to the kernel (``munmap``, or trimming the top of the heap past ``M_TRIM_THRESHOLD``),
and the next step's tensors of the same sizes are page-faulted in again, each 4 KiB page
zeroed by the kernel. A training loop frees and re-allocates the same tens of megabytes
every step: the ensemble benchmark (issue 8) took ~26 000 minor faults (~100 MB) per
``Ensemble.fit``, about 2 us each on its machine. :func:`keep_freed_memory` sets
(``mallopt``, glibc's documented tuning call) blocks of up to ``MMAP_THRESHOLD`` to come
from the heap, and up to ``TRIM_THRESHOLD`` of free heap to stay in the process.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its adaptive threshold (64-bit)
TRIM_THRESHOLD = 256 << 20  # free memory kept at the top of the heap
OPT_OUT = "NEURODYN_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_USER_TUNED = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed memory in the process (once per process); return whether the setting is in effect.

    It applies to Linux with glibc only, and not when ``NEURODYN_KEEP_FREED_MEMORY=0`` or when
    glibc's malloc is already tuned through its environment variables (``MALLOC_*_`` or
    ``GLIBC_TUNABLES``). The process then keeps up to ``TRIM_THRESHOLD`` (256 MiB) of freed memory
    for reuse instead of returning it to the system.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _USER_TUNED):
        return False
    if "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has a mallopt that does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
