"""Atomic training checkpoints: written to a temporary file in the same folder, then renamed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str | None = None) -> dict[str, Any]:
    """The state dict saved by :func:`save_checkpoint`."""
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({err}); delete it to start afresh") from err
