"""RateRNN's fused Euler scan (neurodyn.models.rate_scan) against simulate's generic step loop."""

import pytest
import torch

import neurodyn as nd
from neurodyn.models import rate_rnn
from neurodyn.models.rate_rnn import RateRNN
from neurodyn.models.rate_scan import rate_scan

f64 = torch.float64


@pytest.fixture
def scan_calls(monkeypatch):
    """Count the fused scans simulate runs (so a test cannot pass by never taking the fused path)."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1].shape[0])
        return rate_scan(*args, **kwargs)

    monkeypatch.setattr(rate_rnn, "rate_scan", counted)
    return calls


def dale_net(activation="tanh", n=8, n_in=3, n_out=2, seed=0):
    """A float64 RateRNN with mask, Dale signs, W_fix and per-unit trainable tau."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.tensor([1.0] * (n - 3) + [-1.0] * 3, dtype=f64)
    mask = (torch.rand(n, n, generator=g, dtype=f64) < 0.7).to(f64)
    W = torch.randn(n, n, generator=g, dtype=f64).abs() * sign * mask / n**0.5  # zero where masked
    W_fix = 0.1 * torch.rand(n, n, generator=g, dtype=f64) * (sign > 0)
    tau = 0.05 + 0.1 * torch.rand(n, generator=g, dtype=f64)
    b = 0.3 * torch.randn(n, generator=g, dtype=f64)
    return RateRNN(n, n_in, n_out, tau=tau, learn_tau=True, activation=activation, W=W, mask=mask, sign=sign,
                   W_fix=W_fix, b=b)


def run(model, t, x, r0, generic=False, **kwargs):
    """Trajectory and gradients of a loss on states and outputs w.r.t. every parameter, state0 and x."""
    x = x.clone().requires_grad_(True) if isinstance(x, torch.Tensor) else x
    r0 = r0.clone().requires_grad_(True)
    original = RateRNN.euler_scan
    if generic:
        RateRNN.euler_scan = lambda self: None
    try:
        traj = nd.simulate(model, t, x, state0=r0, **kwargs)
    finally:
        RateRNN.euler_scan = original
    loss = traj["r"].sin().sum() + (traj.outputs.square().sum() if traj.outputs is not None else 0)
    leaves = [p for _, p in model.named_parameters()] + [r0] + ([x] if isinstance(x, torch.Tensor) else [])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    names = [n for n, _ in model.named_parameters()] + ["state0", "x"]
    return traj, dict(zip(names, grads))


def assert_same(a, b, tol=1e-12):
    (ta, ga), (tb, gb) = a, b
    torch.testing.assert_close(ta["r"], tb["r"], rtol=0, atol=tol)
    if ta.outputs is not None:
        torch.testing.assert_close(ta.outputs, tb.outputs, rtol=0, atol=tol)
    assert ga.keys() == gb.keys()
    for name in ga:
        assert (ga[name] is None) == (gb[name] is None), name
        if ga[name] is not None:
            torch.testing.assert_close(ga[name], gb[name], rtol=0, atol=tol, msg=name)


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "sigmoid", "linear"])
@pytest.mark.parametrize("dt", [None, 0.004])
@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_fused_equals_generic_states_outputs_and_gradients(scan_calls, activation, dt, gradient):
    model = dale_net(activation)
    g = torch.Generator().manual_seed(1)
    t = torch.linspace(0, 0.2, 21, dtype=f64)
    x = torch.randn(4, 21, 3, generator=g, dtype=f64)
    r0 = 0.5 * torch.randn(4, 8, generator=g, dtype=f64)
    fused = run(model, t, x, r0, dt=dt, gradient=gradient)
    steps = 20 if dt is None else 60  # every Euler step ran in the fused scan (twice when checkpointed)
    assert sum(scan_calls) == steps * (2 if gradient == "checkpoint" else 1)
    generic = run(model, t, x, r0, generic=True, dt=dt, gradient=gradient)
    assert_same(fused, generic)
    assert fused[1]["recurrent.weight"].abs().sum() > 0 and fused[1]["tau"].abs().sum() > 0


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_fused_euler_maruyama_matches_generic_with_the_same_generator(scan_calls, gradient):
    model = dale_net("softplus")
    t = torch.linspace(0, 0.3, 16, dtype=f64)
    x = torch.randn(3, 16, 3, generator=torch.Generator().manual_seed(2), dtype=f64)
    r0 = torch.zeros(3, 8, dtype=f64)

    def noisy(generic):
        return run(model, t, x, r0, generic=generic, dt=0.005, gradient=gradient, noise_std=0.4,
                   generator=torch.Generator().manual_seed(7))

    fused = noisy(False)
    assert scan_calls
    assert_same(fused, noisy(True))  # tau's gradient includes its path through the noise scale sqrt(2 dt / tau)
    again = noisy(False)
    assert torch.equal(again[0]["r"], fused[0]["r"])
    silent = run(model, t, x, r0, dt=0.005, gradient=gradient)[0]
    assert (fused[0]["r"] - silent["r"]).abs().max() > 1e-2  # the noise is there


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_fused_forward_is_bitwise_the_generic_loop(scan_calls, dtype):
    """Same operations in the same order: a perturbed copy of a model (generic loop) starts on the same path."""
    torch.manual_seed(0)
    model = RateRNN(128, 2, 1, tau=0.1, W=torch.randn(128, 128) * 1.5 / 128**0.5).to(dtype)
    t = torch.linspace(0, 0.3, 31, dtype=dtype)
    x = torch.randn(40, 31, 2, dtype=dtype)
    r0 = torch.randn(40, 128, dtype=dtype)
    with torch.no_grad():
        fused = nd.simulate(model, t, x, r0, dt=0.005, noise_std=0.2, generator=torch.Generator().manual_seed(1))
        assert scan_calls
        RateRNN.euler_scan, original = (lambda self: None), RateRNN.euler_scan
        try:
            generic = nd.simulate(model, t, x, r0, dt=0.005, noise_std=0.2, generator=torch.Generator().manual_seed(1))
        finally:
            RateRNN.euler_scan = original
    assert torch.equal(fused["r"], generic["r"])


