"""Atomic writes: whole files or none, with the permissions a user expects."""

import os
import stat
from pathlib import Path

import pytest

from neurodyn.files import write_atomic


def test_write_atomic_replaces_whole_files_and_cleans_up_on_failure(tmp_path):
    path = tmp_path / "summary.json"
    write_atomic(path, lambda tmp: Path(tmp).write_text("new"))
    assert path.read_text() == "new"

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, broken)
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_new_files_follow_the_umask_and_replaced_ones_keep_their_mode(tmp_path):
    """mkstemp alone makes 0600 files: a lab's shared outputs would be unreadable to the group."""
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.png"
        write_atomic(fresh, lambda tmp: Path(tmp).write_bytes(b"png"), suffix=".png")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        shared = tmp_path / "shared.json"
        shared.write_text("{}")
        shared.chmod(0o664)
        write_atomic(shared, lambda tmp: Path(tmp).write_text("[]"))
        assert stat.S_IMODE(shared.stat().st_mode) == 0o664 and shared.read_text() == "[]"
    finally:
        os.umask(old)
