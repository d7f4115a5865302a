"""simulate(): accuracy against closed forms, convergence orders, gradient modes."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import neurodyn as nd

f64 = torch.float64


def linear_rnn(n=6, tau=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = 0.8 * torch.randn(n, n, generator=g, dtype=f64) / math.sqrt(n)
    b = torch.randn(n, generator=g, dtype=f64)
    return nd.RateRNN(n, tau=tau, activation="linear", W=W, b=b)


def exact_linear(model, r0, t):
    """r(t) for tau dr/dt = (W - I) r + b: r* + expm(A t)(r0 - r*)."""
    A = ((model.W - torch.eye(model.n, dtype=f64)) / model.tau).detach().numpy()
    c = (model.b / model.tau).detach().numpy()
    rstar = np.linalg.solve(A, -c)
    return np.stack([rstar + scipy.linalg.expm(A * s) @ (r0 - rstar) for s in t])


def test_euler_equals_discrete_time_rnn_eq27():
    n, n_in, dt, tau = 20, 3, 0.01, 0.05
    model = nd.RateRNN(n, n_in, 2, tau=tau, W=torch.randn(n, n, dtype=f64))
    t = torch.arange(0, 101, dtype=f64) * dt
    x = torch.randn(4, 101, n_in, dtype=f64)
    r = torch.randn(4, n, dtype=f64)
    traj = nd.simulate(model, t, x, state0=model.State(r))
    rs = [r]
    for k in range(100):  # primer Eq. 27, written out by hand
        r = r + dt / tau * (-r + torch.tanh(r @ model.W.T + x[:, k] @ model.W_in.T + model.b))
        rs.append(r)
    expected = torch.stack(rs, dim=1)
    assert torch.allclose(traj["r"], expected, atol=1e-10, rtol=0)
    assert torch.allclose(traj.outputs, expected @ model.W_out.T + model.b_out, atol=1e-10)
    assert traj.nfe == 100


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_convergence_order(solver, order):
    model = linear_rnn()
    r0 = np.linspace(-1, 1, model.n)
    t = torch.tensor([0.0, 2.0], dtype=f64)
    exact = exact_linear(model, r0, [2.0])[0]
    dts = [0.1, 0.05, 0.025, 0.0125]
    errs = []
    for dt in dts:
        traj = nd.simulate(model, t, state0=torch.tensor(r0)[None], solver=solver, dt=dt)
        errs.append(np.abs(traj["r"][0, -1].detach().numpy() - exact).max())
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errs)


def test_dopri5_matches_matrix_exponential():
    model = linear_rnn()
    r0 = np.linspace(-1, 1, model.n)
    t = torch.linspace(0, 3, 7, dtype=f64)
    traj = nd.simulate(model, t, state0=torch.tensor(r0)[None], solver="dopri5", rtol=1e-10, atol=1e-12)
    assert np.abs(traj["r"][0].detach().numpy() - exact_linear(model, r0, t.numpy())).max() < 1e-7


@pytest.mark.parametrize("solver,tol", [("dopri5", 1e-10), ("bosh3", 1e-9), ("adaptive_heun", 1e-7), ("dopri8", 1e-10)])
def test_adaptive_solvers_with_step_input_hit_exact_solution(solver, tol):
    """A piecewise-constant input: the adaptive solvers get its switch times as jump points."""
    model = nd.RateRNN(1, 1, tau=1.0, activation="linear", W=torch.zeros(1, 1, dtype=f64),
                       W_in=torch.ones(1, 1, dtype=f64), b=torch.zeros(1, dtype=f64))
    t = torch.tensor([0.0, 1.0, 2.5, 4.0], dtype=f64)
    x = torch.tensor([[[1.0], [-2.0], [0.5], [0.0]]], dtype=f64)
    with torch.no_grad():
        traj = nd.simulate(model, t, x, solver=solver, rtol=tol, atol=tol)
    r, expected = 0.0, [0.0]
    for k in range(3):  # dr/dt = -r + x_k on [t_k, t_k+1)
        r = x[0, k, 0].item() + (r - x[0, k, 0].item()) * math.exp(-(t[k + 1] - t[k]).item())
        expected.append(r)
    assert np.allclose(traj["r"][0, :, 0].numpy(), expected, atol=1000 * tol)


def test_callable_input_equals_grid_for_constant_pieces():
    model = nd.RateRNN(8, 2, tau=0.2).double()
    t = torch.linspace(0, 1, 11, dtype=f64)
    x = torch.randn(3, 11, 2, dtype=f64)

    def x_of_t(s):
        k = min(int(torch.floor(s * 10 + 1e-9)), 9)
        return x[:, k]

    a = nd.simulate(model, t, x, solver="euler", dt=0.01)
    b = nd.simulate(model, t, x_of_t, solver="euler", dt=0.01)
    assert torch.allclose(a.flat(), b.flat(), atol=1e-12)


def test_dt_substeps_save_only_on_output_grid():
    model = linear_rnn()
    t = torch.linspace(0, 1, 5, dtype=f64)
    traj = nd.simulate(model, t, state0=torch.ones(2, model.n, dtype=f64), solver="rk4", dt=0.01)
    assert traj["r"].shape == (2, 5, model.n) and traj.nfe == 4 * 100
    exact = exact_linear(model, np.ones(model.n), t.numpy())
    assert np.abs(traj["r"][0].detach().numpy() - exact).max() < 1e-8


def loss_of(model, mode, solver="euler", **kw):
    model.zero_grad()
    t = kw.pop("t", torch.linspace(0, 1, 21, dtype=f64))
    x = kw.pop("x", torch.randn(3, t.shape[0], model.n_in, dtype=f64, generator=torch.Generator().manual_seed(1)))
    traj = nd.simulate(model, t, x, solver=solver, gradient=mode, **kw)
    loss = traj.outputs.pow(2).mean() + traj["r"][:, -1].sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_checkpoint_equals_backprop_for_euler():
    model = nd.RateRNN(16, 2, 1, tau=0.05).double()
    l1, g1 = loss_of(model, "backprop", dt=0.005)
    l2, g2 = loss_of(model, "checkpoint", dt=0.005)
    assert torch.equal(l1, l2)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10, rtol=0)


def test_checkpoint_matches_backprop_for_dopri5_to_tolerance():
    model = nd.RateRNN(16, 2, 1, tau=0.1).double()
    _, g1 = loss_of(model, "backprop", "dopri5", rtol=1e-10, atol=1e-12)
    _, g2 = loss_of(model, "checkpoint", "dopri5", rtol=1e-10, atol=1e-12)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-9)


def test_adjoint_matches_backprop_short_horizon():
    model = nd.RateRNN(12, 2, 2, tau=0.2, g=1.2).double()
    _, g1 = loss_of(model, "backprop", "dopri5", rtol=1e-11, atol=1e-12)
    _, g2 = loss_of(model, "adjoint", "dopri5", rtol=1e-11, atol=1e-12)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_adjoint_is_anchored_on_a_chaotic_network():
    """Over 100 tau with 11 output times, unanchored torchdiffeq adjoint gradients are far off."""
    n, tau = 64, 1.0
    model = nd.RateRNN(n, 0, 1, tau=tau, g=1.5, W=1.5 * torch.randn(n, n, dtype=f64) / math.sqrt(n))
    t = torch.linspace(0, 100 * tau, 11, dtype=f64)
    r0 = torch.randn(1, n, dtype=f64)
    grads = {}
    for mode in ("backprop", "adjoint"):
        model.zero_grad()
        traj = nd.simulate(model, t, state0=r0, solver="dopri5", gradient=mode, rtol=1e-8, atol=1e-10)
        traj.outputs.pow(2).sum().backward()
        grads[mode] = model.W.grad.clone()
    err = (grads["adjoint"] - grads["backprop"]).norm() / grads["backprop"].norm()
    assert err < 1e-3, float(err)


@pytest.mark.parametrize("solver", ["euler", "dopri5"])
def test_gradcheck(solver):
    n = 3
    t = torch.linspace(0, 0.3, 4, dtype=f64)
    x = torch.randn(2, 4, 2, dtype=f64)

    class Run(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nd.RateRNN(n, 2, tau=0.1).double()

        def forward(self):
            return nd.simulate(self.model, t, x, solver=solver, dt=0.05, rtol=1e-7, atol=1e-9)["r"]

    run = Run()

    def f(W, W_in):  # the gradcheck inputs stand in for the model's parameters
        return torch.func.functional_call(run, {"model.recurrent.weight": W, "model.W_in": W_in}, ())

    W = torch.randn(n, n, dtype=f64, requires_grad=True)
    W_in = torch.randn(n, 2, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (W, W_in), atol=1e-6, rtol=1e-5)


def test_euler_maruyama_stationary_variance():
    """tau dr/dt = -r + sigma sqrt(2 tau) xi has stationary variance sigma^2 (Ornstein–Uhlenbeck)."""
    n, sigma, tau, dt = 400, 0.3, 0.02, 0.0005
    model = nd.RateRNN(n, tau=tau, activation="linear", W=torch.zeros(n, n, dtype=f64))
    t = torch.linspace(0, 1.0, 51, dtype=f64)
    traj = nd.simulate(model, t, state0=torch.zeros(4, n, dtype=f64), dt=dt, noise_std=sigma,
                       generator=torch.Generator().manual_seed(0))
    var = traj["r"][:, 10:].var().item()
    exact = sigma**2 / (1 + dt / (2 * tau))  # Euler–Maruyama's stationary variance of the OU process
    assert abs(var - exact) / exact < 0.03


def test_noise_is_reproducible_with_generator_and_identical_under_checkpoint():
    model = nd.RateRNN(10, tau=0.05).double()
    t = torch.linspace(0, 0.5, 11, dtype=f64)
    runs = [nd.simulate(model, t, state0=torch.zeros(2, 10, dtype=f64), dt=0.005, noise_std=0.1, gradient=mode,
                        generator=torch.Generator().manual_seed(3))["r"] for mode in ("backprop", "checkpoint")]
    assert torch.equal(runs[0], runs[1])
    other = nd.simulate(model, t, state0=torch.zeros(2, 10, dtype=f64), dt=0.005, noise_std=0.1,
                        generator=torch.Generator().manual_seed(4))["r"]
    assert not torch.allclose(runs[0], other)


def test_state0_forms_and_trajectory_views():
    model = nd.RateRNN(5, 1, 2).double()
    t = torch.linspace(0, 0.3, 4, dtype=f64)
    r0 = torch.randn(3, 5, dtype=f64)
    a = nd.simulate(model, t, None, model.State(r0))
    b = nd.simulate(model, t, None, {"r": r0})
    c = nd.simulate(model, t, None, r0)
    assert torch.equal(a.flat(), b.flat()) and torch.equal(a.flat(), c.flat())
    assert a["r"] is a.states.r and a.outputs.shape == (3, 4, 2)
    arrays = a.numpy()
    assert set(arrays) == {"t", "r", "outputs"} and arrays["r"].shape == (3, 4, 5)
    with pytest.raises(KeyError, match="variables are"):
        a["u"]


def test_divergence_raises_with_first_bad_time():
    model = nd.RateRNN(4, tau=0.1, activation="linear", W=10 * torch.eye(4, dtype=f64))
    t = torch.linspace(0, 20, 21, dtype=f64)
    with pytest.raises(nd.DivergenceError, match=r"t\[\d+\]="):
        nd.simulate(model, t, state0=torch.ones(1, 4, dtype=f64), dt=0.01)
    assert issubclass(nd.DivergenceError, FloatingPointError)


def test_max_steps_error_says_how_to_raise_it():
    model = nd.RateRNN(4, tau=0.1).double()
    t = torch.linspace(0, 1, 3, dtype=f64)
    with pytest.raises(ValueError, match="larger max_steps"):
        nd.simulate(model, t, dt=1e-3, max_steps=10)
    with pytest.raises(RuntimeError, match="larger max_steps"):
        nd.simulate(model, t, state0=torch.randn(1, 4, dtype=f64), solver="dopri5", max_steps=3, rtol=1e-12, atol=1e-14)


def test_adjoint_backward_failure_is_a_clear_error(monkeypatch):
    import torchdiffeq._impl.rk_common as rk

    model = nd.RateRNN(4, 0, 1, tau=0.1).double()
    t = torch.linspace(0, 1, 3, dtype=f64)
    traj = nd.simulate(model, t, state0=torch.randn(1, 4, dtype=f64), solver="dopri5", gradient="adjoint")

    def underflow(*args, **kwargs):
        raise AssertionError("underflow in dt 0.0")

    monkeypatch.setattr(rk.RKAdaptiveStepsizeODESolver, "_adaptive_step", underflow)
    with pytest.raises(RuntimeError, match='gradient="checkpoint"'):
        traj.outputs.sum().backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_model_device():
    model = nd.RateRNN(32, 2, 1).cuda()
    t = torch.linspace(0, 1, 11, device="cuda")
    x = torch.randn(4, 11, 2, device="cuda")
    for solver in ("euler", "dopri5"):
        traj = nd.simulate(model, t, x, solver=solver, dt=0.01)
        assert traj["r"].device.type == "cuda"
        traj.outputs.sum().backward()
    cpu = nd.simulate(model.cpu(), t.cpu(), x.cpu(), dt=0.01)["r"]
    gpu = nd.simulate(model.cuda(), t, x, dt=0.01)["r"]
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("options", [{}, {"dt": 0.013}, {"solver": "rk4", "dt": 0.02}, {"noise_std": 0.3},
                                     {"noise_std": 0.3, "dt": 0.007}])
def test_no_grad_run_equals_the_recorded_run(options, activation):
    # without a graph the states are copied out pass by pass: the same numbers, the same noise (bitwise, except
    # that "tanh" goes through numpy's tanh where no graph is recorded: within a few ulp)
    model = nd.RateRNN(64, 2, 1, tau=0.1, activation=activation).double()  # 16 x 64 float64: numpy's route
    t = torch.linspace(0, 1, 21, dtype=torch.float64)
    x = torch.randn(16, 21, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    recorded = nd.simulate(model, t, x, generator=torch.Generator().manual_seed(1), **options)
    assert recorded.flat().requires_grad
    with torch.no_grad():
        plain = nd.simulate(model, t, x, generator=torch.Generator().manual_seed(1), **options)
    if activation == "sigmoid":
        assert torch.equal(plain.flat(), recorded.flat().detach())
        assert torch.equal(plain.outputs, recorded.outputs.detach())
    else:
        torch.testing.assert_close(plain.flat(), recorded.flat().detach(), rtol=0, atol=1e-13)
        torch.testing.assert_close(plain.outputs, recorded.outputs.detach(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("constant", [False, True])
def test_adjoint_gradient_reaches_the_input(constant):
    """x enters the vector field through the drive: the adjoint must return dL/dx too, equal to backprop's."""
    model = nd.RateRNN(5, 2, 1, tau=0.2, g=1.2, dtype=f64)
    t = torch.linspace(0, 0.5, 6, dtype=f64)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 2, dtype=f64, generator=gen) if constant else torch.randn(3, 6, 2, dtype=f64, generator=gen)
    grads = []
    for gradient in ("backprop", "adjoint"):
        x = x0.clone().requires_grad_(True)
        traj = nd.simulate(model, t, x, solver="dopri5", gradient=gradient, rtol=1e-11, atol=1e-12)
        (grad,) = torch.autograd.grad(traj.outputs.pow(2).sum(), x)
        grads.append(grad)
    assert grads[0].abs().max() > 1e-3
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-9)