def test_fused_tanh_gradients_on_a_large_batch(scan_calls):
    """tanh's slope in the backward pass goes through numpy's tanh; gradients still match autograd's."""
    torch.manual_seed(0)
    model = RateRNN(128, 2, 1, tau=0.1, W=torch.randn(128, 128, dtype=f64) * 1.5 / 128**0.5)
    t = torch.linspace(0, 0.1, 11, dtype=f64)
    x = torch.randn(40, 11, 2, dtype=f64)
    r0 = torch.randn(40, 128, dtype=f64)
    fused = run(model, t, x, r0)
    assert scan_calls
    assert_same(fused, run(model, t, x, r0, generic=True))


@pytest.mark.parametrize("kind", ["constant", "callable", "none"])
def test_fused_with_constant_callable_and_no_input(scan_calls, kind):
    model = dale_net("tanh")
    t = torch.linspace(0, 0.2, 11, dtype=f64)
    r0 = torch.randn(2, 8, generator=torch.Generator().manual_seed(3), dtype=f64)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=f64, requires_grad=True)
    x = {"constant": torch.tensor([[0.3, -0.2, 1.0]], dtype=f64),
         "callable": lambda s: torch.sin(10 * s) * w.expand(2, 3),
         "none": None}[kind]
    fused = run(model, t, x, r0, dt=0.007)
    assert scan_calls
    assert_same(fused, run(model, t, x, r0, generic=True, dt=0.007))


def test_rate_scan_gradcheck():
    g = torch.Generator().manual_seed(0)
    S, B, n = 4, 2, 3

    def leaf(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=f64)).requires_grad_(True)

    W, r0, drive, noise = leaf(n, n), leaf(B, n), leaf(S, 1, n), leaf(S, B, n, scale=0.1)
    tau = (0.2 + torch.rand(n, generator=g, dtype=f64)).requires_grad_(True)
    h = [0.05, 0.1, 0.05, 0.07]

    def f(W, tau, r0, drive, noise):
        return rate_scan(r0, drive, h, noise, W=W, tau=tau, f=torch.tanh, slope=lambda z: 1 - torch.tanh(z) ** 2)

    assert torch.autograd.gradcheck(f, (W, tau, r0, drive, noise))
    scalar_tau = torch.tensor(0.3, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda W, tau, r0: f(W, tau, r0, drive.detach(), None), (W, scalar_tau, r0))


def test_simulate_gradcheck_through_the_fused_path(scan_calls):
    model = dale_net("softplus", n=4, n_in=2, n_out=1)
    t = torch.linspace(0, 0.1, 6, dtype=f64)
    x = torch.randn(2, 6, 2, dtype=f64, requires_grad=True)
    r0 = torch.randn(2, 4, dtype=f64, requires_grad=True)

    def f(x, r0):
        traj = nd.simulate(model, t, x, state0=r0, dt=0.01)
        return traj["r"], traj.outputs

    assert torch.autograd.gradcheck(f, (x, r0))
    assert scan_calls


def test_models_with_other_dynamics_keep_the_generic_loop():
    assert RateRNN(4).euler_scan() is not None
    assert nd.EIRateRNN(3, 2, activation="relu", activation_i="tanh").euler_scan() is not None
    assert RateRNN(4, activation=lambda z: torch.tanh(z) ** 3).euler_scan() is None  # no closed-form slope
    assert nd.EIRateRNN(3, 2, activation_i=lambda z: z.clamp(min=0)).euler_scan() is None
    for model in (nd.STPRateRNN(4), nd.ForceRNN(4), nd.HebbianRNN(4)):
        assert model.euler_scan() is None, type(model).__name__
    assert nd.lesion(RateRNN(4), [0]).euler_scan() is None  # wrappers use the base default


def test_ei_network_fused_matches_generic(scan_calls):
    torch.manual_seed(0)
    model = nd.EIRateRNN(5, 3, 2, 1, activation="relu", activation_i="sigmoid").double()
    t = torch.linspace(0, 0.2, 11, dtype=f64)
    x = torch.randn(2, 11, 2, dtype=f64)
    r0 = torch.rand(2, 8, dtype=f64)
    fused = run(model, t, x, r0, dt=0.01)
    assert scan_calls
    assert_same(fused, run(model, t, x, r0, generic=True, dt=0.01))


@pytest.mark.parametrize(("n", "batch"), [(6, 4), (10, 1), (33, 1), (64, 16)])
@pytest.mark.parametrize("transposed_state0", [False, True])
def test_no_grad_fused_run_is_bitwise_the_recorded_run(n, batch, transposed_state0):
    # (QA: with states fed back as row-strided views of the output, float32 products rounded differently)
    torch.manual_seed(0)
    model = RateRNN(n, 2, g=1.5)
    t, x = torch.linspace(0, 0.6, 31), torch.randn(batch, 31, 2)
    state0 = torch.randn(n, batch).t() if transposed_state0 else torch.randn(batch, n)
    with torch.no_grad():
        plain = nd.simulate(model, t, x, state0)["r"]
    recorded = nd.simulate(model, t, x, state0)["r"]
    assert recorded.requires_grad and torch.equal(plain, recorded.detach())
