"""neurodyn.sweep: process-pool and Ray sweeps, atomic records, resume, failures, CSV."""

from __future__ import annotations

import builtins
import contextlib
import csv
import dis
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn import cli
from neurodyn.sweep import WORKER_DIED, SweepRecord, SweepResult, config_key, expand_grid, run_config

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


def counted(config: dict) -> dict:
    """``flaky``, leaving one file per call in $NEURODYN_TEST_SWEEP_CALLS (to count retries)."""
    Path(os.environ[CALLS], f"{config['x']}_{time.time_ns()}").touch()
    return flaky(config)


def typed(config: dict) -> dict:
    """The metric types numpy and torch code returns, and non-finite values."""
    return {"f64": np.float64(1.5), "i64": np.int64(3), "f32": np.float32(0.25), "b": np.bool_(True),
            "t": torch.tensor(2.0), "t_int": torch.tensor(7), "a0": np.array(4.0),
            "nan": float("nan"), "inf": np.float32("inf"), "curve": [1.0, -math.inf, np.float64(2.0)]}


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


def _sweep_process(fn: str, grid: dict, workers: int, out: Path, calls: Path) -> subprocess.Popen:
    """``sweep`` of this module's function ``fn`` in a subprocess of its own session, logging to ``calls``."""
    script = (f"import sys; sys.path.insert(0, {TESTS!r}); import neurodyn as nd; from test_sweep import {fn}; "
              f"nd.sweep({fn}, {grid!r}, max_workers={workers}, out={str(out)!r})")
    return subprocess.Popen([sys.executable, "-c", script], env={**os.environ, CALLS: str(calls)},
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(proc: subprocess.Popen, done, what: str) -> None:
    deadline = time.monotonic() + 120
    while not done():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the sweep subprocess ended (rc={proc.returncode}) or stalled before {what}")
        time.sleep(0.05)


def test_a_killed_sweep_resumes_with_only_the_missing_configs(tmp_path, monkeypatch):
    out, first_calls, second_calls = tmp_path / "out", tmp_path / "calls1", tmp_path / "calls2"
    first_calls.mkdir()
    second_calls.mkdir()
    grid = {"x": list(range(8))}
    proc = _sweep_process("logged", grid, 1, out, first_calls)
    try:
        _wait_for(proc, lambda: len(list(out.glob("*.json"))) >= 3, "3 records")
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


def stuck(config: dict) -> dict:
    """Writes its process id to a file named after the config in $NEURODYN_TEST_SWEEP_CALLS, then runs a minute."""
    Path(os.environ[CALLS], f"{config['x']}").write_text(str(os.getpid()))
    time.sleep(60)
    return {}


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an orphan's reaper may be slow in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_killing_or_interrupting_the_sweep_process_ends_its_workers(tmp_path, sig):
    calls = tmp_path / "calls"
    calls.mkdir()
    proc = _sweep_process("stuck", {"x": [0, 1, 2, 3]}, 2, tmp_path / "out", calls)
    try:
        _wait_for(proc, lambda: len([p for p in calls.iterdir() if p.read_text()]) >= 2, "both workers in a config")
        workers = [int(p.read_text()) for p in calls.iterdir()]
        os.kill(proc.pid, sig)  # the sweep's own process only, as `kill PID` or a job scheduler's signal does
        proc.wait(timeout=30)  # Ctrl-C used to wait for every remaining config (here 2 x 60 s)
        deadline = time.monotonic() + 20
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_running, workers)), "the pool's workers outlived the sweep"
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the sweep's session
            os.killpg(proc.pid, signal.SIGKILL)


