"""fit(): losses, pass-through to simulate, checkpoints, divergence, validation."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.nn import functional as F

from neurodyn import DivergenceError, RateRNN, l2_rates, simulate
from neurodyn.data import Recording, synthetic_recording
from neurodyn.learning import (
    History,
    StopWhen,
    batch_loss,
    cross_entropy_loss,
    fit,
    load_checkpoint,
    mse_loss,
    poisson_loss,
)
from neurodyn.tasks import ParametricWorkingMemory, PerceptualDecisionMaking

pytestmark = pytest.mark.usefixtures("one_thread")


def small_task():
    return ParametricWorkingMemory(dt=0.05, fixation=0.05, stimulus=0.1, delay=0.1, decision=0.1)


def small_model(seed=0):
    torch.manual_seed(seed)
    return RateRNN(16, 3, 3, tau=0.1, g=0.8)


def test_mse_and_cross_entropy_match_references():
    y, target = torch.randn(4, 5, 3), torch.randn(4, 5, 3)
    mask = torch.rand(4, 5)
    expected = (((y - target) ** 2).mean(-1) * mask).sum() / mask.sum()
    assert torch.allclose(mse_loss(y, target, mask), expected)
    assert torch.allclose(mse_loss(y, target), F.mse_loss(y, target))
    labels = torch.randint(0, 3, (4, 5))
    onehot = F.one_hot(labels, 3).float()
    assert torch.allclose(cross_entropy_loss(y, onehot), F.cross_entropy(y.reshape(-1, 3), labels.reshape(-1)))


def test_poisson_loss_matches_scipy_and_passes_gradcheck():
    y = torch.randn(2, 6, 3, dtype=torch.float64)
    counts = torch.poisson(torch.full((2, 6, 3), 2.0, dtype=torch.float64))
    mu = (F.softplus(y) * 0.05).numpy()
    expected = -stats.poisson.logpmf(counts.numpy(), mu).mean()
    assert poisson_loss(y, counts, 0.05).item() == pytest.approx(expected, rel=1e-12)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: poisson_loss(v, counts, 0.05), (y,))
    with pytest.raises(ValueError, match="non-negative"):
        poisson_loss(y, -counts, 0.05)
    with pytest.raises(ValueError, match="integer"):
        poisson_loss(y, counts + 0.5, 0.05)
    with pytest.raises(ValueError, match="NaN"):
        mse_loss(y, torch.full_like(y, float("nan")))


def test_fit_passes_solver_options_to_simulate():
    """The first recorded loss is the loss of the first task batch simulated with fit's solver options."""
    task = small_task()
    for solver, gradient in (("euler", "backprop"), ("rk4", "checkpoint")):
        model = small_model()
        first = fit(model, task, steps=1, lr=1e-6, solver=solver, dt=0.025, gradient=gradient, progress=False,
                    eval_batch_size=4)
        model = small_model()
        batch = task.sample(64, torch.Generator().manual_seed(0))
        value, _ = batch_loss(model, batch.t, batch.x, batch.y, batch.mask, solver=solver, dt=0.025)
        assert first.loss[0] == pytest.approx(value.item(), rel=1e-6)
    assert isinstance(first, History) and first.steps == 1 and len(first.wall_time) == 1


def test_regularizer_adds_to_loss():
    task = small_task()
    batch = task.sample(8)
    model = small_model()
    base, traj = batch_loss(model, batch.t, batch.x, batch.y, batch.mask)
    rates = [lambda m, tr: l2_rates(tr["r"], 0.5)]
    total, _ = batch_loss(model, batch.t, batch.x, batch.y, batch.mask, regularizers=rates)
    assert torch.allclose(total, base + 0.5 * traj["r"].pow(2).mean())


def test_fit_reduces_loss_and_records_metrics():
    history = fit(small_model(), small_task(), steps=40, lr=1e-2, batch_size=32, eval_every=10, progress=False,
                  eval_batch_size=64)
    assert history.eval_steps == [10, 20, 30, 40]
    assert set(history.metrics) == {"accuracy", "val_loss"}
    assert history.metrics["val_loss"][-1] < 0.6 * history.metrics["val_loss"][0]


