"""Tasks: trial structure, targets, evaluation and validation."""

import math
import warnings
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neurodyn.tasks import (
    ContextDependentDecisionMaking,
    DelayedMatchToCategory,
    DelayedMatchToSample,
    ParametricWorkingMemory,
    PerceptualDecisionMaking,
    PeriodicTarget,
    TaskBatch,
    from_neurogym,
)

DECISION_TASKS = [PerceptualDecisionMaking, ContextDependentDecisionMaking, ParametricWorkingMemory,
                  DelayedMatchToSample, DelayedMatchToCategory]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def in_epoch(batch, name):
    k = torch.arange(batch.t.shape[0])
    window = batch.info["epochs"][name]
    return (k >= window[:, :1]) & (k < window[:, 1:])


@pytest.mark.parametrize("cls", DECISION_TASKS)
def test_decision_task_structure(cls):
    task = cls(dt=0.02)
    batch = task.sample(64, gen())
    B, T = 64, batch.t.shape[0]
    assert isinstance(batch, TaskBatch)
    assert batch.x.shape == (B, T, task.n_in) and batch.y.shape == (B, T, task.n_out) and batch.mask.shape == (B, T)
    assert torch.allclose(batch.t, torch.arange(T) * 0.02)
    # epochs tile each trial in order and the mask covers exactly the trial
    epochs = list(batch.info["epochs"].values())
    assert torch.equal(epochs[0][:, 0], torch.zeros(B, dtype=torch.long))
    for a, b in zip(epochs[:-1], epochs[1:], strict=True):
        assert torch.equal(a[:, 1], b[:, 0])
    assert torch.equal(batch.mask.sum(1).long(), epochs[-1][:, 1])
    decision = in_epoch(batch, "decision")
    # fixation cue and fixation target: on inside the trial until the decision
    assert torch.equal(batch.x[..., 0], (batch.mask.bool() & ~decision).float())
    assert torch.equal(batch.y[..., 0], batch.x[..., 0])
    # one-hot choice target during the decision only
    choice = batch.info["choice"]
    assert torch.equal(batch.y[torch.arange(B), :, 1 + choice], decision.float())
    assert torch.equal(batch.y.sum(-1), batch.mask)
    # a perfect output scores 1, the opposite choice 0
    assert task.evaluate(batch.y, batch) == 1.0
    assert task.evaluate(batch.y[..., [0, 2, 1]], batch) == 0.0
    # both choices occur
    assert 0.3 < choice.float().mean() < 0.7


@pytest.mark.parametrize("cls", DECISION_TASKS + [PeriodicTarget])
def test_generator_reproducible(cls):
    task = cls()
    a, b, c = task.sample(8, gen(1)), task.sample(8, gen(1)), task.sample(8, gen(2))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    if cls is not PeriodicTarget:
        assert not torch.equal(a.x, c.x)


def test_perceptual_evidence_and_noise():
    clean = PerceptualDecisionMaking(dt=0.01, sigma=0.0).sample(32, gen())
    stim = in_epoch(clean, "stimulus")
    c = clean.info["coherence"] * (1 - 2 * clean.info["choice"])
    assert torch.allclose(clean.x[..., 1], ((1 + c[:, None]) / 2) * stim)
    assert torch.allclose(clean.x[..., 2], ((1 - c[:, None]) / 2) * stim)
    assert torch.all(clean.x[..., 1:][~stim] == 0)
    # white noise of intensity sigma: per-sample std sigma / sqrt(dt)
    for dt in (0.01, 0.04):
        noisy = PerceptualDecisionMaking(dt=dt, sigma=0.05).sample(400, gen(3))
        c = noisy.info["coherence"] * (1 - 2 * noisy.info["choice"])
        residual = (noisy.x[..., 1] - (1 + c[:, None]) / 2)[in_epoch(noisy, "stimulus")]
        assert residual.std().item() == pytest.approx(0.05 / math.sqrt(dt), rel=0.03)


