"""Recordings to and from Neurodata Without Borders files (through pynwb).

Layout: spike counts are stored as spike times in the units table (spread
evenly inside their bins); the trials table holds each trial's start/stop time
and the per-trial variables; the stimulus ``x`` is the stimulus TimeSeries
"x"; rates and the within-trial grid are TimeSeries in the processing module
"neurodyn" (so a file written by :func:`save_nwb` reads back exactly). Files
from elsewhere are binned on a grid of ``bin_width`` from each trial's start.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

from .recording import Recording

MODULE = "neurodyn"
RESERVED = ("start_time", "stop_time")


def _session_times(starts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Session time of every sample ``(B, T)``: trial start plus time since ``t[0]``."""
    return starts[:, None] + (t - t[0])[None, :]


def _bin_edges(t: np.ndarray) -> np.ndarray:
    last = t[-1] - t[-2]
    return np.append(t - t[0], t[-1] - t[0] + last)


def save_nwb(
    recording: Recording,
    path: str | os.PathLike,
    *,
    session_description: str = "neurodyn recording",
    identifier: str | None = None,
    session_start_time: datetime | None = None,
) -> None:
    """Write ``recording`` to the NWB file ``path`` (atomically: temporary file, then rename)."""
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a neurodyn.data.Recording; got {type(recording).__name__}")
    grid = recording.t.detach().cpu().numpy()
    t = grid.astype(np.float64)
    edges = _bin_edges(t)
    duration = edges[-1]
    trials = {k: v.detach().cpu().numpy() for k, v in (recording.trials or {}).items()}
    batch = recording.n_trials
    starts = trials.get("start_time", np.arange(batch) * duration).astype(np.float64)
    stops = trials.get("stop_time", starts + duration).astype(np.float64)
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
    module.add(TimeSeries(name="trial_time", data=grid, unit="s", timestamps=t,
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
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp.nwb")
    os.close(fd)
    try:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _series_times(series: TimeSeries) -> np.ndarray:
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    return series.starting_time + np.arange(len(series.data)) / series.rate


def _sample(series: TimeSeries, times: np.ndarray) -> np.ndarray:
    """The series at ``times (B, T)`` by zero-order hold: ``(B, T, n)``."""
    stamps = _series_times(series)
    data = np.asarray(series.data[:])
    data = data.reshape(len(data), -1)
    index = np.clip(np.searchsorted(stamps, times, side="right") - 1, 0, len(stamps) - 1)
    return data[index]


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


def load_nwb(path: str | os.PathLike, *, bin_width: float | None = None, stimulus: str | None = None) -> Recording:
    """Read a :class:`Recording` from the NWB file ``path``.

    The trials table gives the trials (the whole session is one trial without
    it); the units' spike times are binned into ``counts`` on the grid (the
    file's own grid when written by :func:`save_nwb`, else steps of
    ``bin_width`` seconds over the shortest trial); ``rates`` are the stored
    rates or ``counts / bin_width``; ``x`` is the stimulus TimeSeries named
    ``stimulus`` (default "x", or the only one), sampled on the grid. Numeric
    trial columns become ``trials``; text and ragged columns are skipped.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no NWB file at {str(path)!r}")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        module = nwb.processing.get(MODULE)
        units = nwb.units
        spikes = [np.asarray(units["spike_times"][i], dtype=np.float64) for i in range(len(units))] if units else []
        if nwb.trials is not None and len(nwb.trials):
            trials = _numeric_columns(nwb.trials)
        else:
            ends = [s.max() for s in spikes if len(s)]
            trials = {"start_time": np.zeros(1), "stop_time": np.array([max(ends) if ends else 0.0])}
        starts = trials["start_time"].astype(np.float64)
        if module is not None and "trial_time" in module.data_interfaces:
            grid = np.asarray(module["trial_time"].data[:])
            t = grid.astype(np.float64)
        else:
            if bin_width is None or not bin_width > 0:
                raise ValueError(f"{str(path)!r} was not written by neurodyn; pass bin_width (seconds) to bin it")
            shortest = float((trials["stop_time"] - starts).min())
            t = np.arange(int(np.floor(shortest / bin_width + 1e-9))) * bin_width
            grid = torch.from_numpy(t).to(torch.get_default_dtype()).numpy()
        if len(t) < 2:
            raise ValueError(f"the trials are shorter than two bins of {bin_width} s; use a smaller bin_width")
        times = _session_times(starts, t)
        edges = starts[:, None] + _bin_edges(t)[None, :]
        counts = None
        if spikes:
            # spikes in the half-open bins [edge_k, edge_k+1) of every trial: one search per unit
            counts = np.stack([np.diff(np.searchsorted(np.sort(s), edges), axis=1) for s in spikes], -1)
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
    rec_t = torch.from_numpy(grid)
    counts_t = None if counts is None else tensor(counts).to(torch.get_default_dtype() if rates is None
                                                             else tensor(rates).dtype)
    rates_t = tensor(rates) if rates is not None else counts_t / float(t[1] - t[0])
    return Recording(rec_t, rates=rates_t, counts=counts_t, x=tensor(x), trials={k: tensor(v) for k, v in
                                                                                 trials.items()})
