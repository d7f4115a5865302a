"""Hyperparameter and seed sweeps on a process pool or a Ray cluster; ``neurodyn sweep CONFIG.json``.

The primer's advice (Sec. 5): when training a network supports a scientific claim, vary
the hyperparameters and seeds to find which conditions are necessary and sufficient.
``sweep(fn, grid)`` calls ``fn(config) -> dict`` once per config, in parallel, and writes
one JSON file per config (atomically) so that an interrupted sweep resumes where it stopped.

Records are standard JSON: numpy scalars and 0-d arrays/tensors become Python numbers
(``.item()``), and a NaN or infinite metric is stored as ``null`` with a warning (JSON has
no NaN). ``SweepResult.rows()`` never drops a key: a result key that clashes with a config
key or with the ``status``/``error`` columns is renamed ``result.<key>``, a config key named
``status``/``error`` is renamed ``config.<key>``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import importlib
import itertools
import json
import math
import multiprocessing
import os
import pickle
import re
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import ArgumentTypeError
from .files import refuse_foreign, write_atomic

BACKENDS = ("local", "ray")
STATUS_COLUMNS = ("status", "error")  # the columns rows() adds after a config's and result's keys
RECORD_NAME = re.compile(r"[0-9a-f]{16}\.json")  # <config_key>.json
WORKER_DIED = ("the worker process died while running this config (killed by a signal, os._exit, a crash in "
               "native code, or out of memory)")
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
    the result's keys, ``status`` and ``error``; no key is lost, see :meth:`rows`);
    ``to_csv(path)`` writes it.
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
        """One flat dict per config: its config's keys, its result's keys, then ``status`` and ``error``.

        No key is lost: a result key that clashes with a config key or with ``status``/``error``
        becomes ``result.<key>``, a config key named ``status``/``error`` becomes ``config.<key>``
        (prefixed again while the name is still taken).
        """
        rows = []
        for rec in self.records:
            row: dict[str, Any] = {}
            for prefix, part in (("config.", rec.config), ("result.", rec.result or {})):
                for k, v in part.items():
                    name = k
                    while name in row or name in STATUS_COLUMNS:
                        name = prefix + name
                    row[name] = v
            row.update(status=rec.status, error=rec.error)
            rows.append(row)
        return rows

    def to_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`rows` as CSV (atomically); lists and dicts are written as JSON text.

        An existing file is replaced when it is a sweep table (its header ends with the status and
        error columns), as a resumed sweep rewrites its own; any other file only with ``overwrite=True``.
        """
        path = _check_table_path(path, overwrite)
        rows = self.rows()
        columns = list(dict.fromkeys(k for row in rows for k in row))

        def write(f) -> None:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})

        atomic_write(path, write, newline="")
        return path

    @classmethod
    def load(cls, out: str | os.PathLike) -> SweepResult:
        """Read the record files (``<16 hex digits>.json``) of a sweep folder, sorted by file name.

        Other files in the folder are ignored; an unreadable (e.g. truncated) record is skipped
        with a warning, as a resumed sweep runs its config again.
        """
        folder = _check_out(out, create=False)
        records = (_read_record(p) for p in sorted(folder.glob("*.json")) if RECORD_NAME.fullmatch(p.name))
        return cls([r for r in records if r is not None], out=folder)


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
        grid: a dict of value lists (their Cartesian product, in key order; any finite iterable
            works: list, tuple, range, 1-D numpy array or tensor) or a list of config dicts.
            Configs must be JSON-serializable and distinct; they are passed to ``fn`` in their
            JSON form (numpy/torch scalars as Python numbers, tuples as lists).
        backend: ``"local"`` (a forkserver, or spawn, process pool on this machine; each worker
            gets ``cpu_count // max_workers`` torch threads) or ``"ray"`` (connects
            to the cluster in ``RAY_ADDRESS`` if set, reuses a running ``ray.init``, else starts
            a local Ray instance and shuts it down afterwards).
        max_workers: parallel configs at most (default: the CPU count / the cluster's capacity).
        out: folder for one ``<key>.json`` record per config (created if missing); None keeps
            the results in memory only.
        resume: skip configs whose record in ``out`` says "ok" (failed ones, and unreadable
            record files, with a warning, are run again).

    A config whose ``fn`` raises, returns a non-JSON-serializable result, or kills its worker
    process is recorded as failed with the traceback; the others still run, and each config
    runs once (no retries, on either backend). Numpy scalars and 0-d arrays/tensors in the
    result become Python numbers; NaN and infinite values are stored as ``None`` (JSON
    ``null``). Warnings summarize the failures and the non-finite metrics. Returns a
    :class:`SweepResult` in grid order.
    """
    if not callable(fn):
        raise ArgumentTypeError(f"fn must be callable, fn(config) -> dict; got {type(fn).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}")
    if max_workers is not None and not (isinstance(max_workers, int) and not isinstance(max_workers, bool)
                                        and max_workers >= 1):
        raise ValueError(f"max_workers must be a positive int or None; got {max_workers!r}")
    if not isinstance(resume, bool):
        raise ArgumentTypeError(f"resume must be True or False; got {resume!r}")
    configs = expand_grid(grid)
    folder = None if out is None else _check_out(out, create=True)
    done: dict[str, SweepRecord] = {}
    if folder is not None and resume:
        for cfg in configs:
            path = folder / f"{config_key(cfg)}.json"
            rec = _read_record(path) if path.is_file() else None
            if rec is not None and rec.status == "ok":
                done[rec.key] = rec
    todo = [c for c in configs if config_key(c) not in done]
    nonfinite: list[str] = []

    with tqdm(total=len(configs), initial=len(done), desc="sweep", disable=None) as bar:
        def record(rec: SweepRecord) -> None:
            if rec.result is not None:
                paths: list[str] = []
                rec = replace(rec, result=_null_nonfinite(rec.result, "", paths))
                if paths:
                    nonfinite.append(f"{rec.config} {', '.join(paths)}")
            if folder is not None:
                atomic_write(folder / f"{rec.key}.json",
                             lambda f: json.dump(rec.to_json(), f, indent=1, allow_nan=False))
            done[rec.key] = rec
            bar.update()

        if todo:
            if backend == "local":
                _run_local(fn, todo, max_workers or os.cpu_count() or 1, record)
            else:
                _run_ray(fn, todo, max_workers, record)

    result = SweepResult([done[config_key(c)] for c in configs], out=folder, skipped=len(configs) - len(todo))
    if nonfinite:
        warnings.warn(f"{len(nonfinite)} sweep configs returned NaN or infinite metrics, stored as None (JSON "
                      f"null; standard JSON has no NaN): {'; '.join(nonfinite[:3])}"
                      f"{'; ...' if len(nonfinite) > 3 else ''}", RuntimeWarning, stacklevel=2)
    if result.failed:
        first = result.failed[0]
        warnings.warn(f"{len(result.failed)} of {len(result)} sweep configs failed (see SweepResult.failed); "
                      f"the first, {first.config}: {first.error.strip().splitlines()[-1]}", RuntimeWarning,
                      stacklevel=2)
    return result


def expand_grid(grid: Any) -> list[Config]:
    """The list of configs of a dict of value lists (Cartesian product) or a list of dicts, validated
    and in JSON form (numpy/torch scalars as Python numbers, tuples as lists)."""
    if isinstance(grid, Mapping):
        axes = [_grid_values(k, values) for k, values in grid.items()]
        configs = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*axes)] if grid else []
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
            configs[i] = json.loads(json.dumps(cfg, default=_scalar, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"config {i} ({cfg!r}) is not JSON-serializable ({err}); use finite numbers, "
                                    "strings, bools, None, lists and dicts in configs") from None
        key = config_key(configs[i])
        if key in seen:
            raise ValueError(f"grid has the same config twice (entries {seen[key]} and {i}: {cfg!r}); "
                             "configs must be distinct (add a seed key to repeat a run)")
        seen[key] = i
    return configs


def _grid_values(name: str, values: Any) -> list[Any]:
    """The values of one grid axis: any finite iterable but a string or a dict."""
    if not isinstance(values, (str, bytes, Mapping)) and isinstance(values, Iterable):
        try:
            return list(values)
        except TypeError:  # a 0-d array or tensor
            pass
    raise ArgumentTypeError(f"grid[{name!r}] must be a list of values (or a tuple, range, 1-D array or tensor); got "
                            f"{type(values).__name__} (wrap a fixed value in a list: [{values!r}])")


def _scalar(value: Any) -> Any:
    """``json.dumps`` default: a numpy scalar or a 0-d array/tensor as its Python number (``.item()``)."""
    if isinstance(value, np.generic) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _null_nonfinite(value: Any, path: str, found: list[str]) -> Any:
    """``value`` with every NaN/inf float (nested in lists and dicts) replaced by None; their paths go to ``found``."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(f"{path}={value}")
        return None
    if isinstance(value, list):
        return [_null_nonfinite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _null_nonfinite(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    return value


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
                json.dumps({k: v}, default=_scalar)
            except (TypeError, ValueError) as err:
                raise ArgumentTypeError(
                    f"fn returned a result that is not JSON-serializable: key {k!r} holds a {type(v).__name__} "
                    f"({err}); return plain numbers/lists (e.g. float(x), x.tolist()) or save the object and "
                    "return its path") from None
        result = json.loads(json.dumps(dict(result), default=_scalar))  # NaN/inf stay floats until recorded
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


def _init_worker(queue, driver_alive, environ: dict[str, str], path: list[str], threads: int) -> None:
    """Give the worker the driver's current environment and import path, and its share of the CPU threads;
    the worker exits when the driver's end of ``driver_alive`` closes (the sweep's process is gone)."""
    global _started
    _started = queue
    threading.Thread(target=_exit_with_driver, args=(driver_alive,), name="neurodyn-sweep-watch", daemon=True).start()
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    import torch

    torch.set_num_threads(threads)


def _exit_with_driver(driver_alive) -> None:
    """Block until the driver's end of the pipe closes, then end this worker. The driver closes it when it is
    interrupted; when it is killed (SIGTERM, SIGKILL: no cleanup runs) the kernel does, and the pool's workers
    would otherwise go on running configs for nobody."""
    try:
        driver_alive.recv()
    except (EOFError, OSError):
        os._exit(1)


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
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if getattr(fn, "__module__", None) == "__main__" and not (main and os.path.isfile(main)):
        raise ArgumentTypeError(f"fn ({getattr(fn, '__name__', fn)!r}) is defined in an interactive session, a "
                                "notebook, python -c or stdin, which the worker processes cannot import; put it in a "
                                "module file (e.g. train.py, then `from train import fn`)")
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
            record(SweepRecord(remaining.pop(suspects[0]), "failed", error=WORKER_DIED))
        elif suspects:
            _run_local(fn, [remaining.pop(k) for k in suspects], 1, record)


def _pool_pass(fn: Callable, remaining: dict[str, Config], workers: int,
               record: Callable[[SweepRecord], None]) -> list[str] | None:
    """One pool over ``remaining`` (records drop out of it); None if it finished, else the keys in flight
    when the pool broke (a worker process died)."""
    ctx = _pool_context()
    started = ctx.SimpleQueue()
    alive_r, alive_w = ctx.Pipe(duplex=False)  # only this process holds alive_w: it closes when this process ends
    broken = False
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(started, alive_r, dict(os.environ), list(sys.path), threads))
    try:
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
    except BaseException:  # Ctrl-C (KeyboardInterrupt) or a failed write: closing alive_w below ends the
        pool.shutdown(wait=False, cancel_futures=True)  # workers, and with them the configs still running
        raise
    else:
        pool.shutdown()
    finally:
        alive_w.close()
        alive_r.close()
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
        task = ray.remote(num_cpus=1, max_retries=0)(run_config)  # each config runs once, as on the local backend
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
                rec = ray.get(ready[0])
            except ray.exceptions.WorkerCrashedError:
                rec = SweepRecord(cfg, "failed", error=WORKER_DIED)
            except Exception:  # the task could not run: this config fails, the others go on
                rec = SweepRecord(cfg, "failed", error=traceback.format_exc())
            record(rec)
    finally:
        if owned:
            ray.shutdown()


# --- files -------------------------------------------------------------------------------------

def atomic_write(path: Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    """Write a text file atomically (:func:`neurodyn.files.write_atomic`); ``write(f)`` gets the open file."""

    def text(tmp: str) -> None:
        with open(tmp, "w", newline=newline) as f:
            write(f)

    write_atomic(path, text)


def _check_out(out: Any, *, create: bool) -> Path:
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentTypeError(f"out must be a folder path (str or Path); got {type(out).__name__}")
    if not os.fspath(out):
        raise ValueError("out must be a folder path, e.g. 'sweep_out'; got an empty path (out=None keeps the "
                         "records in memory only)")
    folder = Path(out)
    for path in (folder, *folder.parents):  # the nearest existing ancestor must be a folder
        if path.exists():
            if not path.is_dir():
                where = "" if path == folder else f", a parent of {str(folder)!r},"
                raise ValueError(f"out must be a folder; {str(path)!r}{where} is a file (give a folder path, "
                                 "e.g. 'sweep_out')")
            break
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise ValueError(f"out folder {str(folder)!r} does not exist")
    return folder


def _read_record(path: Path) -> SweepRecord | None:
    """The record in ``path``; None, with a warning, if the file is not a readable record (e.g. truncated)."""
    try:
        data = json.loads(path.read_text())
        return SweepRecord(data["config"], data["status"], data.get("result"), data.get("error"),
                           data.get("elapsed_s", 0.0))
    except (ValueError, KeyError, TypeError) as err:
        warnings.warn(f"skipping {path}: not a readable sweep record ({type(err).__name__}: {err}); its config "
                      "counts as unfinished (a sweep with resume=True runs it again)", RuntimeWarning, stacklevel=3)
        return None


def _check_table_path(path: Any, overwrite: bool = False) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ArgumentTypeError(f"the CSV path must be a non-empty str or Path; got {path!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write the CSV table {str(path)!r}: its folder {str(path.parent)!r} does not "
                         "exist (create it or pick another path)")
    if path.is_dir():
        raise ValueError(f"the CSV path {str(path)!r} is a folder; give a file path such as "
                         f"{str(path / 'results.csv')!r}")
    if not overwrite:
        refuse_foreign(path, _is_sweep_table)
    return path


def _is_sweep_table(path: Path) -> bool:
    """Whether ``path`` holds a table :meth:`SweepResult.to_csv` wrote (its header ends with the status columns)."""
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return tuple(header[-len(STATUS_COLUMNS):]) == STATUS_COLUMNS


# --- command line ------------------------------------------------------------------------------

SPEC_KEYS = ("fn", "grid", "out", "max_workers", "backend")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ('Run a sweep described by a JSON file: {"fn": "module:function", "grid": {...} or [...], '
                          '"out": "folder", "max_workers": 4, "backend": "local"} ("fn" and "grid" required; the '
                          "options override the file). The current folder is importable.")
    parser.add_argument("config", help="the sweep's JSON file")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help='process pool or Ray (default: the file\'s "backend", else local)')
    parser.add_argument("--max-workers", type=int, default=None, help="parallel configs at most")
    parser.add_argument("--out", default=None, help="record folder (overrides the file's \"out\")")
    parser.add_argument("--no-resume", action="store_true", help="run every config again")
    parser.add_argument("--csv", default=None, help="table path (default OUT/results.csv)")


def run(args: argparse.Namespace) -> int:
    out = None
    try:
        spec = _read_spec(Path(args.config))
        table = None if args.csv is None else _check_table_path(args.csv)
        out = args.out if args.out is not None else spec.get("out", "sweep_output")
        fn = _import_function(spec["fn"])
        result = sweep(fn, spec["grid"], backend=args.backend or spec.get("backend", "local"), out=out,
                       resume=not args.no_resume,
                       max_workers=args.max_workers if args.max_workers is not None else spec.get("max_workers"))
        table = result.to_csv(table or Path(out) / "results.csv")
    except (OSError, ValueError, TypeError, ImportError) as err:
        print(f"neurodyn sweep: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurodyn sweep: interrupted; the configs finished so far are recorded"
              + (f" in {out}" if out is not None else "") + ", and the same command resumes from there",
              file=sys.stderr)
        return 130
    print(f"{len(result.ok)} ok, {len(result.failed)} failed, {result.skipped} already done; "
          f"records in {out}, table in {table}")
    for rec in result.failed:
        print(f"failed {rec.config}:\n{rec.error}", file=sys.stderr)
    return 1 if result.failed else 0


def _read_spec(path: Path) -> dict[str, Any]:
    """The sweep file: a JSON object with "fn" and "grid" and only the keys of ``SPEC_KEYS``."""
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(spec, dict) or "fn" not in spec or "grid" not in spec:
        raise ValueError(f'{path} must hold a JSON object with "fn" and "grid"')
    unknown = [k for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(f"{path} has unknown keys {unknown}; the valid keys are {list(SPEC_KEYS)}")
    if not isinstance(spec.get("out", ""), str):
        raise ValueError(f'"out" in {path} must be a folder path (a string); got {spec["out"]!r}')
    return spec


def _import_function(ref: Any) -> Callable:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ValueError(f'"fn" must be "module:function" (e.g. "train:run" for train.py); got {ref!r}')
    module, name = ref.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = getattr(importlib.import_module(module), name, None)
    except Exception as err:  # whatever the module raises at import (a one-line error, not a traceback)
        raise ValueError(f'cannot import {module!r} for "fn": {type(err).__name__}: {err}') from None
    if not callable(fn):
        raise ValueError(f"{module!r} has no function {name!r}")
    return fn
