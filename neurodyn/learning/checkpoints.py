"""Atomic training checkpoints: written to a temporary file in the same folder, then renamed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..files import write_atomic


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomic(path, write)


RNG_STATES = ("generator", "noise")  # random-generator states: CPU ByteTensors whatever the device


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str | None = None) -> dict[str, Any]:
    """The state dict saved by :func:`save_checkpoint`, its tensors on ``map_location``, except the
    random-generator states, which stay CPU ByteTensors (``Generator.set_state`` needs them so, also on CUDA)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is not a file; pass the path of a checkpoint file (e.g. 'run.pt')")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} is not a readable neurodyn checkpoint ({err}); if it is another "
                         "file (data!), pass a new checkpoint path such as 'run.pt'; if it is a damaged checkpoint, "
                         "move it away to start afresh") from err
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} is not a neurodyn checkpoint (it holds a {type(state).__name__}, not a "
                         "dict); pass another checkpoint path")
    for key in RNG_STATES:
        if isinstance(state.get(key), torch.Tensor):
            state[key] = state[key].cpu()
    return state