def test_rk4_adjoint_reads_a_step_input_on_its_own_interval():
    """torchdiffeq's rk4 evaluates its last stage at t1, where a zero-order hold has already switched: the grid is
    perturbed so that the stage sees the step's own input (4th order, as the backprop path), not the next one."""
    model = linear_rnn()
    t = torch.linspace(0, 1, 11, dtype=f64)
    x_model = nd.RateRNN(6, 2, tau=0.5, activation="linear", W=model.W.detach(), b=model.b.detach(), dtype=f64)
    x = torch.randn(2, 11, 2, dtype=f64, generator=torch.Generator().manual_seed(1))
    reference = nd.simulate(x_model, t, x, solver="dopri5", rtol=1e-12, atol=1e-12)["r"]
    for gradient in ("backprop", "adjoint"):
        r = nd.simulate(x_model, t, x, solver="rk4", dt=0.01, gradient=gradient)["r"]
        assert (r - reference).abs().max() < 1e-6, gradient  # first order (the bug) was 1e-2


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_adjoint_converges_to_the_exact_gradient(solver, order):
    """dx/dt = -k x, L = sum_i x(t_i)^2: dL/dk = -2 sum_i t_i x0^2 exp(-2 k t_i). The backward solve steps dt
    apart too (it took one step per anchor interval, on torchdiffeq's decreasing grid: 3 % off for euler)."""
    t = torch.linspace(0, 2, 5, dtype=f64)
    exact = float((-2 * t * torch.exp(-t)).sum())
    errors = []
    for dt in (0.02, 0.01):
        model = nd.Equations("dx/dt = -k*x", params={"k": 0.5}, trainable=("k",), dtype=f64, timescale=1.0)
        traj = nd.simulate(model, t, state0=torch.ones(1, 1, dtype=f64), solver=solver, dt=dt, gradient="adjoint")
        (grad,) = torch.autograd.grad(traj.flat().pow(2).sum(), model.k)
        errors.append(abs(float(grad) - exact))
    assert errors[1] < 5 * 0.01**order, errors
    if order < 4:  # rk4's error is at rounding level already
        assert 2 ** order / 1.5 < errors[0] / errors[1] < 2 ** order * 1.5, errors