def test_resume_false_reruns_everything_and_failed_configs_rerun_on_resume(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()
    monkeypatch.setenv(CALLS, str(calls))
    key = config_key({"x": 1})
    (tmp_path / f"{key}.json").write_text(json.dumps({"config": {"x": 1}, "status": "ok", "result": {"double": 99},
                                                      "error": None, "elapsed_s": 0.0}))
    (tmp_path / f"{config_key({'x': 2})}.json").write_text(json.dumps(
        {"config": {"x": 2}, "status": "failed", "result": None, "error": "Traceback ...", "elapsed_s": 0.0}))
    truncated = json.dumps({"config": {"x": 3}, "status": "ok", "result": {"double": 6}, "error": None})
    (tmp_path / f"{config_key({'x': 3})}.json").write_text(truncated[:len(truncated) // 2])  # a half-written file
    (tmp_path / "sweep.json").write_text(json.dumps({"fn": "m:f", "grid": {}}))  # not a record: ignored
    with pytest.warns(RuntimeWarning, match=f"skipping .*{config_key({'x': 3})}.json: not a readable sweep record"):
        result = nd.sweep(logged, {"x": [1, 2, 3]}, out=tmp_path, max_workers=1)
    assert [r.result["double"] for r in result] == [99, 4, 6]  # x=1 kept, failed x=2 and truncated x=3 run again
    assert sorted(p.name for p in calls.iterdir()) == ["2", "3"]
    assert sorted(r.config["x"] for r in SweepResult.load(tmp_path)) == [1, 2, 3]
    (tmp_path / f"{config_key({'x': 3})}.json").write_text("{")
    with pytest.warns(RuntimeWarning, match="not a readable sweep record"):
        assert sorted(r.config["x"] for r in SweepResult.load(tmp_path)) == [1, 2]
    for p in calls.iterdir():
        p.unlink()
    result = nd.sweep(logged, {"x": [1, 2]}, out=tmp_path, max_workers=1, resume=False)
    assert [r.result["double"] for r in result] == [2, 4]
    assert sorted(p.name for p in calls.iterdir()) == ["1", "2"]


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
    for workers in (0, True, 2.0):
        with pytest.raises(ValueError, match="max_workers"):
            nd.sweep(metrics, {"a": [1]}, max_workers=workers)
    with pytest.raises(TypeError, match="resume must be True or False"):
        nd.sweep(metrics, {"a": [1]}, resume="no")
    with pytest.raises(ValueError, match="out must be a folder path, e.g. 'sweep_out'; got an empty path"):
        nd.sweep(metrics, {"a": [1], "b": [2]}, out="")
    with pytest.raises(ValueError, match=r"out must be a folder; '.*file.txt', a parent of '.*sub', is a file"):
        nd.sweep(metrics, {"a": [1], "b": [2]}, out=a_file / "sub")
    with pytest.raises(TypeError, match="fn must be callable"):
        nd.sweep("metrics", {"a": [1]})
    assert expand_grid({"a": (1, 2), "b": ["u"]}) == [{"a": 1, "b": "u"}, {"a": 2, "b": "u"}]


def test_grids_of_ranges_arrays_and_tensors_give_plain_python_configs():
    grid = expand_grid({"seed": range(2), "g": np.linspace(0.5, 2, 4), "n": list(np.array([64, 128])),
                        "w": torch.tensor([0.25]), "on": (np.bool_(True),), "k": (x for x in "ab")})
    assert len(grid) == 2 * 4 * 2 * 1 * 1 * 2
    assert grid[-1] == {"seed": 1, "g": 2.0, "n": 128, "w": 0.25, "on": True, "k": "b"}
    assert {type(v) for cfg in grid for v in cfg.values()} == {int, float, bool, str}
    assert expand_grid([{"shape": (2, np.int64(3))}]) == [{"shape": [2, 3]}]  # the JSON form fn receives
    assert config_key(expand_grid({"n": np.arange(64, 65)})[0]) == config_key({"n": 64})
    for value, shown in (("abc", "str"), (3, "int"), ({"x": 1}, "dict"), (np.array(2.0), "ndarray"),
                         (torch.tensor(1.0), "Tensor")):
        with pytest.raises(TypeError, match=rf"grid\['v'\] must be a list of values .*got {shown} \(wrap a fixed"):
            expand_grid({"v": value})
    with pytest.raises(TypeError, match="config 0 .* not JSON-serializable"):
        expand_grid({"g": [float("nan")]})


def test_numpy_and_torch_scalar_metrics_become_python_numbers_and_non_finite_ones_null(tmp_path):
    rec = run_config(typed, {})
    assert rec.status == "ok", rec.error
    assert rec.result["i64"] == 3 and type(rec.result["i64"]) is int and type(rec.result["t_int"]) is int
    assert (rec.result["f32"], rec.result["t"], rec.result["a0"], rec.result["b"]) == (0.25, 2.0, 4.0, True)
    for key, value in {"arr": np.arange(3), "vec": torch.ones(2), "obj": object()}.items():
        bad = run_config(lambda c, k=key, v=value: {"fine": 1.0, k: v}, {})
        assert bad.status == "failed" and f"key {key!r} holds a" in bad.error and "not JSON-serializable" in bad.error

    with pytest.warns(RuntimeWarning, match=r"1 sweep configs returned NaN or infinite metrics, stored as None "
                                            r".*\{'x': 1\} nan=nan, inf=inf, curve\[1\]=-inf"):
        result = nd.sweep(typed, {"x": [1]}, max_workers=1, out=tmp_path)
    expected = {"f64": 1.5, "i64": 3, "f32": 0.25, "b": True, "t": 2.0, "t_int": 7, "a0": 4.0,
                "nan": None, "inf": None, "curve": [1.0, None, 2.0]}
    assert result.records[0].status == "ok" and result.records[0].result == expected
    text = next(tmp_path.glob("*.json")).read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert strict["result"] == expected and SweepResult.load(tmp_path).records[0].result == expected


def test_rows_and_csv_never_lose_a_result_key():
    records = [SweepRecord({"x": 1, "status": "draft"}, "ok", {"x": 99, "error": 0.12, "status": "mine",
                                                               "result.x": 5, "acc": 0.9}),
               SweepRecord({"x": 2, "status": "final"}, "failed", error="Traceback ...")]
    rows = SweepResult(records).rows()
    assert rows[0] == {"x": 1, "config.status": "draft", "result.x": 99, "result.error": 0.12,
                       "result.status": "mine", "result.result.x": 5, "acc": 0.9, "status": "ok", "error": None}
    assert rows[1] == {"x": 2, "config.status": "final", "status": "failed", "error": "Traceback ..."}


def test_readme_sweep_example_defines_every_name_it_uses():
    readme = Path(__file__).parents[1] / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md next to tests/")
    blocks = re.findall(r"```python\n(# experiment\.py\n.*?)```", readme.read_text(), flags=re.S)
    assert len(blocks) == 1
    namespace = {"__name__": "experiment"}
    exec(compile(blocks[0], "experiment.py", "exec"), namespace)
    used = {i.argval for i in dis.get_instructions(namespace["train"]) if i.opname == "LOAD_GLOBAL"}
    missing = sorted(n for n in used if n not in namespace and not hasattr(builtins, n))
    assert missing == [], f"README's experiment.py uses undefined names {missing}"
    outs = re.findall(r"out=([^,)]+)", blocks[0])
    assert outs and all("backend" in o for o in outs)  # one record folder per backend: Ray does not skip all


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


def test_cli_says_how_to_resume_after_ctrl_c(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["neurodyn.sweep"], "sweep", interrupted)  # the module (nd.sweep is the function)
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"fn": "test_sweep:metrics", "grid": {"a": [2]}, "out": str(tmp_path / "runs")}))
    assert cli.main(["sweep", str(spec)]) == 130
    assert f"recorded in {tmp_path / 'runs'}, and the same command resumes" in capsys.readouterr().err


