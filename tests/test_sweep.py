"""neurodyn.sweep: process-pool and Ray sweeps, atomic records, resume, failures, CSV."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neurodyn as nd
from neurodyn import cli
from neurodyn.sweep import SweepResult, config_key, expand_grid

TESTS = str(Path(__file__).parent)
CALLS = "NEURODYN_TEST_SWEEP_CALLS"


def metrics(config: dict) -> dict:
    """A deterministic fn: its result can be checked by hand."""
    a, b = config["a"], config["b"]
    return {"product": a * b, "pair": [a, b], "label": f"{a}-{b}"}


def flaky(config: dict) -> dict:
    """Config 2 raises, 3 returns a non-serializable value, 4 kills its worker process."""
    x = config["x"]
    if x == 2:
        raise ValueError(f"boom at x={x}")
    if x == 3:
        return {"ok": 1.0, "weights": object()}
    if x == 4:
        os._exit(3)
    return {"square": x * x}


def logged(config: dict) -> dict:
    """Sleeps a little and leaves a file named after the config in $NEURODYN_TEST_SWEEP_CALLS."""
    time.sleep(0.25)
    Path(os.environ[CALLS], f"{config['x']}").touch()
    return {"double": 2 * config["x"]}


def test_local_sweep_writes_one_record_per_config_and_tables(tmp_path):
    out = tmp_path / "runs"
    result = nd.sweep(metrics, {"a": [1, 2], "b": [0.5, 3]}, max_workers=2, out=out)
    assert isinstance(result, SweepResult)
    assert [r.config for r in result] == [{"a": 1, "b": 0.5}, {"a": 1, "b": 3}, {"a": 2, "b": 0.5}, {"a": 2, "b": 3}]
    assert [r.result["product"] for r in result] == [0.5, 3, 1.0, 6]
    assert all(r.status == "ok" and r.error is None for r in result)
    assert result.rows()[1] == {"a": 1, "b": 3, "product": 3, "pair": [1, 3], "label": "1-3",
                                "status": "ok", "error": None}
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{config_key(r.config)}.json" for r in result)
    assert json.loads((out / files[0]).read_text())["status"] == "ok"
    loaded = SweepResult.load(out)
    assert sorted(map(str, loaded.rows())) == sorted(map(str, result.rows()))

    table = result.to_csv(tmp_path / "table.csv")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["a", "b", "product", "pair", "label", "status", "error"]
    assert rows[3] == {"a": "2", "b": "3", "product": "6", "pair": "[2, 3]", "label": "2-3", "status": "ok",
                       "error": ""}


def test_failing_configs_are_recorded_with_tracebacks_while_the_others_complete(tmp_path):
    with pytest.warns(RuntimeWarning, match="3 of 6 sweep configs failed"):
        result = nd.sweep(flaky, [{"x": x} for x in range(6)], max_workers=2, out=tmp_path)
    status = {r.config["x"]: r.status for r in result}
    assert status == {0: "ok", 1: "ok", 2: "failed", 3: "failed", 4: "failed", 5: "ok"}
    assert [r.result["square"] for r in result.ok] == [0, 1, 25]
    errors = {r.config["x"]: r.error for r in result.failed}
    assert "Traceback" in errors[2] and "ValueError: boom at x=2" in errors[2]
    assert "not JSON-serializable" in errors[3] and "'weights'" in errors[3]
    assert "worker process died" in errors[4]
    on_disk = {json.loads(p.read_text())["config"]["x"]: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert on_disk[2]["status"] == "failed" and "boom at x=2" in on_disk[2]["error"]
    assert on_disk[5] == {"config": {"x": 5}, "status": "ok", "result": {"square": 25},
                          "error": None, "elapsed_s": on_disk[5]["elapsed_s"]}


def test_a_killed_sweep_resumes_with_only_the_missing_configs(tmp_path, monkeypatch):
    out, first_calls, second_calls = tmp_path / "out", tmp_path / "calls1", tmp_path / "calls2"
    first_calls.mkdir()
    second_calls.mkdir()
    grid = {"x": list(range(8))}
    script = (f"import sys; sys.path.insert(0, {TESTS!r}); import neurodyn as nd; from test_sweep import logged; "
              f"nd.sweep(logged, {grid!r}, max_workers=1, out={str(out)!r})")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, CALLS: str(first_calls)},
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.json"))) < 3:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sweep subprocess ended (rc={proc.returncode}) or stalled before 3 records")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool workers (their own session)
        proc.wait()
    finished = {json.loads(p.read_text())["config"]["x"] for p in out.glob("*.json")}
    assert 3 <= len(finished) < 8

    monkeypatch.setenv(CALLS, str(second_calls))
    result = nd.sweep(logged, grid, max_workers=2, out=out)
    assert {int(p.name) for p in second_calls.iterdir()} == set(range(8)) - finished
    assert result.skipped == len(finished)
    assert [r.result["double"] for r in result] == [2 * x for x in range(8)]
    assert len(list(out.glob("*.json"))) == 8


def test_resume_false_reruns_everything_and_failed_configs_rerun_on_resume(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()
    monkeypatch.setenv(CALLS, str(calls))
    key = config_key({"x": 1})
    (tmp_path / f"{key}.json").write_text(json.dumps({"config": {"x": 1}, "status": "ok", "result": {"double": 99},
                                                      "error": None, "elapsed_s": 0.0}))
    (tmp_path / f"{config_key({'x': 2})}.json").write_text(json.dumps(
        {"config": {"x": 2}, "status": "failed", "result": None, "error": "Traceback ...", "elapsed_s": 0.0}))
    result = nd.sweep(logged, {"x": [1, 2]}, out=tmp_path, max_workers=1)
    assert [r.result["double"] for r in result] == [99, 4]  # x=1 kept, failed x=2 run again
    assert sorted(p.name for p in calls.iterdir()) == ["2"]
    result = nd.sweep(logged, {"x": [1, 2]}, out=tmp_path, max_workers=1, resume=False)
    assert [r.result["double"] for r in result] == [2, 4]


def test_bad_input_is_rejected_with_the_fix(tmp_path):
    for empty in ({}, {"a": []}, {"a": [1], "b": []}, []):
        with pytest.raises(ValueError, match="grid is empty"):
            nd.sweep(metrics, empty)
    with pytest.raises(TypeError, match=r"grid\['a'\] must be a list.*\[3\]"):
        nd.sweep(metrics, {"a": 3})
    with pytest.raises(TypeError, match=r"grid\[1\] must be a config dict"):
        nd.sweep(metrics, [{"a": 1}, 2])
    with pytest.raises(ValueError, match="same config twice"):
        nd.sweep(metrics, [{"a": 1, "b": 2}, {"b": 2, "a": 1}])
    with pytest.raises(TypeError, match="config 0 .* not JSON-serializable"):
        nd.sweep(metrics, {"a": [object()]})
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="out must be a folder; .* is a file"):
        nd.sweep(metrics, {"a": [1], "b": [2]}, out=a_file)
    with pytest.raises(TypeError, match="picklable"):
        nd.sweep(lambda c: {}, {"a": [1]})
    with pytest.raises(ValueError, match="backend must be one of"):
        nd.sweep(metrics, {"a": [1]}, backend="dask")
    with pytest.raises(ValueError, match="max_workers"):
        nd.sweep(metrics, {"a": [1]}, max_workers=0)
    with pytest.raises(TypeError, match="fn must be callable"):
        nd.sweep("metrics", {"a": [1]})
    assert expand_grid({"a": (1, 2), "b": ["u"]}) == [{"a": 1, "b": "u"}, {"a": 2, "b": "u"}]


def test_cli_runs_a_sweep_file_and_writes_the_table(tmp_path, capsys):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"fn": "test_sweep:metrics", "grid": {"a": [2], "b": [5, 7]},
                                "out": str(tmp_path / "runs")}))
    assert cli.main(["sweep", str(spec), "--max-workers", "1"]) == 0
    assert "2 ok, 0 failed, 0 already done" in capsys.readouterr().out
    with open(tmp_path / "runs" / "results.csv", newline="") as f:
        assert [row["product"] for row in csv.DictReader(f)] == ["10", "14"]
    spec.write_text(json.dumps({"fn": "test_sweep", "grid": {"a": [2]}}))
    assert cli.main(["sweep", str(spec)]) == 2
    assert '"module:function"' in capsys.readouterr().err


@pytest.mark.slow  # ray.init and its workers importing torch take 10-30 s
def test_ray_sweep_matches_the_local_sweep(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    grid = [{"x": x} for x in (0, 1, 2, 5)]
    with pytest.warns(RuntimeWarning, match="1 of 4"):
        local = nd.sweep(flaky, grid, max_workers=2, out=tmp_path / "local")
    with pytest.warns(RuntimeWarning, match="1 of 4"):
        remote = nd.sweep(flaky, grid, backend="ray", max_workers=2, out=tmp_path / "ray")
    assert not ray.is_initialized()  # the sweep started its own local Ray and shut it down
    for a, b in zip(local, remote, strict=True):
        assert (a.config, a.status, a.result) == (b.config, b.status, b.result)
    assert remote.failed[0].error.strip().splitlines()[-1] == "ValueError: boom at x=2"
    names = [sorted(p.name for p in (tmp_path / side).iterdir()) for side in ("ray", "local")]
    assert names[0] == names[1]


def test_ray_backend_connects_to_ray_address(monkeypatch):
    ray = pytest.importorskip("ray")
    seen = {}

    def fake_init(**kwargs):
        seen.update(kwargs)
        raise ConnectionError("no cluster here")

    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    with pytest.raises(ConnectionError):
        nd.sweep(metrics, {"a": [1], "b": [1]}, backend="ray")
    assert seen["address"] == "10.1.2.3:6379"
