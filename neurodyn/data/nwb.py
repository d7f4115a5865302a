"""Recordings to and from Neurodata Without Borders files (through pynwb).

Layout: spike counts are stored as spike times in the units table (spread
evenly inside their bins); the trials table holds each trial's start/stop time
and the per-trial variables; the stimulus ``x`` is the stimulus TimeSeries
"x"; rates and the within-trial grid are TimeSeries in the processing module
"neurodyn", the counts' dtype is the comment of the grid series (so a file
written by :func:`save_nwb` reads back exactly). A trial lasts as long as its
data, ``t[-1] - t[0]`` plus one step of ``t``, from its ``start_time``; trials
must not overlap in session time (their spikes would be shared). Files from
elsewhere, or any file given a ``bin_width``, are binned on a grid of ``bin_width``
from each trial's start.
"""

from __future__ import annotations

import math
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

from ..errors import ArgumentTypeError
from ..files import write_atomic
from ..validation import rounding
from .recording import Recording

MODULE = "neurodyn"
RESERVED = ("start_time", "stop_time")
COUNTS_DTYPE = "counts dtype: "  # the comment of the trial_time series that records the counts' torch dtype


def _session_times(starts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Session time of every sample ``(B, T)``: trial start plus time since ``t[0]``."""
    return starts[:, None] + (t - t[0])[None, :]


def _bin_edges(t: np.ndarray) -> np.ndarray:
    last = t[-1] - t[-2]
    return np.append(t - t[0], t[-1] - t[0] + last)


def _check_disjoint(starts: np.ndarray, edges: np.ndarray) -> None:
    """Raise unless the trials' windows ``[start, start + duration)`` are disjoint in session time (to
    within rounding of the bins ``edges``): spikes live once in the units table, so overlapping trials
    would share (double-count) them."""
    duration = edges[-1]
    order = np.argsort(starts, kind="stable")
    gaps = np.diff(starts[order])
    if len(gaps) and gaps.min() < duration - 1e-3 * (edges[-1] - edges[-2]):
        k = int(np.argmin(gaps))
        i, j = int(order[k]), int(order[k + 1])
        raise ValueError(f"trials {i} and {j} overlap in session time (start_time {starts[i]:g} and {starts[j]:g} s, "
                         f"each {duration:g} s long): their spikes would be stored once and counted in both; give "
                         "start_times at least the trial duration apart (or no start_time/stop_time, which lays "
                         "the trials end to end)")


def _check_spans(starts: np.ndarray, stops: np.ndarray, edges: np.ndarray, slack: float) -> None:
    """Raise unless every trial ``[start_time, stop_time)`` covers its data (``edges[-1]`` long) and the
    shortest holds no further whole bin (within ``slack`` seconds): :func:`load_nwb` bins as many whole bins
    as the shortest trial holds, so given the grid's step it then reads back the recording's T bins."""
    duration, step = edges[-1], edges[-1] - edges[-2]
    spans = stops - starts
    short = np.flatnonzero(spans < duration - slack)
    i = int(short[0]) if len(short) else int(np.argmin(spans))
    if len(short) or spans[i] > duration + step - slack:
        what = "is shorter than" if len(short) else "(the shortest) is longer than"
        raise ValueError(f"trial {i} {what} its data: stop_time - start_time = {spans[i]:g} s, but the grid t spans "
                         f"{duration:g} s (t[-1] - t[0] + one step); set stop_time = start_time + {duration:g} "
                         "(or leave stop_time out)")


def _histogram(spikes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Spike counts ``(B, T)`` in the bins ``edges (B, T + 1)`` of each trial, as ``np.histogram``
    counts them: half-open bins ``[e_k, e_k+1)`` except the last, which includes its right edge."""
    spikes = np.sort(spikes)
    below = np.searchsorted(spikes, edges, side="left")
    below[:, -1] = np.searchsorted(spikes, edges[:, -1], side="right")
    return np.diff(below, axis=1)