def test_parametric_working_memory_variables():
    task = ParametricWorkingMemory(sigma=0.0)
    batch = task.sample(200, gen())
    f1, f2 = batch.info["f1"], batch.info["f2"]
    assert torch.allclose((f1 - f2).abs(), torch.full_like(f1, 8.0))
    assert torch.equal(batch.info["choice"], (f1 < f2).long())
    # monotonic, opposite tuning of the two channels, f1 shown in stimulus1 only
    s1 = in_epoch(batch, "stimulus1")
    first = batch.x[:, :, 1][s1].reshape(200, -1)[:, 0]
    order = torch.argsort(f1)
    assert torch.all(first[order][1:] >= first[order][:-1])
    assert torch.allclose(batch.x[..., 1] + batch.x[..., 2], (s1 | in_epoch(batch, "stimulus2")).float())


def test_context_dependent_choice_follows_context():
    batch = ContextDependentDecisionMaking(sigma=0.0).sample(300, gen())
    info = batch.info
    relevant = torch.where(info["context"] == 0, info["motion"], info["colour"])
    assert torch.equal(info["choice"], (relevant < 0).long())
    cue = batch.x[..., 5:7]
    on = batch.mask.bool() & ~in_epoch(batch, "decision")
    assert torch.equal(cue.argmax(-1)[on], info["context"][:, None].expand_as(on)[on])


def test_match_to_sample_variable_delay_and_rule():
    task = DelayedMatchToSample(dt=0.02, sigma=0.0)
    batch = task.sample(256, gen())
    match = torch.isclose(batch.info["sample"], batch.info["test"])
    assert torch.equal(batch.info["choice"], (~match).long())
    delay = batch.info["epochs"]["delay"]
    steps = delay[:, 1] - delay[:, 0]
    assert steps.min() >= 15 and steps.max() <= 50 and len(steps.unique()) > 10
    # padded trials: zero input and mask after their end
    end = batch.info["epochs"]["decision"][:, 1]
    after = torch.arange(batch.t.shape[0]) >= end[:, None]
    assert after.any() and torch.all(batch.x[after] == 0) and torch.all(batch.mask[after] == 0)
    # von Mises tuning peaks at the sample direction during the sample
    sample = in_epoch(batch, "sample")
    peak = batch.x[..., 1:].argmax(-1)[sample].reshape(256, -1)[:, 0]
    expected = torch.round(batch.info["sample"] / (2 * math.pi / task.n_tuned)).long() % task.n_tuned
    assert torch.equal(peak, expected)


def test_match_to_category_rule():
    task = DelayedMatchToCategory(sigma=0.0)
    degrees = torch.tensor([0.0, 30.0, 60.0, 200.0, 220.0, 240.0, 300.0])
    assert task.category(torch.deg2rad(degrees)).tolist() == [1, 1, 0, 0, 0, 1, 1]
    batch = task.sample(256, gen())
    same = task.category(batch.info["sample"]) == task.category(batch.info["test"])
    assert torch.equal(batch.info["choice"], (~same).long())
    with pytest.raises(ValueError, match="boundary"):
        DelayedMatchToCategory(boundary=math.pi / 6)


def test_periodic_target():
    task = PeriodicTarget(dt=0.001, duration=2.0)
    batch = task.sample(2)
    t = batch.t.double()
    expected = torch.sin(2 * math.pi * t) + 0.5 * torch.sin(4 * math.pi * t)
    assert batch.x.shape == (2, 2000, 0)
    assert torch.allclose(batch.y[0, :, 0].double(), expected, atol=1e-6)
    assert task.evaluate(batch.y, batch) == pytest.approx(1.0)
    assert task.evaluate(torch.zeros_like(batch.y), batch) == pytest.approx(0.0, abs=1e-6)
    shifted = PeriodicTarget(random_phase=True).sample(4, gen())
    assert not torch.equal(shifted.y[0], shifted.y[1])
    with pytest.raises(ValueError, match="dt"):
        PeriodicTarget(dt=0.3)


def test_bad_input():
    with pytest.raises(ValueError, match="shortest epoch 'decision'"):
        PerceptualDecisionMaking(dt=0.15, fixation=0.3, decision=0.1)
    with pytest.raises(ValueError, match="dt"):
        ParametricWorkingMemory(dt=-0.01)
    with pytest.raises(ValueError, match="batch_size"):
        PerceptualDecisionMaking().sample(0)
    with pytest.raises(ValueError, match="coherences"):
        PerceptualDecisionMaking(coherences=(0.5, 1.5))
    with pytest.raises(ValueError, match="delay"):
        DelayedMatchToSample(delay=(1.0, 0.5))
    with pytest.raises(ValueError, match="outputs"):
        task = PerceptualDecisionMaking()
        batch = task.sample(4)
        task.evaluate(batch.y[..., :2], batch)