def test_a_float32_grid_dt_apart_takes_one_step_per_interval():
    """linspace in float32 puts some intervals 1e-5 (relative) above dt: they must not be split in two."""
    t = torch.linspace(0, 2, 201)
    traj = nd.simulate(nd.RateRNN(4, 1), t, torch.zeros(1, 201, 1), dt=0.01)
    assert traj.nfe == 200


def test_rate_rnn_dtype_keeps_tau_exact():
    assert nd.RateRNN(3, tau=0.1, dtype=f64).tau.flatten()[0].item() == 0.1
    assert nd.RateRNN(3, tau=torch.tensor(0.1, dtype=f64)).W.dtype == f64  # a float64 tau sets the precision


def test_a_one_dimensional_state0_and_a_non_generator_are_named():
    with pytest.raises(ValueError, match=r"a flat state0 must be \(B, D\); got shape \(4,\)"):
        nd.simulate(nd.RateRNN(4, 2), torch.linspace(0, 1, 3), torch.zeros(3, 3, 2), state0=torch.zeros(4))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        nd.simulate(nd.RateRNN(3), torch.linspace(0, 1, 3), noise_std=0.1, generator=3)


def test_adaptive_divergence_names_the_output_time_it_did_not_reach():
    """r' = (50 - 1) r / 0.1 overflows float32 near t = ln(3e38) / 490 = 0.181: dopri5's step underflows there."""
    model = nd.RateRNN(4, tau=0.1, activation="linear", W=50 * torch.eye(4), bias=False)
    with pytest.raises(nd.DivergenceError, match=r"underflowed before output time t=0\.2 "):
        nd.simulate(model, torch.linspace(0, 10, 101), state0=torch.ones(1, 4), solver="dopri5")


