"""Bad input to simulate() and RateRNN: each raises a clear error naming the argument."""

import subprocess
import sys

import pytest
import torch

import neurodyn as nd

f64 = torch.float64


@pytest.fixture
def model():
    return nd.RateRNN(4, 2, 1, tau=0.1).double()


@pytest.fixture
def t():
    return torch.linspace(0, 1, 11, dtype=f64)


def test_t_not_1d(model):
    with pytest.raises(ValueError, match="t must be 1-D"):
        nd.simulate(model, torch.zeros(3, 2, dtype=f64))


def test_t_not_floating(model):
    with pytest.raises(TypeError, match="t must be floating point"):
        nd.simulate(model, torch.arange(5))


def test_t_not_a_tensor(model):
    with pytest.raises(TypeError, match="t must be a 1-D"):
        nd.simulate(model, [0.0, 1.0])


def test_t_not_increasing(model):
    with pytest.raises(ValueError, match=r"strictly increasing; got t\[2\]=0.1 <= t\[1\]=0.1"):
        nd.simulate(model, torch.tensor([0.0, 0.1, 0.1, 0.3], dtype=f64))


def test_x_wrong_n_in(model, t):
    with pytest.raises(ValueError, match="n_in=2"):
        nd.simulate(model, t, torch.zeros(1, 11, 3, dtype=f64))


def test_x_wrong_T(model, t):
    with pytest.raises(ValueError, match="T=7 .* t has 11"):
        nd.simulate(model, t, torch.zeros(1, 7, 2, dtype=f64))


def test_batch_mismatch(model, t):
    with pytest.raises(ValueError, match="batch size"):
        nd.simulate(model, t, torch.zeros(3, 11, 2, dtype=f64), torch.zeros(2, 4, dtype=f64))


def test_state0_dict_missing_variable(model, t):
    with pytest.raises(ValueError, match="missing \\['r'\\]"):
        nd.simulate(model, t, state0={})


def test_state0_dict_unknown_variable(model, t):
    with pytest.raises(ValueError, match="unknown \\['u'\\]"):
        nd.simulate(model, t, state0={"r": torch.zeros(1, 4, dtype=f64), "u": torch.zeros(1, 4, dtype=f64)})


def test_unknown_solver_lists_valid(model, t):
    with pytest.raises(ValueError, match="solver must be one of .*euler.*dopri5"):
        nd.simulate(model, t, solver="rk45")


def test_unknown_gradient_mode(model, t):
    with pytest.raises(ValueError, match="gradient must be one of"):
        nd.simulate(model, t, gradient="adjoint2")


@pytest.mark.parametrize("dt", [0.0, -0.1])
def test_dt_not_positive(model, t, dt):
    with pytest.raises(ValueError, match="dt must be a positive"):
        nd.simulate(model, t, dt=dt)


def test_fixed_step_without_dt_or_grid(model):
    with pytest.raises(ValueError, match="at least 2 times"):
        nd.simulate(model, torch.tensor([1.0], dtype=f64))


@pytest.mark.parametrize("kw", [{"rtol": 0.0}, {"atol": -1e-9}])
def test_tolerances_positive(model, t, kw):
    with pytest.raises(ValueError, match=f"{next(iter(kw))} must be > 0"):
        nd.simulate(model, t, solver="dopri5", **kw)


@pytest.mark.parametrize("tau", [0.0, -1.0, torch.tensor([0.1, 0.1, -0.1, 0.1])])
def test_tau_not_positive(tau):
    with pytest.raises(ValueError, match="tau must be positive"):
        nd.RateRNN(4, tau=tau)


def test_nan_in_state0(model, t):
    with pytest.raises(ValueError, match="state0 contains NaN"):
        nd.simulate(model, t, state0=torch.full((1, 4), float("nan"), dtype=f64))


