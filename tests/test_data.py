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
    assert torch.allclose(rec.rates, traj.outputs.detach().expand(3000, -1, -1))
    assert torch.equal(rec.x, x.expand(3000, -1, -1))
    # counts ~ Poisson(softplus(rate) dt): mean and variance both equal the expected count
    mu = torch.nn.functional.softplus(rec.rates[0]) * 0.01
    mean, var = rec.counts.mean(0), rec.counts.var(0)
    se = (mu / 3000).sqrt()
    assert torch.all((mean - mu).abs() < 5 * se + 1e-3)
    assert torch.allclose(var, mu, rtol=0.25, atol=0.01)
    again = synthetic_recording(model, t, x, n_trials=3000, init_std=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.counts, rec.counts)


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