def test_cli_rejects_bad_files_and_options_with_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # run() makes the current folder importable
    Path("broken_sweep_module.py").write_text("raise RuntimeError('import-time failure')\n")
    good = {"fn": "test_sweep:metrics", "grid": {"a": [2], "b": [5]}, "out": "runs"}
    cases = [
        ({**good, "backend": "dask"}, [], "backend must be one of ['local', 'ray']; got 'dask'"),  # "backend" is read
        ({**good, "max_worker": 2}, [], "unknown keys ['max_worker']; the valid keys are ['fn', 'grid', 'out', "
                                        "'max_workers', 'backend']"),
        (good, ["--max-workers", "0"], "max_workers must be a positive int or None; got 0"),
        (good, ["--csv", "nodir/x.csv"], "folder 'nodir' does not exist"),
        ({**good, "fn": "broken_sweep_module:f"}, [],
         "cannot import 'broken_sweep_module' for \"fn\": RuntimeError: import-time failure"),
        ("{not json", [], "spec.json is not valid JSON (Expecting property name"),
    ]
    for spec, options, message in cases:
        Path("spec.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
        assert cli.main(["sweep", "spec.json", *options]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("neurodyn sweep: error:"), err
    assert not Path("runs").exists()  # every check came before the sweep


@pytest.mark.slow  # ray.init and its workers importing torch take 10-30 s
def test_ray_sweep_matches_the_local_sweep(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    grid = [{"x": x} for x in (0, 1, 2, 4, 5)]
    results = {}
    for side in ("local", "ray"):
        (tmp_path / f"calls_{side}").mkdir()
        monkeypatch.setenv(CALLS, str(tmp_path / f"calls_{side}"))
        with pytest.warns(RuntimeWarning, match="2 of 5"):
            results[side] = nd.sweep(counted, grid, backend=side, max_workers=2, out=tmp_path / side)
    local, remote = results["local"], results["ray"]
    assert not ray.is_initialized()  # the sweep started its own local Ray and shut it down
    for a, b in zip(local, remote, strict=True):
        assert (a.config, a.status, a.result) == (b.config, b.status, b.result)
    assert remote.failed[0].error.strip().splitlines()[-1] == "ValueError: boom at x=2"
    assert remote.failed[1].error == local.failed[1].error == WORKER_DIED  # x=4 killed its worker
    for side in ("local", "ray"):  # each config ran once: no retry of the crashing one
        assert sorted(p.name.split("_")[0] for p in (tmp_path / f"calls_{side}").iterdir()) == ["0", "1", "2", "4",
                                                                                               "5"], side
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


def test_tables_replace_their_own_csv_but_never_a_users_file(tmp_path, capsys):
    """QA: `--csv mine.csv` and result.to_csv("precious.csv") replaced the user's file; a folder path raised an
    IsADirectoryError naming a temporary file."""
    result = SweepResult([SweepRecord(config={"a": 1}, result={"y": 2}, status="ok")])
    mine = tmp_path / "mine.csv"
    mine.write_text("user,data\n")
    with pytest.raises(FileExistsError, match="mine.csv' exists and was not written by neurodyn"):
        result.to_csv(mine)
    assert mine.read_text() == "user,data\n"
    table = result.to_csv(tmp_path / "table.csv")
    assert result.to_csv(table) == table  # a sweep rewrites its own table (a resumed run)
    assert result.to_csv(mine, overwrite=True) == mine and "status" in mine.read_text()
    (tmp_path / "log.csv").write_text("status,error,when\nok,,today\n")  # status columns, but not a sweep's
    with pytest.raises(FileExistsError):
        result.to_csv(tmp_path / "log.csv")
    with pytest.raises(ValueError, match="is a folder"):
        result.to_csv(tmp_path)
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"fn": "test_sweep:metrics", "grid": {"a": [2], "b": [5]}, "out": str(tmp_path / "r")}))
    precious = tmp_path / "precious.csv"
    precious.write_text("keep me\n")
    assert cli.main(["sweep", str(spec), "--max-workers", "1", "--csv", str(precious)]) == 2
    assert "was not written by neurodyn" in capsys.readouterr().err and precious.read_text() == "keep me\n"


def test_a_function_defined_in_python_c_is_refused_before_the_pool_starts(tmp_path):
    """QA: fn from a notebook, python -c or stdin broke the pool with advice about __main__ guards."""
    code = ("import neurodyn as nd\n"
            "def train(config):\n    return {'y': config['x']}\n"
            f"nd.sweep(train, {{'x': [1, 2]}}, max_workers=1, out={str(tmp_path / 'out')!r})\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "fn ('train') is defined in an interactive session" in run.stderr and "module file" in run.stderr