def test_batch_to_dtype():
    batch = ParametricWorkingMemory().sample(4).to(dtype=torch.float64)
    assert batch.x.dtype == batch.y.dtype == batch.mask.dtype == torch.float64
    assert batch.info["choice"].dtype == torch.long


class FakeTrialEnv:
    """The parts of a neurogym TrialEnv the adapter uses: trials of random length, 3 actions."""

    dt = 100
    observation_space = SimpleNamespace(shape=(2,))
    action_space = SimpleNamespace(n=3)

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def new_trial(self):
        steps = int(self.rng.integers(3, 7))
        self.ob = self.rng.normal(size=(steps, 2))
        self.gt = np.zeros(steps, dtype=int)
        self.gt[-1] = int(self.rng.integers(1, 3))


def test_neurogym_adapter_with_a_duck_typed_env():
    task = from_neurogym(FakeTrialEnv())
    assert (task.n_in, task.n_out, task.dt) == (2, 3, 0.1)
    batch = task.sample(6, gen())
    lengths = batch.info["length"]
    assert torch.equal(batch.mask.sum(1).long(), lengths)
    assert torch.equal(batch.y.argmax(-1)[torch.arange(6), lengths - 1], batch.info["choice"])
    assert torch.all(batch.x[batch.mask == 0] == 0)
    assert task.evaluate(batch.y, batch) == 1.0
    assert torch.equal(task.sample(6, gen()).x, batch.x)
    with pytest.raises(TypeError, match="neurogym"):
        from_neurogym(object())


def test_from_neurogym():
    ngym = pytest.importorskip("neurogym")
    env = ngym.make("PerceptualDecisionMaking-v0", dt=100)
    task = from_neurogym(env)
    batch = task.sample(5, gen())
    assert batch.x.shape[0] == 5 and batch.x.shape[2] == task.n_in
    assert batch.y.shape[2] == task.n_out == env.action_space.n
    assert task.evaluate(batch.y, batch) == 1.0


@pytest.mark.parametrize("seconds", ["0.73", "0.75", "0.77", "0.71", "0.7"])
def test_epoch_steps_round_half_up_and_warn_off_the_grid(seconds):
    """QA: epochs were rounded half-to-even without warning (0.75 s at dt = 0.02 gave 0.76 s, 0.73 s gave 0.72 s).
    An epoch lasts floor(duration / dt + 1/2) steps, computed here in exact rational arithmetic."""
    exact = Fraction(seconds) / Fraction("0.02")
    expected = math.floor(exact + Fraction(1, 2))
    if exact.denominator == 1:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            task = PerceptualDecisionMaking(dt=0.02, stimulus=float(seconds))
    else:
        with pytest.warns(UserWarning, match=f"'stimulus' lasts {seconds} s.*{expected} steps"):
            task = PerceptualDecisionMaking(dt=0.02, stimulus=float(seconds))
    window = task.sample(3, gen()).info["epochs"]["stimulus"]
    assert (window[:, 1] - window[:, 0]).tolist() == [expected] * 3


def test_default_tasks_fit_their_default_grid():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in (*DECISION_TASKS, PeriodicTarget):
            cls()
    window = PerceptualDecisionMaking().sample(2, gen()).info["epochs"]["stimulus"]
    assert (window[:, 1] - window[:, 0]).tolist() == [40, 40]  # 0.8 s of 0.02 s


def test_duration_of_the_wrong_type_names_the_epoch():
    for bad in ("0.5", (0.1, 0.2, 0.3), None, True):
        with pytest.raises(TypeError, match="duration of epoch 'stimulus' must be a number of seconds"):
            PerceptualDecisionMaking(stimulus=bad)


@pytest.mark.parametrize("name", ["amplitudes", "frequencies", "phases"])
def test_periodic_target_needs_finite_sines(name):
    """QA: amplitudes=(nan,) gave NaN targets, which fit then trained on."""
    values = {"amplitudes": (1.0,), "frequencies": (2.0,), "phases": (0.0,)}
    values[name] = (float("nan"),)
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        PeriodicTarget(**values)
