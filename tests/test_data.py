"""Recordings, NWB input/output and synthetic ground-truth data."""

from datetime import datetime, timezone

import numpy as np
import pytest
import torch
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

from neurodyn import RateRNN, simulate
from neurodyn.data import Recording, load_nwb, save_nwb, synthetic_recording

pytestmark = pytest.mark.usefixtures("one_thread")


def teacher(n_out=3):
    model = RateRNN(6, 2, n_out, tau=0.05)
    with torch.no_grad():
        model.W_out.mul_(20.0)
        model.b_out.fill_(10.0)
    return model


def test_recording_validation():
    t = torch.arange(10) * 0.1
    rec = Recording(t, rates=torch.rand(3, 10, 4), counts=torch.randint(0, 5, (3, 10, 4)).float(),
                    trials={"condition": torch.arange(3)})
    assert (rec.n_trials, rec.n_neurons) == (3, 4)
    assert rec.bin_width == pytest.approx(0.1)
    assert Recording(t, rates=torch.rand(10, 4)).n_trials == 1  # one (T, N) trial
    with pytest.raises(ValueError, match="T=10"):
        Recording(t, rates=torch.rand(3, 9, 4))
    with pytest.raises(ValueError, match="NaN"):
        Recording(t, rates=torch.full((3, 10, 4), float("nan")))
    with pytest.raises(ValueError, match="non-negative"):
        Recording(t, counts=-torch.ones(3, 10, 4))
    with pytest.raises(ValueError, match="integer"):
        Recording(t, counts=torch.full((3, 10, 4), 0.5))
    with pytest.raises(ValueError, match="rates or counts"):
        Recording(t)
    with pytest.raises(ValueError, match="trials"):
        Recording(t, rates=torch.rand(3, 10, 4), trials={"condition": torch.arange(2)})
    with pytest.raises(ValueError, match="uniform"):
        Recording(t ** 2 + t, counts=torch.ones(3, 10, 4))
    with pytest.raises(ValueError, match="increasing"):
        Recording(t.flip(0), rates=torch.rand(3, 10, 4))


def test_synthetic_recording_matches_simulation_and_poisson_statistics():
    model = teacher()
    t = torch.arange(20) * 0.01
    x = torch.randn(1, 20, 2)
    rec = synthetic_recording(model, t, x, n_trials=3000, init_std=0.0, generator=torch.Generator().manual_seed(0))
    traj = simulate(model, t, x)
    # the stored rates are the rates the spikes were drawn from: softplus of the readout (spikes/s)
    expected = np.logaddexp(0.0, traj.outputs.detach().double().numpy())
    assert np.allclose(rec.rates.double().numpy(), np.broadcast_to(expected, (3000, 20, 3)), rtol=1e-6)
    assert torch.equal(rec.x, x.expand(3000, -1, -1))
    # counts ~ Poisson(rate dt): mean and variance both equal the expected count
    mu = rec.rates[0] * 0.01
    mean, var = rec.counts.mean(0), rec.counts.var(0)
    se = (mu / 3000).sqrt()
    assert torch.all((mean - mu).abs() < 5 * se + 1e-3)
    assert torch.allclose(var, mu, rtol=0.25, atol=0.01)
    again = synthetic_recording(model, t, x, n_trials=3000, init_std=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.counts, rec.counts)


def test_synthetic_rates_agree_with_their_counts():
    """QA: the stored rates were the raw readout (mean 0.011 Hz, negative values) while counts / bin width gave
    0.79 Hz. Now firing_rates() is the Poisson intensity: non-negative, and counts / bin width average to it."""
    model = teacher()
    with torch.no_grad():
        model.b_out.fill_(0.0)  # readout around 0: softplus matters
    t = torch.arange(40) * 0.01
    rec = synthetic_recording(model, t, torch.randn(2000, 40, 2), init_std=0.0,
                              generator=torch.Generator().manual_seed(0))
    rates = rec.firing_rates()
    assert (rates > 0).all()
    empirical = (rec.counts / 0.01).mean()
    se = (rates.mean() / 0.01 / rec.counts.numel()).sqrt()  # Poisson: var(count / w) = rate / w per bin
    assert abs(float(empirical - rates.mean())) < 5 * float(se)