def save_nwb(
    recording: Recording,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    session_description: str = "neurodyn recording",
    identifier: str | None = None,
    session_start_time: datetime | None = None,
) -> None:
    """Write ``recording`` to the NWB file ``path`` (atomically: temporary file, then rename).

    An existing file is replaced only with ``overwrite=True``. The trials table's
    ``start_time``/``stop_time`` (default: trials end to end) must span the data (module docstring).
    """
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a neurodyn.data.Recording; got {type(recording).__name__}")
    if not isinstance(overwrite, bool):
        raise ArgumentTypeError(f"overwrite must be True or False; got {overwrite!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; pass the path of the NWB file to write in it")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it, or choose another path")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist; "
                                "create it first (os.makedirs)")
    grid = recording.t.detach().cpu().numpy()
    t = grid.astype(np.float64)
    edges = _bin_edges(t)
    duration = edges[-1]
    trials = {k: v.detach().cpu().numpy() for k, v in (recording.trials or {}).items()}
    batch = recording.n_trials
    starts = trials.get("start_time", np.arange(batch) * duration).astype(np.float64)
    stops = trials.get("stop_time", starts + duration).astype(np.float64)
    slack = 1e-3 * (edges[-1] - edges[-2]) + rounding(grid) + sum(rounding(trials[k]) for k in RESERVED
                                                                 if k in trials)
    _check_spans(starts, stops, edges, slack)
    _check_disjoint(starts, edges)
    times = _session_times(starts, t)
    nwb = NWBFile(session_description=session_description, identifier=identifier or str(uuid.uuid4()),
                  session_start_time=session_start_time or datetime.now(timezone.utc))
    for name in trials:
        if name not in RESERVED:
            nwb.add_trial_column(name=name, description=f"trial variable {name}")
    for i in range(batch):
        nwb.add_trial(start_time=float(starts[i]), stop_time=float(stops[i]),
                      **{k: v[i] for k, v in trials.items() if k not in RESERVED})
    module = nwb.create_processing_module(name=MODULE, description="neurodyn recording grid and rates")
    counts_dtype = "" if recording.counts is None else str(recording.counts.dtype).removeprefix("torch.")
    module.add(TimeSeries(name="trial_time", data=grid, unit="s", timestamps=t, comments=COUNTS_DTYPE + counts_dtype,
                          description="the within-trial time grid of the recording"))
    flat_times = times.reshape(-1)
    if recording.rates is not None:
        rates = recording.rates.detach().cpu().numpy()
        module.add(TimeSeries(name="rates", data=rates.reshape(-1, rates.shape[-1]), unit="Hz",
                              timestamps=flat_times, description="firing rates, trials concatenated"))
    if recording.x is not None:
        x = recording.x.detach().cpu().numpy()
        nwb.add_stimulus(TimeSeries(name="x", data=x.reshape(-1, x.shape[-1]), unit="a.u.", timestamps=flat_times,
                                    description="stimulus, trials concatenated"))
    if recording.counts is not None:
        counts = recording.counts.detach().cpu().numpy().astype(np.int64)  # (B, T, N)
        widths = np.diff(edges)
        for n in range(counts.shape[2]):
            per_bin = counts[:, :, n].reshape(-1)
            bins = np.repeat(np.arange(per_bin.size), per_bin)
            rank = np.arange(bins.size) - np.repeat(np.cumsum(per_bin) - per_bin, per_bin)
            width = np.tile(widths, batch)[bins]
            spikes = flat_times[bins] + width * (rank + 0.5) / per_bin[bins]
            nwb.add_unit(spike_times=spikes)
    def write(tmp: str) -> None:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)

    write_atomic(path, write, suffix=".tmp.nwb")


def _series_times(series: TimeSeries) -> np.ndarray:
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    return series.starting_time + np.arange(len(series.data)) / series.rate


def _sample(series: TimeSeries, times: np.ndarray) -> np.ndarray:
    """The series at ``times (B, T)`` by zero-order hold, zero before its first sample: ``(B, T, n)``.

    A time within 1e-3 sampling intervals before a sample counts as that sample's (float32 grids)."""
    stamps = _series_times(series)
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    data = np.asarray(series.data[:])
    data = data.reshape(len(data), -1)[order]
    steps = np.diff(stamps)
    slack = 1e-3 * steps[steps > 0].min() if (steps > 0).any() else 0.0
    index = np.searchsorted(stamps, times + slack, side="right") - 1
    return np.where((index >= 0)[..., None], data[np.maximum(index, 0)], 0).astype(data.dtype)


def _numeric_columns(table) -> dict[str, np.ndarray]:
    """The table's plain numeric or boolean columns (ragged, reference and text columns are skipped)."""
    columns = {}
    for name in table.colnames:
        column = table[name]
        if type(column).__name__ != "VectorData":
            continue
        values = np.asarray(column.data[:])
        if values.dtype.kind in "biuf":
            columns[name] = values
    return columns


def _check_bin_width(bin_width: object) -> float | None:
    if bin_width is None:
        return None
    if isinstance(bin_width, bool) or not isinstance(bin_width, (int, float, np.floating, np.integer)):
        raise ArgumentTypeError(f"bin_width must be a number of seconds or None; got {type(bin_width).__name__}")
    if not (math.isfinite(bin_width) and bin_width > 0):
        raise ValueError(f"bin_width must be a finite number of seconds > 0 (e.g. 0.01); got {bin_width!r}")
    return float(bin_width)


