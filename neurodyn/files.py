"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A crash or Ctrl-C leaves the target as it was, never half-written. The new file
gets the permissions of the file it replaces, or, for a new file, the usual
``0o666 & ~umask`` (``tempfile.mkstemp`` alone would leave it readable by its
owner only).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_name)`` on a temporary file next to ``path``, then move it into place.

    ``suffix`` ends the temporary name (writers that infer the format from it need the real one, e.g. ".png").
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _mode(path: Path) -> int:
    """The permission bits ``path`` has, or those a new file gets under the process's umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask can only be read by setting it, racing other threads)
        found = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)
        if found:
            return int(found.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FIGURE_TAG = {"Software": "neurodyn"}  # the PNG text chunk of every figure neurodyn writes


def save_png(path: str | os.PathLike, figure: Any, dpi: int = 120) -> None:
    """Save a matplotlib ``figure`` to ``path`` atomically, tagged as neurodyn's (:data:`FIGURE_TAG`)."""
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi, metadata=FIGURE_TAG), suffix=".png")


def is_neurodyn_png(path: Path) -> bool:
    """Whether ``path`` is a PNG that :func:`save_png` wrote."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == FIGURE_TAG["Software"]
    except (OSError, ValueError):
        return False


def refuse_foreign(path: Path, ours: Callable[[Path], bool]) -> None:
    """Raise FileExistsError if ``path`` exists and is not an output of neurodyn's (``ours(path)``): a rerun
    replaces its own outputs, never a user's file."""
    if path.exists() and not (path.is_file() and ours(path)):
        raise FileExistsError(f"{str(path)!r} exists and was not written by neurodyn; move it away or choose "
                              "another output folder")