@pytest.mark.parametrize("solver, gradient, grad", [("euler", "backprop", False), ("euler", "backprop", True),
                                                    ("rk4", "checkpoint", True), ("dopri5", "backprop", False)])
def test_simulate_signal_is_the_readout_of_simulate(solver, gradient, grad):
    from neurodyn.simulate import simulate_signal

    torch.manual_seed(0)
    model = nd.RateRNN(12, 2, 3, tau=0.1, g=1.5).double()
    t = torch.linspace(0, 1, 51, dtype=f64)
    x = torch.randn(5, 51, 2, dtype=f64)
    options = dict(solver=solver, gradient=gradient, dt=0.01 if solver == "rk4" else None)
    with torch.set_grad_enabled(grad):
        expected = nd.simulate(model, t, x, **options).outputs
        got = simulate_signal(model, t, x, **options)
    assert got.shape == (5, 51, 3)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if grad:  # the same gradients through the recorded readout
        want = torch.autograd.grad(expected.pow(2).sum(), list(model.parameters()))
        have = torch.autograd.grad(got.pow(2).sum(), list(model.parameters()))
        for a, b in zip(have, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_simulate_signal_without_readout_ensemble_and_errors():
    from neurodyn.simulate import simulate_signal

    torch.manual_seed(1)
    t = torch.linspace(0, 0.5, 26, dtype=f64)
    plain = nd.RateRNN(7, 1, tau=0.1).double()  # n_out = 0: the units are the signal
    x = torch.randn(3, 26, 1, dtype=f64)
    with torch.no_grad():
        torch.testing.assert_close(simulate_signal(plain, t, x), nd.simulate(plain, t, x)["r"])
    ens = nd.ensemble(lambda s: nd.RateRNN(7, 1, 2, tau=0.1), 4).double()
    xs = ens.tile(x)
    with torch.no_grad():
        torch.testing.assert_close(simulate_signal(ens, t, xs), nd.simulate(ens, t, xs).outputs)
    unread = nd.Equations("dx/dt = -x\ndy/dt = y*y", dtype=f64)  # the signal x stays finite; y blows up
    with torch.no_grad(), pytest.raises(nd.DivergenceError, match=r"t\[22\]"):
        simulate_signal(unread, torch.linspace(0, 3, 31, dtype=f64), state0=torch.tensor([[1.0, 0.5]], dtype=f64),
                        dt=0.01)
    blowing_up = nd.RateRNN(4, 0, 1, tau=0.1, activation="linear", W=5 * torch.eye(4, dtype=f64))
    with torch.no_grad(), pytest.raises(nd.DivergenceError):
        simulate_signal(blowing_up, torch.linspace(0, 200, 11, dtype=f64), state0=torch.ones(1, 4, dtype=f64),
                        dt=0.01)
    with pytest.raises(TypeError, match="soler"):
        simulate_signal(plain, t, x, soler="rk4")


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_checkpoint_gradients_reach_every_tensor_the_steps_read(solver):
    """Closures included: a learned input amplitude, a learned initial state, a leaf inside a custom
    activation, the noise's tau, and a stimulation current, made before simulate from a leaf, that
    exists only after t[0]."""
    torch.manual_seed(2)
    gain = torch.tensor(1.3, dtype=f64, requires_grad=True)
    source = torch.tensor(0.35, dtype=f64, requires_grad=True)
    amp = torch.tensor(0.9, dtype=f64, requires_grad=True)
    s0 = (0.3 * torch.randn(3, 10, dtype=f64)).requires_grad_()
    net = nd.RateRNN(10, 2, 2, tau=0.1, activation=lambda z: torch.tanh(gain * z)).double()
    t = torch.linspace(0, 1.5, 16, dtype=f64)
    base = torch.randn(3, 16, 2, dtype=f64)
    leaves = [gain, source, amp, s0, *[p for p in net.parameters() if p.requires_grad]]
    options = dict(solver=solver, dt=0.01, noise_std=0.2 if solver == "euler" else 0.0)

    def gradients(mode):
        pulse = 2 * source  # a graph made before simulate, read only inside the window
        model = nd.stimulate(net, [1, 4], lambda time: pulse * torch.ones(2, dtype=f64), window=(0.6, 0.9))
        traj = nd.simulate(model, t, amp * base, s0, gradient=mode,
                           generator=torch.Generator().manual_seed(5), **options)
        return torch.autograd.grad(traj.outputs.pow(2).sum() + traj["r"][:, -1].sum(), leaves)

    expected, got = gradients("backprop"), gradients("checkpoint")
    for name, a, b in zip(["gain", "source", "amp", "state0", "params"], got, expected, strict=False):
        assert b.abs().sum() > 0, name  # every leaf matters here
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    for a, b in zip(got[4:], expected[4:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _graph_nodes(tensor):
    seen, nodes = set(), [tensor.grad_fn]
    while nodes:
        node = nodes.pop()
        if node is not None and node not in seen:
            seen.add(node)
            nodes.extend(n for n, _ in node.next_functions)
    return len(seen)


def test_checkpoint_keeps_a_graph_of_sqrt_steps_on_the_generic_path():
    """rk4 (no fused scan): the graph kept for backward grows like sqrt(steps), backprop's like steps."""
    model = nd.RateRNN(8, 1, 1, tau=0.1).double()
    counts = {}
    for steps in (400, 1600):
        t = torch.linspace(0, steps * 0.01, 5, dtype=f64)
        for mode in ("checkpoint", "backprop"):
            traj = nd.simulate(model, t, torch.ones(2, 1, dtype=f64), solver="rk4", dt=0.01, gradient=mode)
            counts[mode, steps] = _graph_nodes(traj["r"])
    assert counts["backprop", 1600] > 3.5 * counts["backprop", 400]
    assert counts["checkpoint", 1600] < 2.2 * counts["checkpoint", 400]
    assert counts["checkpoint", 1600] < 0.05 * counts["backprop", 1600]


def test_checkpoint_hooks_non_leaf_inputs_and_second_order():
    """A hook sees the whole gradient once; a non-leaf x gets backprop's gradient (also through retain_grad
    after the run); second-order gradients, which the checkpointed and fused paths cannot give, are errors."""
    t = torch.linspace(0, 0.5, 51, dtype=f64)

    def run(mode, solver="rk4", hook=None):
        torch.manual_seed(0)
        model = nd.RateRNN(5, 2, 1, tau=0.1).double()
        if hook:
            model.W_in.register_hook(hook)
        z = torch.randn(3, 51, 2, dtype=f64, requires_grad=True)
        x = 2 * z
        loss = nd.simulate(model, t, x, solver=solver, gradient=mode).flat().pow(2).sum()
        x.retain_grad()
        loss.backward()
        return model.W_in.grad, x.grad

    for hook in (None, lambda g: g.clamp(-0.05, 0.05)):
        for a, b in zip(run("checkpoint", hook=hook), run("backprop", hook=hook), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    model = nd.RateRNN(5, 2, 1, tau=0.1).double()
    x = torch.randn(3, 51, 2, dtype=f64)
    for solver, mode, match in (("rk4", "checkpoint", "checkpoint"), ("euler", "backprop", "fused Euler scan")):
        loss = nd.simulate(model, t, x, solver=solver, gradient=mode).outputs.pow(2).sum()
        with pytest.raises(RuntimeError, match=match):  # was: a silently wrong (or zero) second derivative
            torch.autograd.grad(loss, model.W_in, create_graph=True)


def test_adjoint_reaches_tensors_held_by_closures():
    """A callable input's and a stimulation current's captured leaves get the backprop gradient."""
    t = torch.linspace(0, 1.0, 11, dtype=f64)
    amp = torch.tensor([0.5, -0.3], dtype=f64, requires_grad=True)
    pulse = torch.tensor(0.8, dtype=f64, requires_grad=True)
    torch.manual_seed(1)
    net = nd.RateRNN(6, 2, 1, tau=0.1).double()
    model = nd.stimulate(net, [0, 2], lambda time: pulse * torch.sin(time) * torch.ones(2, dtype=f64),
                         window=(0.4, 0.7))

    def grads(mode):
        traj = nd.simulate(model, t, lambda time: amp * torch.ones(2, 2, dtype=f64), solver="dopri5",
                           gradient=mode, rtol=1e-10, atol=1e-12)
        return torch.autograd.grad(traj.outputs.pow(2).sum(), [amp, pulse])

    for a, b in zip(grads("adjoint"), grads("backprop"), strict=True):
        assert b.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)


def test_adjoint_gives_a_non_leaf_input_its_own_gradient():
    """x = 2 z: autograd.grad(loss, [x]) under the adjoint equals backprop's (the adjoint was handed a copy of
    x that its vector field did not read, whose gradient was zero)."""
    t = torch.linspace(0, 0.5, 11, dtype=f64)
    torch.manual_seed(3)
    model = nd.RateRNN(5, 2, 1, tau=0.1).double()
    z = torch.randn(3, 11, 2, dtype=f64, requires_grad=True)

    def grads(mode):
        x = 2 * z
        loss = nd.simulate(model, t, x, solver="dopri5", gradient=mode, rtol=1e-10, atol=1e-12).outputs.pow(2).sum()
        return torch.autograd.grad(loss, [x, z])

    for a, b in zip(grads("adjoint"), grads("backprop"), strict=True):
        assert b.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("solver, kind", [("dopri5", "constant"), ("dopri5", "none"), ("dopri5", "callable"),
                                          ("bosh3", "constant")])
def test_adaptive_checkpoint_with_a_constant_input_matches_backprop(solver, kind):
    """QA: torch's checkpoint raised CheckpointError (one tensor fewer saved in the recomputation) for a RateRNN
    with a constant or no input: the drive, cached by the forward pass, was not recomputed in the segment."""
    torch.manual_seed(0)
    f64 = torch.float64
    model = nd.RateRNN(4, 2, 1, tau=0.1).double()
    t = torch.linspace(0, 1, 11, dtype=f64)
    value = torch.randn(2, 2, dtype=f64)
    x = {"constant": value, "none": None, "callable": lambda time: value * time.cos()}[kind]
    grads = []
    for gradient in ("backprop", "checkpoint"):
        model.zero_grad()
        r = nd.simulate(model, t, x, torch.full((2, 4), 0.1, dtype=f64), solver=solver, gradient=gradient,
                        rtol=1e-8, atol=1e-10)["r"]
        r.square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    # to the solver tolerance: the checkpointed segments restart the step-size control
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-4 * float(grads[0].abs().max()))


def test_adaptive_solvers_stop_only_where_a_grid_input_switches():
    """QA: every grid time was a jump point, so a constant input on a 2001-point grid cost dopri5 14008 evaluations
    instead of 302. Only the samples that change are; a stimulus window is still hit exactly."""
    model = nd.RateRNN(1, 1, W=torch.zeros(1, 1), W_in=torch.ones(1, 1), activation="linear", tau=0.1).double()
    t = torch.linspace(0, 1.5, 1501, dtype=f64)
    constant = nd.simulate(model, t, torch.ones(1, 1, dtype=f64), solver="dopri5")
    gridded = nd.simulate(model, t, torch.ones(1, 1501, 1, dtype=f64), solver="dopri5")
    assert gridded.nfe == constant.nfe
    window = ((t >= 0.5) & (t < 1.0)).to(f64).view(1, -1, 1)
    r = nd.simulate(model, t, window, solver="dopri5", rtol=1e-10, atol=1e-12)["r"][0, :, 0]
    rise = 1 - torch.exp(-(t - 0.5).clamp(min=0) / 0.1)
    exact = torch.where(t < 1.0, rise, (1 - math.exp(-5.0)) * torch.exp(-(t - 1.0) / 0.1))
    torch.testing.assert_close(r, exact, atol=1e-8, rtol=0)
    assert nd.simulate(model, t, window, solver="dopri5").nfe < 3 * constant.nfe
