"""fit(): what a resumed run must share with its checkpoint, and the input checks QA found missing."""

import warnings

import pytest
import torch

from neurodyn.data import Recording
from neurodyn.learning import fit
from neurodyn.models import RateRNN


def _recording(seed=0, trials=10, x=True):
    gen = torch.Generator().manual_seed(seed)
    return Recording(torch.arange(20) * 0.01, rates=torch.rand(trials, 20, 3, generator=gen),
                     x=torch.rand(trials, 20, 2, generator=gen) if x else None)


def _model(n_in=2):
    torch.manual_seed(1)
    return RateRNN(6, n_in, 3)


OPTIONS = {"steps": 2, "lr": 1e-3, "batch_size": 4, "progress": False}


@pytest.mark.parametrize("change, match", [
    ({"holdout": 0.5}, "other held-out trials"),
    ({"data": _recording(seed=1)}, "another task or recording"),
    ({"batch_size": 3}, "batch_size: checkpoint 4, this call 3"),
    ({"seed": 7}, "seed: checkpoint 0, this call 7"),
])
def test_resuming_with_other_data_or_settings_is_an_error(tmp_path, change, match):
    """QA: a resume with holdout=0.5 evaluated on trials the first part had trained on, and reported the old
    held-out set; other data, batch size or seed were mixed into one history without a word."""
    path = tmp_path / "run.pt"
    fit(_model(), _recording(), **OPTIONS, checkpoint=path)
    data = change.pop("data", _recording())
    with pytest.raises(ValueError, match=f"other settings.*{match}.*new checkpoint path"):
        fit(_model(), data, **{**OPTIONS, "steps": 4, **change}, checkpoint=path)


def test_resuming_with_another_loss_is_an_error(tmp_path):
    rec = Recording(torch.arange(20) * 0.01, rates=torch.rand(8, 20, 3), counts=torch.randint(0, 3, (8, 20, 3)),
                    x=torch.rand(8, 20, 2))
    path = tmp_path / "run.pt"
    fit(_model(), rec, **OPTIONS, loss="poisson", checkpoint=path)
    with pytest.raises(ValueError, match="loss: checkpoint 'poisson', this call 'mse'"):
        fit(_model(), rec, **{**OPTIONS, "steps": 4}, loss="mse", checkpoint=path)


def test_resuming_with_fewer_steps_than_run_is_an_error_and_other_simulate_options_warn(tmp_path):
    path = tmp_path / "run.pt"
    fit(_model(), _recording(), **{**OPTIONS, "steps": 3}, checkpoint=path)
    with pytest.raises(ValueError, match="already run 3 steps, more than steps=2"):
        fit(_model(), _recording(), **OPTIONS, checkpoint=path)
    with pytest.warns(UserWarning, match="simulate options.*'solver': 'rk4'.*no longer repeats"):
        history = fit(_model(), _recording(), **{**OPTIONS, "steps": 4}, solver="rk4", checkpoint=path)
    assert history.steps == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same settings: no warning
        assert fit(_model(), _recording(), **{**OPTIONS, "steps": 5}, solver="rk4", checkpoint=path).steps == 5


def test_a_model_with_inputs_needs_a_recording_with_its_stimulus():
    """QA: a model with n_in = 2 was fit to a recording without x, with zero input, silently."""
    with pytest.raises(ValueError, match="n_in=2 inputs but the recording has no stimulus x"):
        fit(_model(), _recording(x=False), **OPTIONS)
    fit(_model(n_in=0), _recording(x=False), **OPTIONS)


def test_a_one_trial_recording_warns_that_nothing_is_held_out():
    with pytest.warns(UserWarning, match="1 trial, so none is held out"):
        history = fit(_model(), _recording(trials=1), **OPTIONS)
    assert len(history.held_out) == 0


def test_seed_and_an_optimizer_without_the_models_parameters_are_checked():
    with pytest.raises(TypeError, match="seed must be an int"):
        fit(_model(), _recording(), **OPTIONS, seed="a")
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="optimizer does not hold 5 of the model's 5 trainable parameters"):
        fit(_model(), _recording(), **OPTIONS, optimizer=torch.optim.SGD(other.parameters(), lr=0.1))