def _stored_dtype(series: TimeSeries | None) -> torch.dtype | None:
    """The counts' torch dtype recorded by :func:`save_nwb` in the comment of ``trial_time``."""
    comment = getattr(series, "comments", "") or ""
    name = comment.removeprefix(COUNTS_DTYPE) if comment.startswith(COUNTS_DTYPE) else ""
    dtype = getattr(torch, name, None) if name else None
    return dtype if isinstance(dtype, torch.dtype) else None


def load_nwb(path: str | os.PathLike, *, bin_width: float | None = None, stimulus: str | None = None) -> Recording:
    """Read a :class:`Recording` from the NWB file ``path``.

    The trials table gives the trials (without it the whole session, from 0 to
    the end of the bin holding the last spike, is one trial). The grid is the file's own when it was written
    by :func:`save_nwb` and ``bin_width`` is not given (such a file reads back
    exactly); otherwise it is ``bin_width`` seconds from each trial's start, as
    many whole bins as the shortest trial holds (without trials, enough to cover
    every spike). The units' spike times are binned into ``counts`` as
    ``np.histogram`` does (the last bin includes its right edge). ``rates`` are
    the rates stored by :func:`save_nwb` (zero-order hold on the grid), or
    ``counts / bin_width`` for files from elsewhere. ``x`` is the stimulus
    TimeSeries named ``stimulus`` (default "x", or the only one), held from each
    sample to the next and zero before its first sample. Numeric and boolean
    trial columns become ``trials``; text and ragged columns are skipped.
    """
    bin_width = _check_bin_width(bin_width)
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no NWB file at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an NWB file; pass the path of a .nwb file")
    with open(path, "rb"):  # an unreadable file raises its own error (PermissionError) here
        pass
    if not NWBHDF5IO.can_read(str(path)):
        raise ValueError(f"{str(path)!r} is not an NWB file: pynwb cannot read it (an NWB 2 file is HDF5, "
                         "as save_nwb writes)")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        module = nwb.processing.get(MODULE)
        own = module["trial_time"] if module is not None and "trial_time" in module.data_interfaces else None
        units = nwb.units
        spikes = [np.asarray(units["spike_times"][i], dtype=np.float64) for i in range(len(units))] if units else []
        whole_session = nwb.trials is None or not len(nwb.trials)
        if whole_session:
            ends = [s.max() for s in spikes if len(s)]
            trials = {"start_time": np.zeros(1), "stop_time": np.array([max(ends) if ends else 0.0])}
        else:
            trials = _numeric_columns(nwb.trials)
        starts = trials["start_time"].astype(np.float64)
        if own is not None and bin_width is None:
            grid = np.asarray(own.data[:])
            t = grid.astype(np.float64)
        else:
            if bin_width is None:
                raise ValueError(f"{str(path)!r} was not written by neurodyn; pass bin_width (seconds) to bin it")
            span = float((trials["stop_time"] - starts).min()) / bin_width
            bins = int(np.ceil(span - 1e-9)) if whole_session else int(np.floor(span + 1e-3))  # 1e-3: rounding
            t = np.arange(bins) * bin_width
            if whole_session:
                trials["stop_time"] = starts + bins * bin_width
            grid = torch.from_numpy(t).to(torch.get_default_dtype()).numpy()
        if len(t) < 2:
            raise ValueError(f"the trials are shorter than two bins of {bin_width} s; use a smaller bin_width")
        times = _session_times(starts, t)
        edges = starts[:, None] + _bin_edges(t)[None, :]
        counts = np.stack([_histogram(s, edges) for s in spikes], -1) if spikes else None
        rates = None
        if module is not None and "rates" in module.data_interfaces:
            rates = _sample(module["rates"], times)
        names = list(nwb.stimulus)
        name = stimulus or ("x" if "x" in names else (names[0] if len(names) == 1 else None))
        if stimulus is not None and stimulus not in names:
            raise ValueError(f"no stimulus {stimulus!r} in {str(path)!r}; it has {names}")
        x = _sample(nwb.stimulus[name], times) if name is not None else None
    if rates is None and counts is None:
        raise ValueError(f"{str(path)!r} has neither units (spike times) nor neurodyn rates to load")
    tensor = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))
    rates_t = tensor(rates)
    counts_t = None
    if counts is not None:
        fallback = rates_t.dtype if rates_t is not None else torch.get_default_dtype()
        counts_t = tensor(counts).to(_stored_dtype(own) or fallback)
        if own is None:
            rates_t = counts_t / float(t[1] - t[0])
    return Recording(torch.from_numpy(grid), rates=rates_t, counts=counts_t, x=tensor(x),
                     trials={k: tensor(v) for k, v in trials.items()})