def test_inf_in_x(model, t):
    x = torch.zeros(1, 11, 2, dtype=f64)
    x[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        nd.simulate(model, t, x)


def test_nan_in_parameters(model, t):
    with torch.no_grad():
        model.W_in[0, 0] = float("nan")
    with pytest.raises(ValueError, match="parameter 'W_in'"):
        nd.simulate(model, t)


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        nd.RateRNN(4, activation="gelu2")


def test_x_dtype_differs_from_model(model, t):
    with pytest.raises(ValueError, match="x is on .* dtype torch.float32"):
        nd.simulate(model, t, torch.zeros(1, 11, 2))


def test_state0_dtype_differs_from_model(model, t):
    with pytest.raises(ValueError, match="state0 is on .*float32"):
        nd.simulate(model, t, state0=torch.zeros(1, 4))


def test_model_not_a_model(t):
    with pytest.raises(TypeError, match="model must be a neurodyn.models.Model"):
        nd.simulate(torch.nn.Linear(2, 2), t)


def test_vector_field_wrong_shape(t):
    class Broken(nd.RateRNN):
        def vector_field(self, time, state, drive):
            return self.State(state.r[:, :2])

    with pytest.raises(ValueError, match="Broken.vector_field must return"):
        nd.simulate(Broken(4).double(), t)


def test_noise_needs_euler(model, t):
    with pytest.raises(ValueError, match='noise_std > 0 .* solver="euler"'):
        nd.simulate(model, t, solver="rk4", noise_std=0.1)


def test_weight_of_wrong_shape():
    with pytest.raises(ValueError, match=r"W must have shape \(4, 4\)"):
        nd.RateRNN(4, W=torch.zeros(3, 3))


def test_validation_survives_python_O():
    """Validation uses raise, not assert: it must hold under `python -O`."""
    code = (
        "import torch, neurodyn as nd\n"
        "m = nd.RateRNN(3).double()\n"
        "for call in (lambda: nd.simulate(m, torch.tensor([0.0, 0.0], dtype=torch.float64)),\n"
        "             lambda: nd.simulate(m, torch.linspace(0, 1, 3, dtype=torch.float64), dt=-1.0),\n"
        "             lambda: nd.RateRNN(3, tau=0.0)):\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError:\n"
        "        continue\n"
        "    raise SystemExit('no error under -O')\n"
    )
    result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout


def test_numbers_may_be_numpy_or_0d_tensors_but_not_bools(model, t):
    import numpy as np

    a = nd.simulate(model, t, dt=0.01, max_steps=np.int64(5000), noise_std=torch.tensor(0.0)).flat()
    b = nd.simulate(model, t, dt=np.float64(0.01)).flat()
    assert torch.equal(a, b)
    for kwargs in ({"dt": True}, {"max_steps": True}):
        with pytest.raises(TypeError, match=f"{next(iter(kwargs))} must be"):
            nd.simulate(model, t, **kwargs)
    with pytest.raises(ValueError, match="rtol must be > 0; got inf"):
        nd.simulate(model, t, solver="dopri5", rtol=float("inf"))


def test_adjoint_anchors_are_bounded_and_euler_adjoint_warns(model, t):
    with pytest.raises(ValueError, match="anchor_dt=1e-07 puts more than max_steps=1000 anchors"):
        nd.simulate(model, t, solver="dopri5", gradient="adjoint", anchor_dt=1e-7, max_steps=1000)
    with pytest.warns(UserWarning, match='gradient="adjoint" with solver="euler".*first order'):
        nd.simulate(model, t, solver="euler", dt=0.01, gradient="adjoint")


def test_precision_comes_from_floating_tensors_and_a_missing_timescale_is_named():
    from neurodyn.models import Model

    class Decay(Model):  # no parameters; an integer index buffer
        state_vars = {"x": 1}

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("index", torch.arange(3))

        def vector_field(self, t, state, drive):
            return self.State(-state.x)

    model = Decay()
    assert model.dtype == torch.get_default_dtype()  # not int64
    traj = nd.simulate(model, torch.linspace(0, 1, 11), state0=torch.ones(1, 1))
    assert float(traj.flat()[0, -1]) == pytest.approx(0.9**10, rel=1e-6)  # Euler, h = 0.1
    with pytest.raises(NotImplementedError, match="Decay defines no timescale: add a property `timescale`"):
        nd.simulate(model, torch.linspace(0, 1, 11), state0=torch.ones(1, 1), dt=0.01)


@pytest.mark.parametrize("solver", ["euler", "dopri5"])
def test_a_callable_input_that_changes_shape_is_named(model, t, solver):
    def x(time):  # (2, n_in) at t[0], (3, n_in) later
        return torch.zeros(2 if float(time) == float(t[0]) else 3, model.n_in, dtype=t.dtype)

    with pytest.raises(ValueError, match=r"callable x\(t\) returned \(3, .*\) at t=.* but \(2, .*\) at t\[0\]"):
        nd.simulate(model, t, x, solver=solver, dt=0.01)


def test_a_step_longer_than_the_time_constant_warns_also_from_the_grid():
    """Euler at h = 2.5 tau multiplies the state by 1 - h/tau = -1.5 per step: it explodes (finite, so no
    DivergenceError), whether the step comes from dt or, with dt=None, from the spacing of t."""
    model = nd.RateRNN(8, tau=0.01, g=0.5)
    t = torch.arange(50) * 0.025
    for dt, what in ((0.025, "dt=0.025"), (None, "the step of the grid t")):
        with pytest.warns(UserWarning, match=f"{what}.*larger than the model's smallest time constant 0.01"):
            r = nd.simulate(model, t, state0=torch.full((1, 8), 0.5), dt=dt)["r"]
        assert r[0, -1].abs().max() > 1e6
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nd.simulate(model, t, state0=torch.full((1, 8), 0.5), dt=0.005)  # sub-steps below tau: no warning
        nd.simulate(model, t, state0=torch.full((1, 8), 0.5), solver="dopri5")
        # a float32 grid of step tau: its rounded steps (up to 0.0100002) are tau, not longer (review)
        nd.simulate(nd.RateRNN(8, tau=0.01), torch.arange(0, 3, 0.01), state0=torch.full((1, 8), 0.5))


def test_too_many_steps_on_a_long_float32_grid_names_the_rounding():
    """QA: t = linspace(0, 1000, 1000001) in float32 with dt=1e-3 needed 1466436 steps (rounded intervals of
    0.98e-3 and 1.04e-3 split in two), and the error only advised a larger max_steps or dt."""
    with pytest.raises(ValueError, match="in float32 the spacing of t is rounded.*model.double"):
        nd.simulate(nd.RateRNN(2), torch.linspace(0, 1000, 1000001), dt=1e-3)


def test_a_time_constant_trained_below_zero_is_refused():
    """QA: one Adam step at lr 0.1 took STP's tau_x to -0.05, and simulate ran the runaway dynamics with only a
    "dt larger than the time constant" warning."""
    model = nd.STPRateRNN(3, learn_stp=True)
    with torch.no_grad():
        model.tau_x.fill_(-0.05)
    with pytest.raises(ValueError, match="smallest time constant is -0.05, not > 0"):
        nd.simulate(model, torch.linspace(0, 1, 11), dt=0.01)