def test_checkpoint_resume_continues_identical_losses(tmp_path):
    task = small_task()
    options = dict(steps=6, lr=1e-2, batch_size=16, noise_std=0.05, progress=False, eval_every=2,
                   eval_batch_size=16)
    straight = fit(small_model(), task, **options)
    path = tmp_path / "run.pt"
    first = fit(small_model(), task, **{**options, "steps": 3}, checkpoint=path, checkpoint_every=3)
    assert first.loss == straight.loss[:3]
    assert load_checkpoint(path)["history"]["loss"] == first.loss
    # a fresh model resumes from the file (its own random weights are replaced)
    resumed = fit(small_model(seed=5), task, **options, checkpoint=path)
    assert resumed.loss == straight.loss
    assert resumed.metrics["val_loss"][-1] == straight.metrics["val_loss"][-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = []

    def poison(model, traj):
        calls.append(1)
        return traj["r"].sum() * (float("nan") if len(calls) == 5 else 0.0)

    path = tmp_path / "run.pt"
    model = small_model()
    with pytest.raises(DivergenceError, match="step 4.*last good checkpoint"):
        fit(model, small_task(), steps=10, lr=1e-2, batch_size=8, regularizers=[poison], checkpoint=path,
            eval_batch_size=8, checkpoint_every=2, progress=False)
    saved = load_checkpoint(path)
    assert len(saved["history"]["loss"]) == 4 and all(math.isfinite(v) for v in saved["history"]["loss"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stop_when_callback():
    history = fit(small_model(), small_task(), steps=50, lr=1e-2, eval_every=5, progress=False, eval_batch_size=8,
                  callbacks=[StopWhen("val_loss", at_most=1e9)])
    assert history.steps == 5


def test_fit_recording_with_learned_initial_state_and_poisson():
    model = RateRNN(6, 2, 3, tau=0.05)
    with torch.no_grad():
        model.W_out.mul_(20.0)
        model.b_out.fill_(10.0)
    t = torch.arange(20) * 0.01
    rec = synthetic_recording(model, t, torch.randn(10, 20, 2), generator=torch.Generator().manual_seed(0))
    student = RateRNN(6, 2, 3, tau=0.05)
    history = fit(student, rec, loss="poisson", steps=30, lr=2e-2, eval_every=10, progress=False, holdout=0.2)
    assert len(history.held_out) == 2 and history.r2.shape == (3,)
    assert history.initial_state.shape == (1, 6)
    assert history.metrics["val_loss"][-1] < history.metrics["val_loss"][0]


def test_fit_bad_input():
    task, model = small_task(), small_model()
    with pytest.raises(ValueError, match="steps"):
        fit(model, task, steps=0)
    with pytest.raises(ValueError, match="loss"):
        fit(model, task, steps=1, loss="l1")
    with pytest.raises(ValueError, match="n_in"):
        fit(RateRNN(8, 2, 3), task, steps=1)
    with pytest.raises(TypeError):
        fit(model, [1, 2, 3], steps=1)
    with pytest.raises(ValueError, match="n_out"):
        fit(RateRNN(8, 3, 2), PerceptualDecisionMaking(), steps=1)
    with pytest.raises(ValueError, match="spike counts of a Recording"):  # was a TypeError deep in the loss
        fit(RateRNN(8, 3, 3), PerceptualDecisionMaking(), loss="poisson", steps=1)
    frozen = RateRNN(8, 3, 3).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):  # was torch's "empty parameter list"
        fit(frozen, PerceptualDecisionMaking(), steps=1)
    rates = Recording(torch.arange(5) * 0.1, rates=torch.rand(4, 5, 8))
    with pytest.raises(ValueError, match="poisson"):
        fit(RateRNN(8), rates, loss="poisson", steps=1)
    with pytest.raises(ValueError, match="cross_entropy"):
        fit(RateRNN(8), rates, loss="cross_entropy", steps=1)
    with pytest.raises(ValueError, match="N=8"):
        fit(RateRNN(5), rates, steps=1)


def _teacher_recording(n_out=3, trials=20):
    torch.manual_seed(0)
    teacher = RateRNN(6, 2, n_out, tau=0.05)
    with torch.no_grad():
        teacher.W_out.mul_(20.0)
        teacher.b_out.fill_(0.0)
    t = torch.arange(40) * 0.01
    rec = synthetic_recording(teacher, t, torch.randn(trials, 40, 2), init_std=0.0,
                              generator=torch.Generator().manual_seed(0))
    return teacher, rec


def test_poisson_r2_of_the_teacher_on_its_own_recording_is_one():
    """QA: the teacher refit to its own spikes scored R² = 0.149 with loss="poisson" (its rate softplus(y) was
    compared with the raw readout). R² is 1 - SSE/SST against the rates the counts were drawn from."""
    teacher, rec = _teacher_recording()
    history = fit(teacher, rec, loss="poisson", steps=1, lr=1e-12, progress=False, holdout=0.3)
    with torch.no_grad():
        predicted = F.softplus(simulate(teacher, rec.t, rec.x[history.held_out]).outputs).double().numpy()
    truth = rec.rates[history.held_out].double().numpy()
    reference = [1 - ((predicted[..., i] - truth[..., i]) ** 2).sum() / ((truth[..., i] - truth[..., i].mean()) ** 2)
                 .sum() for i in range(3)]
    assert np.allclose(reference, 1.0, atol=1e-6)
    assert np.allclose(history.r2.numpy(), reference, atol=1e-5)


def test_poisson_fit_of_units_starts_from_the_inverse_link_of_the_rates():
    """With n_out = 0 and loss="poisson", trials start from r with softplus(r) = recorded rate at t[0]."""
    teacher, rec = _teacher_recording(n_out=0)
    history = fit(teacher, rec, loss="poisson", steps=1, lr=1e-12, progress=False, holdout=0.3)
    assert np.allclose(history.r2.numpy(), 1.0, atol=1e-5)
    rec.rates[0, 0, 0] = 0.0
    with pytest.raises(ValueError, match="rate at t\\[0\\].*> 0.*readout"):
        fit(RateRNN(6, 2, 0), rec, loss="poisson", steps=1, progress=False)


def test_resume_applies_the_new_learning_rate_with_a_warning(tmp_path):
    """QA: resuming with lr=0.5 silently reproduced the lr=1e-3 run. The new lr is used from the resumed step on,
    exactly as an optimizer whose lr is changed by hand at that step."""
    rec = Recording(torch.arange(20) * 0.01, rates=torch.rand(8, 20, 4, generator=torch.Generator().manual_seed(0)))
    model = lambda: RateRNN(6, 0, 4) if torch.manual_seed(1) else None
    path = tmp_path / "run.pt"
    fit(model(), rec, steps=2, lr=1e-3, progress=False, checkpoint=path)
    with pytest.warns(UserWarning, match=r"lr=\[0.5\] instead of the checkpoint's \[0.001\]"):
        resumed = fit(model(), rec, steps=4, lr=0.5, progress=False, checkpoint=path)
    optimizers = []

    def adam(params):
        optimizers.append(torch.optim.Adam(params, lr=1e-3))
        return optimizers[0]

    def switch(step, history, m):
        if step == 2:
            optimizers[0].param_groups[0]["lr"] = 0.5

    by_hand = fit(model(), rec, steps=4, optimizer=adam, progress=False, callbacks=switch)
    assert resumed.loss == by_hand.loss
    assert resumed.loss != fit(model(), rec, steps=4, lr=1e-3, progress=False).loss


def test_resume_with_another_model_says_so(tmp_path):
    rec = Recording(torch.arange(20) * 0.01, rates=torch.rand(8, 20, 4), x=torch.rand(8, 20, 2))
    path = tmp_path / "run.pt"
    fit(RateRNN(6, 2, 4), rec, steps=1, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="written for another model.*start afresh"):
        fit(RateRNN(7, 2, 4), rec, steps=2, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="not a file"):
        fit(RateRNN(4, 2, 4), rec, steps=1, progress=False, checkpoint=tmp_path)


def test_divergence_in_evaluation_names_the_step_and_checkpoint(tmp_path):
    """QA: a DivergenceError raised while evaluating lacked the step and checkpoint information."""
    rec = Recording(torch.arange(20) * 0.01, rates=torch.rand(8, 20, 4))
    path = tmp_path / "run.pt"

    class Ruin(torch.optim.SGD):
        """The third optimizer step blows the weights up: step 3's training loss is finite, its evaluation not."""

        def step(self, closure=None):
            super().step(closure)
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                with torch.no_grad():
                    for weight in self.param_groups[0]["params"]:
                        if weight.shape == (4, 4):
                            weight.fill_(1e30)

    model = RateRNN(4, activation="relu")
    with pytest.raises(DivergenceError, match="evaluation.*diverged.*at step 3.*last good checkpoint"):
        fit(model, rec, steps=6, eval_every=3, checkpoint_every=1, progress=False, checkpoint=path,
            optimizer=lambda p: Ruin(p, lr=0.0))
    assert len(load_checkpoint(path)["history"]["loss"]) == 2


def test_fit_accepts_one_callable_and_rejects_non_callables():
    """QA: a single callable gave "'function' object is not iterable"; [1.0] gave "'float' object is not
    callable"; lr=inf was accepted and failed later with NaN."""
    steps = []
    history = fit(small_model(), small_task(), steps=2, progress=False, eval_batch_size=4, batch_size=4,
                  regularizers=lambda m, tr: l2_rates(tr["r"], 0.0), callbacks=lambda s, h, m: steps.append(s))
    assert steps == [1, 2] and history.steps == 2
    for name in ("regularizers", "callbacks"):
        with pytest.raises(TypeError, match=rf"{name}\[0\] must be a callable"):
            fit(small_model(), small_task(), steps=1, progress=False, **{name: [1.0]})
        with pytest.raises(TypeError, match=f"{name} must be a callable"):
            fit(small_model(), small_task(), steps=1, progress=False, **{name: 3})
    for lr in (float("inf"), float("nan"), 0.0, True):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            fit(small_model(), small_task(), steps=1, lr=lr)


def test_r2_of_a_neuron_whose_held_out_rates_do_not_vary_is_nan_and_left_out_of_the_mean():
    t = torch.arange(11) * 0.1
    rates = torch.rand(10, 11, 3, generator=torch.Generator().manual_seed(0))
    rates[..., 1] = 0.5  # a constant neuron: R^2 = 1 - residual / 0 is undefined (it was -inf)
    with pytest.warns(UserWarning, match=r"undefined \(NaN\) for neurons \[1\]"):
        history = fit(RateRNN(3, tau=0.1), Recording(t, rates=rates), steps=1, progress=False)
    assert torch.isnan(history.r2[1]) and torch.isfinite(history.r2[[0, 2]]).all()
    assert history.metrics["r2"][-1] == pytest.approx(float(history.r2[[0, 2]].mean()))


def test_loss_masks_of_every_accepted_shape_and_bad_ones_named():
    """QA: a (1, T, 1) mask with B=1 broadcast mse to (1, T, T) (18.6 instead of 3.34), a (B, T, n) mask raised
    torch's RuntimeError, a negative mask gave -2.8e13 and a NaN mask NaN."""
    g = torch.Generator().manual_seed(0)
    y, target = torch.randn(3, 7, 4, dtype=torch.float64, generator=g), torch.randn(3, 7, 4, dtype=torch.float64,
                                                                                     generator=g)
    first = torch.zeros(1, 7, 1, dtype=torch.float64)
    first[0, 0, 0] = 1.0
    assert mse_loss(y[:1], target[:1], first).item() == pytest.approx(((y[0, 0] - target[0, 0]) ** 2).mean().item())
    steps = torch.rand(3, 7, dtype=torch.float64, generator=g)
    per_step = mse_loss(y, target, steps)
    assert torch.allclose(per_step, (((y - target) ** 2).mean(-1) * steps).sum() / steps.sum())
    assert torch.allclose(mse_loss(y, target, steps[..., None]), per_step)
    full = torch.rand(3, 7, 4, dtype=torch.float64, generator=g)  # per output: weighted mean of every element
    assert torch.allclose(mse_loss(y, target, full), (((y - target) ** 2) * full).sum() / full.sum())
    counts = torch.poisson(torch.full((3, 7, 4), 2.0, dtype=torch.float64), generator=g)
    nll = -stats.poisson.logpmf(counts.numpy(), (F.softplus(y) * 0.05).numpy())
    assert poisson_loss(y, counts, 0.05, full).item() == pytest.approx((nll * full.numpy()).sum() / full.sum().item())
    onehot = F.one_hot(torch.randint(0, 4, (3, 7), generator=g), 4).double()
    assert torch.allclose(cross_entropy_loss(y, onehot, steps[..., None]), cross_entropy_loss(y, onehot, steps))
    for loss, shape in ((mse_loss, (7,)), (mse_loss, (3, 7, 2)), (cross_entropy_loss, (3, 7, 4))):
        with pytest.raises(ValueError, match=r"mask must have shape \(B, T\), \(B, T, 1\)"):
            loss(y, onehot, torch.ones(shape, dtype=torch.float64))
    for bad in (-steps, steps * float("nan")):
        with pytest.raises(ValueError, match="mask must hold finite weights >= 0"):
            mse_loss(y, target, bad)


def test_poisson_loss_checks_bin_width_and_keeps_its_gradient_far_below_zero():
    """QA: bin_width 0 or -0.01 gave a value, NaN gave NaN, None a raw TypeError; float32 outputs below -88 had
    gradient 0 (loss stuck at 87.34): log(mu) was clamped at the smallest normal float once softplus underflowed.
    The NLL's true gradient there is d/dy (mu - k log mu) -> -k."""
    y, counts = torch.zeros(1, 2, 1), torch.ones(1, 2, 1)
    for bad in (0.0, -0.01, float("nan")):
        with pytest.raises(ValueError, match="bin_width must be a finite number of seconds > 0"):
            poisson_loss(y, counts, bad)
    for bad in (None, "0.1"):
        with pytest.raises(TypeError, match="bin_width must be"):
            poisson_loss(y, counts, bad)
    for dtype in (torch.float32, torch.float64):
        y = torch.tensor([-30.0, -90.0, -100.0, -300.0], dtype=dtype).reshape(1, 4, 1).requires_grad_(True)
        loss = poisson_loss(y, torch.ones(1, 4, 1), 0.01)
        loss.backward()
        # mu = softplus(y) 0.01 ~ 0, so -log p(1) = -log(mu) = -y - log(0.01)
        expected = (-y.detach().double() - math.log(0.01)).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
        assert torch.allclose(y.grad, torch.full_like(y, -0.25))  # -1 per bin, averaged over 4 bins
    y = torch.tensor([-300.0, -40.0, -20.5, -20.0, -19.5, -3.0, 2.0], dtype=torch.float64).reshape(1, 7, 1)
    counts = torch.tensor([1.0, 0.0, 2.0, 1.0, 3.0, 0.0, 5.0], dtype=torch.float64).reshape(1, 7, 1)
    assert torch.autograd.gradcheck(lambda v: poisson_loss(v, counts, 0.05), (y.requires_grad_(True),))
    mu = (F.softplus(y.detach()) * 0.05).numpy()
    reference = -stats.poisson.logpmf(counts.numpy(), mu)[:, 1:].mean()  # scipy's log(mu) underflows at -300
    assert poisson_loss(y[:, 1:], counts[:, 1:], 0.05).item() == pytest.approx(reference, rel=1e-12)
