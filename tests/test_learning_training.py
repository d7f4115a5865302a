"""Real training runs (slow): cognitive tasks and fitting a recorded network."""

import pytest
import torch

from neurodyn import RateRNN, simulate
from neurodyn.data import synthetic_recording
from neurodyn.learning import StopWhen, fit
from neurodyn.models import EIRateRNN
from neurodyn.tasks import ParametricWorkingMemory, PerceptualDecisionMaking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def held_out_accuracy(model, task, trials=1000, seed=123):
    batch = task.sample(trials, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        outputs = simulate(model, batch.t, batch.x).outputs
    return task.evaluate(outputs, batch)


def test_rate_rnn_learns_parametric_working_memory():
    torch.manual_seed(0)
    task = ParametricWorkingMemory(dt=0.02)
    model = RateRNN(64, task.n_in, task.n_out, tau=0.1, g=0.5)
    history = fit(model, task, steps=600, lr=1e-2, batch_size=32, eval_every=25, progress=False,
                  callbacks=[StopWhen("accuracy", at_least=0.97)])
    assert held_out_accuracy(model, task) >= 0.9, history.metrics["accuracy"]


def test_ei_rate_rnn_learns_perceptual_decision_making():
    """Dale's law network on noisy random dots; the ideal observer scores about 93% with the default coherences."""
    torch.manual_seed(0)
    task = PerceptualDecisionMaking(dt=0.02)
    model = EIRateRNN(48, 16, task.n_in, task.n_out, tau=0.1, g=1.0)
    history = fit(model, task, steps=500, lr=1e-2, batch_size=32, eval_every=25, progress=False,
                  callbacks=[StopWhen("accuracy", at_least=0.9)])
    assert held_out_accuracy(model, task) >= 0.85, history.metrics["accuracy"]
    assert (model.W[:, :48] >= 0).all() and (model.W[:, 48:] <= 0).all()  # Dale's law held during training


def test_student_fits_teacher_recording():
    """A student RateRNN fit to a teacher's rates predicts held-out trials with R² > 0.9 per neuron on average."""
    torch.manual_seed(0)
    teacher = RateRNN(16, 2, 0, tau=0.05, g=1.5)
    g = torch.Generator().manual_seed(1)
    t = torch.arange(50) * 0.02
    x = torch.randn(40, 10, 2, generator=g).repeat_interleave(5, 1)  # piecewise-constant stimuli
    recording = synthetic_recording(teacher, t, x, spikes=False, generator=g)  # rates = the teacher's units
    student = RateRNN(16, 2, 0, tau=0.05, g=1.5)
    history = fit(student, recording, steps=400, lr=1e-2, holdout=0.25, eval_every=50, progress=False,
                  callbacks=[StopWhen("r2", at_least=0.95)])
    assert len(history.held_out) == 10
    assert history.metrics["r2"][0] < 0.8
    assert history.r2.mean() > 0.9 and history.r2.min() > 0.7, history.r2