def test_synthetic_units_and_initial_states():
    model = RateRNN(5, 0, 0, tau=0.05)
    t = torch.arange(10) * 0.01
    rec = synthetic_recording(model, t, n_trials=4, spikes=False, generator=torch.Generator().manual_seed(0))
    assert rec.counts is None and rec.rates.shape == (4, 10, 5)
    assert rec.rates[:, 0].std() > 0.1  # trials start from different random states
    replay = simulate(model, t, state0=rec.rates[:, 0])
    assert torch.allclose(replay["r"], rec.rates, atol=1e-6)


@pytest.mark.parametrize("with_trials", [True, False])
def test_nwb_round_trip_is_exact(tmp_path, with_trials):
    t = torch.arange(30) * 0.01
    rec = synthetic_recording(teacher(), t, torch.randn(4, 30, 2), generator=torch.Generator().manual_seed(1))
    assert rec.counts.sum() > 20
    if with_trials:
        starts = torch.tensor([0.0, 1.5, 3.0, 7.25], dtype=torch.float64)
        rec.trials = {"start_time": starts, "stop_time": starts + 0.3, "condition": torch.tensor([1, 2, 1, 2]),
                      "coherence": torch.tensor([0.1, -0.2, 0.4, 0.0], dtype=torch.float64)}
    path = tmp_path / "session.nwb"
    save_nwb(rec, path)
    assert [p.name for p in tmp_path.iterdir()] == ["session.nwb"]  # no temporary file left behind
    back = load_nwb(path)
    for name in ("t", "rates", "counts", "x"):
        a, b = getattr(rec, name), getattr(back, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    if with_trials:
        assert back.trials.keys() == rec.trials.keys()
        for name, value in rec.trials.items():
            assert torch.equal(back.trials[name], value), name
    else:
        assert torch.allclose(back.trials["start_time"], torch.arange(4, dtype=torch.float64) * 0.3, atol=1e-6)


def test_load_foreign_nwb_bins_spike_times(tmp_path):
    """A file written directly with pynwb: spikes binned on bin_width from each trial's start."""
    nwb = NWBFile(session_description="hand made", identifier="x", session_start_time=datetime.now(timezone.utc))
    nwb.add_trial_column(name="label", description="text, skipped")
    nwb.add_trial_column(name="coherence", description="numeric, kept")
    nwb.add_trial(start_time=1.0, stop_time=1.5, label="easy", coherence=0.5)
    nwb.add_trial(start_time=3.0, stop_time=3.6, label="hard", coherence=0.05)
    spikes = [np.array([1.01, 1.02, 1.31, 3.05, 3.45, 3.55]), np.array([1.49, 3.0, 9.0])]
    for s in spikes:
        nwb.add_unit(spike_times=s)
    nwb.add_stimulus(TimeSeries(name="light", data=np.array([0.0, 1.0, 0.0]), unit="a.u.",
                                timestamps=np.array([0.0, 1.25, 3.15])))
    with NWBHDF5IO(str(tmp_path / "foreign.nwb"), "w") as io:
        io.write(nwb)
    rec = load_nwb(tmp_path / "foreign.nwb", bin_width=0.1)
    assert rec.t.shape == (5,)  # the shortest trial lasts 0.5 s
    expected = np.zeros((2, 5, 2))
    for n, s in enumerate(spikes):
        for b, start in enumerate((1.0, 3.0)):
            expected[b, :, n] = np.histogram(s, bins=start + np.arange(6) * 0.1)[0]
    assert np.array_equal(rec.counts.numpy(), expected)
    assert torch.allclose(rec.rates, rec.counts / 0.1)
    assert rec.x[0, :, 0].tolist() == [0, 0, 0, 1, 1] and rec.x[1, :, 0].tolist() == [1, 1, 0, 0, 0]
    assert set(rec.trials) == {"start_time", "stop_time", "coherence"}
    assert rec.trials["coherence"].tolist() == [0.5, 0.05]
    with pytest.raises(ValueError, match="bin_width"):
        load_nwb(tmp_path / "foreign.nwb")


def _session(tmp_path, name, *, trials, stimulus_start, spikes):
    nwb = NWBFile(session_description="edge cases", identifier=name, session_start_time=datetime.now(timezone.utc))
    for start, stop in trials:
        nwb.add_trial(start_time=start, stop_time=stop)
    for s in spikes:
        nwb.add_unit(spike_times=np.array(s))
    nwb.add_stimulus(TimeSeries(name="x", data=np.arange(1.0, 201.0)[:, None], unit="a.u.", rate=100.0,
                                starting_time=stimulus_start))
    with NWBHDF5IO(str(tmp_path / name), "w") as io:
        io.write(nwb)
    return tmp_path / name


def test_load_nwb_stimulus_before_its_start_is_zero_and_spikes_bin_like_np_histogram(tmp_path):
    """QA: a stimulus starting after the trial start was back-filled with its first sample; without a trials
    table the last spike (at the session's last spike time) was dropped: 3 of 4 counted."""
    path = _session(tmp_path, "late.nwb", trials=[(1.0, 2.0), (3.0, 4.0)], stimulus_start=2.0,
                    spikes=[[1.05, 1.999, 2.0, 3.5]])
    rec = load_nwb(path, bin_width=0.1)
    assert rec.x[0, :, 0].tolist() == [0.0] * 10  # nothing presented before 2.0 s
    assert rec.x[1, :, 0].tolist() == [101.0 + 10 * k for k in range(10)]  # sample at 3.0 s + k 0.1 s
    for b, start in enumerate((1.0, 3.0)):
        expected = np.histogram([1.05, 1.999, 2.0, 3.5], bins=start + np.arange(11) * 0.1)[0]
        assert rec.counts[b, :, 0].tolist() == expected.tolist()
    spikes = [0.05, 0.15, 0.55, 0.95, 1.0]
    path = _session(tmp_path, "session.nwb", trials=[], stimulus_start=0.0, spikes=[spikes])
    rec = load_nwb(path, bin_width=0.1)
    assert rec.counts.sum() == 5 and rec.t.shape == (10,)
    assert rec.counts[0, :, 0].tolist() == np.histogram(spikes, bins=np.arange(11) * 0.1)[0].tolist()
    rec = load_nwb(_session(tmp_path, "early.nwb", trials=[], stimulus_start=0.0, spikes=[[0.05, 0.93]]),
                   bin_width=0.1)
    assert rec.t.shape == (10,) and rec.counts.sum() == 2  # the grid reaches past the last spike


def test_load_nwb_rebins_a_neurodyn_file_when_given_bin_width(tmp_path):
    """QA: bin_width=0.01 was silently ignored for files written by neurodyn (the grid stayed 0.001)."""
    t = torch.arange(200) * 0.001
    counts = torch.poisson(torch.full((3, 200, 2), 0.3), generator=torch.Generator().manual_seed(0))
    rates, x = torch.rand(3, 200, 2), torch.randn(3, 200, 1)
    save_nwb(Recording(t, rates=rates, counts=counts, x=x), tmp_path / "fine.nwb")
    coarse = load_nwb(tmp_path / "fine.nwb", bin_width=0.01)
    assert coarse.t.shape == (20,) and coarse.bin_width == pytest.approx(0.01)
    assert torch.equal(coarse.counts, counts.reshape(3, 20, 10, 2).sum(2))  # whole fine bins in each coarse one
    assert torch.equal(coarse.rates, rates[:, ::10]) and torch.equal(coarse.x, x[:, ::10])  # sampled at bin starts


def test_nwb_round_trip_of_counts_only_and_unordered_trials(tmp_path):
    """QA: a counts-only recording came back with float32 counts and an added rates field."""
    t = -0.2 + torch.arange(30, dtype=torch.float64) * 0.01
    for dtype in (torch.float64, torch.int64):
        counts = torch.poisson(torch.full((3, 30, 2), 2.0, dtype=torch.float64),
                               generator=torch.Generator().manual_seed(0)).to(dtype)
        starts = torch.tensor([5.0, 0.0, 2.5], dtype=torch.float64)  # disjoint, not in order
        rec = Recording(t, counts=counts, x=torch.randn(3, 30, 1, dtype=torch.float64),
                        trials={"start_time": starts, "stop_time": starts + 0.3, "flag": torch.tensor([1, 0, 1]) > 0})
        save_nwb(rec, tmp_path / "counts.nwb", overwrite=True)  # the second dtype replaces the first
        back = load_nwb(tmp_path / "counts.nwb")
        assert back.rates is None and back.counts.dtype == dtype and torch.equal(back.counts, counts)
        assert torch.equal(back.x, rec.x) and torch.equal(back.t, t)
        assert torch.equal(back.trials["flag"], rec.trials["flag"])


def test_save_nwb_refuses_overlapping_trials(tmp_path):
    """QA: all-ones counts with trials [0, 1) and [0.5, 1.5) loaded back with 2s in the overlap."""
    t = torch.arange(10) * 0.1
    rec = Recording(t, counts=torch.ones(2, 10, 1), trials={"start_time": torch.tensor([0.0, 0.5]),
                                                            "stop_time": torch.tensor([1.0, 1.5])})
    with pytest.raises(ValueError, match="trials 0 and 1 overlap"):
        save_nwb(rec, tmp_path / "overlap.nwb")
    assert list(tmp_path.iterdir()) == []
    rec.trials = {"start_time": torch.tensor([0.0, 1.0]), "stop_time": torch.tensor([1.0, 2.0])}  # end to end: fine
    save_nwb(rec, tmp_path / "abutting.nwb")
    assert torch.equal(load_nwb(tmp_path / "abutting.nwb").counts, rec.counts)


def test_data_bad_input_names_argument_and_fix(tmp_path):
    t = torch.arange(10) * 0.1
    with pytest.raises(TypeError, match=r"trials\['label'\] must be numbers.*integers"):
        Recording(t, rates=torch.rand(2, 10, 3), trials={"label": ["easy", "hard"]})
    path = _session(tmp_path, "s.nwb", trials=[(0.0, 1.0)], stimulus_start=0.0, spikes=[[0.5]])
    for bad in (-0.1, 0.0, float("nan")):
        with pytest.raises(ValueError, match="bin_width must be a finite number of seconds > 0"):
            load_nwb(path, bin_width=bad)
    with pytest.raises(TypeError, match="bin_width must be a number"):
        load_nwb(path, bin_width="0.1")


def test_save_nwb_never_overwrites_unasked_and_paths_are_named(tmp_path):
    """QA: save_nwb replaced an existing file silently; a missing folder named the temporary file; load_nwb of a
    text file raised h5py's OSError 'file signature not found'."""
    rec = Recording(torch.arange(10) * 0.1, rates=torch.rand(2, 10, 3))
    mine = tmp_path / "mine.nwb"
    mine.write_text("precious user data")
    with pytest.raises(FileExistsError, match=r"mine\.nwb' exists; pass overwrite=True"):
        save_nwb(rec, mine)
    assert mine.read_text() == "precious user data"
    with pytest.raises(ValueError, match=r"mine\.nwb' is not an NWB file"):
        load_nwb(mine)
    save_nwb(rec, mine, overwrite=True)
    assert torch.equal(load_nwb(mine).rates, rec.rates) and [p.name for p in tmp_path.iterdir()] == ["mine.nwb"]
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*/nodir/x\.nwb': the folder '.*/nodir' does not"):
        save_nwb(rec, tmp_path / "nodir" / "x.nwb")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_nwb(rec, tmp_path)
    with pytest.raises(ValueError, match="is a folder, not an NWB file"):
        load_nwb(tmp_path)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        save_nwb(rec, tmp_path / "new.nwb", overwrite="yes")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.nwb"]


def test_save_nwb_checks_the_trials_span_their_data(tmp_path):
    """QA: trials of 0.1 s over 0.3 s of data were saved; read back with bin_width=0.01 they had 10 bins, not 30."""
    t = torch.arange(30) * 0.01
    starts = torch.tensor([0.0, 1.0])
    for stop, match in ((0.1, r"trial 0 is shorter than its data: .* = 0\.1 s, but the grid t spans 0\.3 s"),
                        (0.5, r"trial 0 \(the shortest\) is longer than its data: .* = 0\.5 s.*start_time \+ 0\.3")):
        rec = Recording(t, counts=torch.ones(2, 30, 1), trials={"start_time": starts, "stop_time": starts + stop})
        with pytest.raises(ValueError, match=match):
            save_nwb(rec, tmp_path / "bad.nwb")
    assert list(tmp_path.iterdir()) == []
    # float32 session times: stop - start is 0.1 s only to rounding (2.1 -> 2.0999999); re-binned: all 25 bins
    t = 0.5 + torch.arange(25, dtype=torch.float64) * 0.004
    starts = torch.tensor([10.0, 2.0, 100.0])
    counts = torch.poisson(torch.full((3, 25, 2), 3.0), generator=torch.Generator().manual_seed(0))
    save_nwb(Recording(t, counts=counts, trials={"start_time": starts, "stop_time": starts + 0.1}),
             tmp_path / "f32.nwb")
    assert torch.equal(load_nwb(tmp_path / "f32.nwb", bin_width=0.004).counts, counts)
    # trials of unequal length, binned as the shortest holds, and a whole session: saved as they were loaded
    path = _session(tmp_path, "uneven.nwb", trials=[(1.0, 1.55), (3.0, 3.65)], stimulus_start=0.0,
                    spikes=[[1.05, 1.52, 3.3, 3.62]])
    whole = _session(tmp_path, "whole.nwb", trials=[], stimulus_start=0.0, spikes=[[0.05, 0.93]])
    for name, source in (("uneven", path), ("whole", whole)):
        rec = load_nwb(source, bin_width=0.1)
        save_nwb(rec, tmp_path / f"{name}_copy.nwb")
        back = load_nwb(tmp_path / f"{name}_copy.nwb", bin_width=0.1)
        assert back.t.shape == rec.t.shape and torch.equal(back.counts, rec.counts), name


def test_recording_needs_a_trial_and_a_neuron():
    """QA: Recording accepted rates of shape (0, 10, 3) and (2, 10, 0)."""
    t = torch.arange(10) * 0.1
    with pytest.raises(ValueError, match=r"rates has shape \(0, 10, 3\), with no trials"):
        Recording(t, rates=torch.zeros(0, 10, 3))
    with pytest.raises(ValueError, match=r"counts has shape \(2, 10, 0\), with no neurons"):
        Recording(t, counts=torch.zeros(2, 10, 0))


def test_synthetic_recording_keeps_the_input_the_network_received():
    """QA: with a constant x (B, n_in) or a callable x(t) the trials differed but rec.x was None (and a constant
    x's trials shared one initial state); n_trials=2 with 3 rows of state0 gave 3 trials."""
    model = RateRNN(5, 2, 0, tau=0.05)
    t = torch.arange(20) * 0.01
    x = torch.ones(3, 2)
    rec = synthetic_recording(model, t, x, spikes=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rec.x, x[:, None].expand(3, 20, 2))
    assert rec.rates[:, 0].std(0).min() > 0.05  # each trial has its own initial state
    replay = simulate(model, t, rec.x, rec.rates[:, 0])["r"]
    assert torch.allclose(replay, rec.rates, atol=1e-6)

    def wave(time):
        return torch.stack([torch.sin(10 * time) * torch.ones(4), time * torch.arange(4.0)], -1)

    rec = synthetic_recording(model, t, wave, spikes=False, init_std=0.0)
    assert rec.n_trials == 4 and torch.equal(rec.x, torch.stack([wave(s) for s in t], 1))
    rec = synthetic_recording(model, t, n_trials=3, spikes=False)
    assert torch.equal(rec.x, torch.zeros(3, 20, 2))  # no x: the network got zeros
    assert synthetic_recording(RateRNN(5, 0, 0), t, n_trials=2, spikes=False).x is None
    state0 = torch.randn(3, 5)
    with pytest.raises(ValueError, match="state0 has 3 trials but n_trials=2"):
        synthetic_recording(model, t, n_trials=2, state0=state0)
    with pytest.raises(ValueError, match="x has 2 trials but state0 has 3"):
        synthetic_recording(model, t, torch.ones(2, 2), state0=state0)
    rec = synthetic_recording(model, t, n_trials=3, state0=state0[:1], spikes=False)
    assert rec.n_trials == 3 and torch.allclose(rec.rates[:, 0], state0[:1].expand(3, -1))
