"""Hyperparameter and seed sweeps on a process pool or a Ray cluster; ``neurodyn sweep CONFIG.json``.

The primer's advice (Sec. 5): when training a network supports a scientific claim, vary
the hyperparameters and seeds to find which conditions are necessary and sufficient.
``sweep(fn, grid)`` calls ``fn(config) -> dict`` once per config, in parallel, and writes
one JSON file per config (atomically) so that an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import importlib
import itertools
import json
import multiprocessing
import os
import pickle
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .errors import ArgumentTypeError

BACKENDS = ("local", "ray")
Config = dict[str, Any]


@dataclass(frozen=True)
class SweepRecord:
    """The outcome of one config: ``status`` is "ok" (with ``result``) or "failed" (with ``error``)."""

    config: Config
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def key(self) -> str:
        return config_key(self.config)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "status": self.status, "result": self.result,
                "error": self.error, "elapsed_s": self.elapsed_s}


@dataclass
class SweepResult:
    """All records of a sweep, in grid order.

    ``rows()`` is the pandas-free table (one flat dict per config: the config's keys,
    the result's keys, ``status`` and ``error``); ``to_csv(path)`` writes it.
    """

    records: list[SweepRecord]
    out: Path | None = None
    skipped: int = field(default=0)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    @property
    def ok(self) -> list[SweepRecord]:
        return [r for r in self.records if r.status == "ok"]

    @property
    def failed(self) -> list[SweepRecord]:
        return [r for r in self.records if r.status != "ok"]

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per config; a result key that clashes with a config key becomes ``result.<key>``."""
        rows = []
        for rec in self.records:
            row = dict(rec.config)
            for k, v in (rec.result or {}).items():
                row[f"result.{k}" if k in rec.config else k] = v
            row.update(status=rec.status, error=rec.error)
            rows.append(row)
        return rows

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as CSV (atomically); lists and dicts are written as JSON text."""
        rows = self.rows()
        columns = list(dict.fromkeys(k for row in rows for k in row))
        path = Path(path)

        def write(f) -> None:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})

        atomic_write(path, write, newline="")
        return path

    @classmethod
    def load(cls, out: str | os.PathLike) -> SweepResult:
        """Read every record file of a sweep folder (sorted by file name)."""
        folder = _check_out(out, create=False)
        return cls([_read_record(p) for p in sorted(folder.glob("*.json"))], out=folder)


def sweep(
    fn: Callable[[Config], Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    backend: str = "local",
    max_workers: int | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = True,
) -> SweepResult:
    """Run ``fn(config)`` for every config of ``grid`` in parallel.

    Args:
        fn: ``fn(config) -> dict`` of JSON-serializable metrics. For ``backend="local"``
            it must be picklable by reference (a module-level function of an importable module).
        grid: a dict of lists (their Cartesian product, in key order) or a list of config dicts.
            Configs must be JSON-serializable and distinct.
        backend: ``"local"`` (a forkserver, or spawn, process pool on this machine; each worker
            gets ``cpu_count // max_workers`` torch threads) or ``"ray"`` (connects
            to the cluster in ``RAY_ADDRESS`` if set, reuses a running ``ray.init``, else starts
            a local Ray instance and shuts it down afterwards).
        max_workers: parallel configs at most (default: the CPU count / the cluster's capacity).
        out: folder for one ``<key>.json`` record per config (created if missing); None keeps
            the results in memory only.
        resume: skip configs whose record in ``out`` says "ok" (failed ones are run again).

    A config whose ``fn`` raises, returns a non-JSON-serializable result, or kills its worker
    process is recorded as failed with the traceback; the others still run. A warning
    summarizes the failures. Returns a :class:`SweepResult` in grid order.
    """
    if not callable(fn):
        raise ArgumentTypeError(f"fn must be callable, fn(config) -> dict; got {type(fn).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}")
    if max_workers is not None and not (isinstance(max_workers, int) and max_workers >= 1):
        raise ValueError(f"max_workers must be a positive int or None; got {max_workers!r}")
    configs = expand_grid(grid)
    folder = None if out is None else _check_out(out, create=True)
    done: dict[str, SweepRecord] = {}
    if folder is not None and resume:
        for cfg in configs:
            path = folder / f"{config_key(cfg)}.json"
            if path.is_file():
                rec = _read_record(path)
                if rec.status == "ok":
                    done[rec.key] = rec
    todo = [c for c in configs if config_key(c) not in done]

    with tqdm(total=len(configs), initial=len(done), desc="sweep", disable=None) as bar:
        def record(rec: SweepRecord) -> None:
            if folder is not None:
                atomic_write(folder / f"{rec.key}.json", lambda f: json.dump(rec.to_json(), f, indent=1))
            done[rec.key] = rec
            bar.update()

        if todo:
            if backend == "local":
                _run_local(fn, todo, max_workers or os.cpu_count() or 1, record)
            else:
                _run_ray(fn, todo, max_workers, record)

    result = SweepResult([done[config_key(c)] for c in configs], out=folder, skipped=len(configs) - len(todo))
    if result.failed:
        first = result.failed[0]
        warnings.warn(f"{len(result.failed)} of {len(result)} sweep configs failed (see SweepResult.failed); "
                      f"the first, {first.config}: {first.error.strip().splitlines()[-1]}", RuntimeWarning,
                      stacklevel=2)
    return result


def expand_grid(grid: Any) -> list[Config]:
    """The list of configs of a dict of lists (Cartesian product) or a list of dicts, validated."""
    if isinstance(grid, Mapping):
        for k, values in grid.items():
            if not isinstance(values, (list, tuple)):
                raise ArgumentTypeError(f"grid[{k!r}] must be a list of values; got {type(values).__name__} "
                                        f"(wrap a fixed value in a list: [{values!r}])")
        configs = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())] if grid else []
    elif isinstance(grid, Iterable) and not isinstance(grid, (str, bytes)):
        configs = list(grid)
        for i, cfg in enumerate(configs):
            if not isinstance(cfg, Mapping):
                raise ArgumentTypeError(f"grid[{i}] must be a config dict; got {type(cfg).__name__}")
        configs = [dict(c) for c in configs]
    else:
        raise ArgumentTypeError(f"grid must be a dict of lists or a list of config dicts; got {type(grid).__name__}")
    if not configs:
        raise ValueError("grid is empty: give a dict of non-empty lists, e.g. {'seed': [0, 1, 2]}, "
                         "or a non-empty list of config dicts")
    seen: dict[str, int] = {}
    for i, cfg in enumerate(configs):
        bad = [k for k in cfg if not isinstance(k, str)]
        if bad:
            raise ArgumentTypeError(f"config {i} has non-string keys {bad}; config keys must be str")
        try:
            key = config_key(cfg)
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"config {i} ({cfg!r}) is not JSON-serializable ({err}); use numbers, "
                                    "strings, bools, None, lists and dicts in configs") from None
        if key in seen:
            raise ValueError(f"grid has the same config twice (entries {seen[key]} and {i}: {cfg!r}); "
                             "configs must be distinct (add a seed key to repeat a run)")
        seen[key] = i
    return configs


def config_key(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit name for a config: SHA-256 of its canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_config(fn: Callable[[Config], Any], config: Config) -> SweepRecord:
    """Call ``fn(config)`` and capture its JSON-normalized result or its traceback (runs in the worker)."""
    start = time.perf_counter()
    try:
        result = fn(dict(config))
        if not isinstance(result, Mapping):
            raise ArgumentTypeError(f"fn must return a dict of metrics; got {type(result).__name__}")
        for k, v in result.items():
            try:
                json.dumps({k: v})
            except (TypeError, ValueError) as err:
                raise ArgumentTypeError(
                    f"fn returned a result that is not JSON-serializable: key {k!r} holds a {type(v).__name__} "
                    f"({err}); return plain numbers/lists (e.g. float(x), x.tolist()) or save the object and "
                    "return its path") from None
        result = json.loads(json.dumps(dict(result)))
    except BaseException:  # noqa: B036 - a failing config, whatever it raises, is recorded, never lost
        return SweepRecord(config, "failed", error=traceback.format_exc(), elapsed_s=time.perf_counter() - start)
    return SweepRecord(config, "ok", result=result, elapsed_s=time.perf_counter() - start)


# --- local backend -----------------------------------------------------------------------------

_started = None  # the worker process's queue for "config started" notices


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (workers fork from a server that has imported neurodyn and torch once) where available, else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["neurodyn"])
    return ctx


def _init_worker(queue, environ: dict[str, str], path: list[str], threads: int) -> None:
    """Give the worker the driver's current environment and import path, and its share of the CPU threads."""
    global _started
    _started = queue
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(fn: Callable[[Config], Any], config: Config) -> SweepRecord:
    _started.put(config_key(config))
    return run_config(fn, config)


def _run_local(fn: Callable, configs: list[Config], workers: int, record: Callable[[SweepRecord], None]) -> None:
    """Run on a process pool; a config that kills its worker is isolated and recorded as failed."""
    try:
        pickle.dumps(fn)
    except Exception as err:
        raise ArgumentTypeError(f"fn must be picklable for backend='local' ({err}); define it at module level "
                                "in an importable module (not a lambda or a nested function)") from None
    remaining = {config_key(c): c for c in configs}
    while remaining:  # each pass ends when all are done or a worker dies
        suspects = _pool_pass(fn, remaining, min(workers, len(remaining)), record)
        if suspects == []:
            raise RuntimeError("the process pool broke before any config started; check that fn's module imports "
                               "cleanly in a fresh process (python -c 'import <module>') and that a script "
                               "calls sweep under if __name__ == '__main__':")
        if suspects is None:
            return
        if len(suspects) == 1:
            cfg = remaining.pop(suspects[0])
            record(SweepRecord(cfg, "failed", error="the worker process died while running this config (killed by "
                                                    "a signal, os._exit, a crash in native code, or out of memory)"))
        elif suspects:
            _run_local(fn, [remaining.pop(k) for k in suspects], 1, record)


def _pool_pass(fn: Callable, remaining: dict[str, Config], workers: int,
               record: Callable[[SweepRecord], None]) -> list[str] | None:
    """One pool over ``remaining`` (records drop out of it); None if it finished, else the keys in flight
    when the pool broke (a worker process died)."""
    ctx = _pool_context()
    started = ctx.SimpleQueue()
    broken = False
    threads = max(1, (os.cpu_count() or 1) // workers)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(started, dict(os.environ), list(sys.path), threads)) as pool:
        futures = {pool.submit(_run_in_worker, fn, cfg): key for key, cfg in remaining.items()}
        for future in cf.as_completed(futures):
            key = futures[future]
            try:
                rec = future.result()
            except BrokenProcessPool:
                broken = True
                continue
            except Exception:  # e.g. fn could not be unpickled in the worker
                rec = SweepRecord(remaining[key], "failed", error=traceback.format_exc())
            del remaining[key]
            record(rec)
    if not broken:
        return None
    began = set()
    while not started.empty():
        began.add(started.get())
    return [k for k in remaining if k in began]


# --- Ray backend -------------------------------------------------------------------------------

def _run_ray(fn: Callable, configs: list[Config], max_workers: int | None,
             record: Callable[[SweepRecord], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs Ray: pip install 'neurodyn[ray]'") from None
    owned = not ray.is_initialized()
    if owned:
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:  # a local instance: its workers see the driver's import path
            ray.init(num_cpus=max_workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    try:
        task = ray.remote(num_cpus=1)(run_config)
        fn_ref = ray.put(fn)
        limit = max_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue, running = list(configs), {}
        while queue or running:
            while queue and len(running) < limit:
                cfg = queue.pop(0)
                running[task.remote(fn_ref, cfg)] = cfg
            ready, _ = ray.wait(list(running), num_returns=1)
            cfg = running.pop(ready[0])
            try:
                record(ray.get(ready[0]))
            except Exception:  # the worker died or the task could not run: this config fails, the others go on
                record(SweepRecord(cfg, "failed", error=traceback.format_exc()))
    finally:
        if owned:
            ray.shutdown()


# --- files -------------------------------------------------------------------------------------

def atomic_write(path: Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    """Write a text file through a temporary file in the same folder, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline=newline) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_out(out: Any, *, create: bool) -> Path:
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentTypeError(f"out must be a folder path (str or Path); got {type(out).__name__}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out must be a folder; {str(folder)!r} is a file (give a folder path, e.g. 'sweep_out')")
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise ValueError(f"out folder {str(folder)!r} does not exist")
    return folder


def _read_record(path: Path) -> SweepRecord:
    try:
        data = json.loads(path.read_text())
        return SweepRecord(data["config"], data["status"], data.get("result"), data.get("error"),
                           data.get("elapsed_s", 0.0))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a sweep record ({err}); remove it or pick another out folder") from None


# --- command line ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ('Run a sweep described by a JSON file: {"fn": "module:function", "grid": {...} or [...], '
                          '"out": "folder", "max_workers": 4}. The current folder is importable.')
    parser.add_argument("config", help="the sweep's JSON file")
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="process pool or Ray (default local)")
    parser.add_argument("--max-workers", type=int, default=None, help="parallel configs at most")
    parser.add_argument("--out", default=None, help="record folder (overrides the file's \"out\")")
    parser.add_argument("--no-resume", action="store_true", help="run every config again")
    parser.add_argument("--csv", default=None, help="table path (default OUT/results.csv)")


def run(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(Path(args.config).read_text())
        if not isinstance(spec, dict) or "fn" not in spec or "grid" not in spec:
            raise ValueError('the file must hold a JSON object with "fn" and "grid"')
        fn = _import_function(spec["fn"])
        out = args.out or spec.get("out") or "sweep_output"
        result = sweep(fn, spec["grid"], backend=args.backend, out=out, resume=not args.no_resume,
                       max_workers=args.max_workers or spec.get("max_workers"))
    except (OSError, ValueError, TypeError, ImportError) as err:
        print(f"neurodyn sweep: error: {err}", file=sys.stderr)
        return 2
    table = result.to_csv(args.csv or Path(out) / "results.csv")
    print(f"{len(result.ok)} ok, {len(result.failed)} failed, {result.skipped} already done; "
          f"records in {out}, table in {table}")
    for rec in result.failed:
        print(f"failed {rec.config}:\n{rec.error}", file=sys.stderr)
    return 1 if result.failed else 0


def _import_function(ref: Any) -> Callable:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ValueError(f'"fn" must be "module:function" (e.g. "train:run" for train.py); got {ref!r}')
    module, name = ref.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"{module!r} has no function {name!r}")
    return fn
