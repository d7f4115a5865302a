"""`neurodyn demo`: the main job end to end, its output checks and its helpers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neurodyn import demo


def _run_demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "neurodyn", "demo", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _unwritable_folder(tmp_path: Path) -> Path | None:
    """A folder in which this process cannot create files (read-only for a normal user; /sys for root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for candidate in (locked, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.remove(probe)
    return None


def test_an_existing_file_as_out_is_a_clear_error(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    result = _run_demo("--quick", "--out", str(target))
    assert result.returncode != 0
    assert "is an existing file" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == "keep me"


def test_a_folder_inside_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    assert demo.run(SimpleNamespace(out=str(tmp_path / "file" / "sub"), quick=True, seed=0, device="cpu")) == 2


def test_an_unwritable_folder_is_a_clear_error(tmp_path, capsys):
    folder = _unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no folder on this machine refuses writes to this user")
    code = demo.run(SimpleNamespace(out=str(folder), quick=True, seed=0, device="cpu"))
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to --out" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "never_made"
    assert demo.run(SimpleNamespace(out=str(out), quick=True, seed=0, device="cuda")) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not out.exists()  # a refused run leaves nothing behind


@pytest.mark.parametrize("out, seed, match", [("", 0, "--out is empty"), ("x", 10**20, r"--seed must be in"),
                                              ("x", -1, r"--seed must be in")])
def test_an_empty_out_or_a_seed_out_of_range_is_a_clear_error(tmp_path, capsys, monkeypatch, out, seed, match):
    monkeypatch.chdir(tmp_path)
    assert demo.run(SimpleNamespace(out=out, quick=True, seed=seed, device="cpu")) == 2
    assert re.search(match, capsys.readouterr().err) and not list(tmp_path.iterdir())


def test_slow_mode_tells_a_line_attractor_from_a_rotation():
    line = demo.slow_mode(-0.1 + 0j, delay=0.5)  # tau = 10 s, real: holds f1 over the delay
    assert line == {"time_constant_s": pytest.approx(10.0), "rotation_hz": 0.0, "delay_s": 0.5, "line_attractor": True}
    rotation = demo.slow_mode(complex(-0.242, 4.827), delay=0.5)  # the stable focus a fixed delay trains
    assert not rotation["line_attractor"] and rotation["rotation_hz"] == pytest.approx(4.827 / (2 * np.pi))
    assert not demo.slow_mode(-5.0 + 0j, delay=0.5)["line_attractor"]  # 0.2 s: faster than the delay
    assert demo.slow_mode(0j, delay=0.5)["time_constant_s"] is None


def test_delay_states_takes_each_trials_delay_window():
    flat = torch.arange(2 * 6 * 1, dtype=torch.float64).reshape(2, 6, 1)
    batch = SimpleNamespace(info={"epochs": {"delay": torch.tensor([[1, 4], [2, 5]])}})
    np.testing.assert_array_equal(demo.delay_states(flat, batch)[..., 0], [[1, 2, 3], [8, 9, 10]])


def test_f1_order_correlation_is_one_for_states_ordered_along_the_line():
    g = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(20, generator=g), dim=0)
    f1 = torch.tensor([10.0, 14, 18, 22, 26, 30])
    ordered = -f1[:, None] * direction + 0.01 * torch.randn(6, 20, generator=g)
    assert demo.f1_order_correlation(ordered, direction, f1) == pytest.approx(1.0)
    shuffled = ordered[torch.tensor([3, 0, 5, 1, 4, 2])]
    assert demo.f1_order_correlation(shuffled, direction, f1) < 0.5


@pytest.mark.slow
def test_quick_demo_writes_a_valid_summary_and_figures(tmp_path):
    import matplotlib.image

    out = tmp_path / "demo"
    result = _run_demo("--quick", "--out", str(out), "--seed", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    keys = {"accuracy", "n_fixed_points", "line_attractor_eigval", "f1_order_correlation", "timings_s"}
    assert keys <= summary.keys()
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert summary["n_fixed_points"] >= 1
    assert 0.0 <= summary["f1_order_correlation"] <= 1.0
    assert isinstance(summary["line_attractor_eigval"], (float, dict))
    assert len(summary["fixed_point_stability"]) == summary["n_fixed_points"]
    eig, mode = summary["line_attractor_eigval"], summary["slow_mode"]
    re, im = (eig["real"], eig["imag"]) if isinstance(eig, dict) else (eig, 0.0)
    assert mode["delay_s"] == 0.5 and mode["time_constant_s"] == pytest.approx(1 / abs(re))
    assert mode["rotation_hz"] == pytest.approx(abs(im) / (2 * np.pi)) and mode["line_attractor"] == (
        im == 0 and 1 / abs(re) > 0.5)
    assert {"train", "evaluate", "fixed_points", "figures"} <= summary["timings_s"].keys()
    for name in demo.FIGURES:
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_user_files_in_out_are_never_replaced_but_a_rerun_replaces_its_own(tmp_path, capsys):
    """QA: an existing summary.json ({"my": "results"}) and connectivity.png in --out were replaced."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text('{"my": "results"}')
    assert demo.run(SimpleNamespace(out=str(mine), quick=True, seed=0, device="cpu")) == 2
    assert "summary.json' exists and was not written by neurodyn" in capsys.readouterr().err
    assert (mine / "summary.json").read_text() == '{"my": "results"}'
    (mine / "summary.json").unlink()
    (mine / "connectivity.png").write_bytes(b"\x89PNG\r\n\x1a\n not a neurodyn figure")
    assert demo.run(SimpleNamespace(out=str(mine), quick=True, seed=0, device="cpu")) == 2
    assert "connectivity.png' exists" in capsys.readouterr().err
    assert list(mine.iterdir()) == [mine / "connectivity.png"]


def test_a_neurodyn_figure_is_recognised_and_others_are_not(tmp_path):
    import matplotlib.pyplot as plt

    from neurodyn.files import is_neurodyn_png, refuse_foreign, save_png

    figure = plt.figure()
    save_png(tmp_path / "ours.png", figure)
    figure.savefig(tmp_path / "theirs.png")
    plt.close(figure)
    assert is_neurodyn_png(tmp_path / "ours.png") and not is_neurodyn_png(tmp_path / "theirs.png")
    refuse_foreign(tmp_path / "ours.png", is_neurodyn_png)
    refuse_foreign(tmp_path / "absent.png", is_neurodyn_png)
    with pytest.raises(FileExistsError, match="theirs.png' exists and was not written by neurodyn"):
        refuse_foreign(tmp_path / "theirs.png", is_neurodyn_png)
