"""FORCE / recursive least squares on the readout of a ForceRNN."""

import math

import pytest
import torch

from neurodyn import DivergenceError, RateRNN, simulate
from neurodyn.learning import ForceResult, train_force
from neurodyn.models import ForceRNN
from neurodyn.tasks import PeriodicTarget

pytestmark = pytest.mark.usefixtures("one_thread")


def open_loop(n=30, seed=0):
    """A ForceRNN without feedback (w_fb = 0): its states do not depend on the readout being learned."""
    torch.manual_seed(seed)
    return ForceRNN(n, 2, tau=0.01, g=1.5, p=0.5, w_fb=torch.zeros(n, 2)).double()


def test_rls_equals_ridge_regression():
    """With P(0) = I/alpha and W_out(0) = 0, RLS gives the ridge solution on the regressors seen so far."""
    model, alpha = open_loop(), 0.5
    t = torch.arange(400, dtype=torch.float64) * 1e-3
    target = torch.stack([torch.sin(2 * math.pi * 3 * t), torch.cos(2 * math.pi * 5 * t)], -1)
    r0 = 0.5 * torch.randn(1, 30, dtype=torch.float64)
    result = train_force(model, target, t, alpha=alpha, every=3, state0=r0)
    R = simulate(model, t, state0=r0, dt=1e-3)["r"][0].detach()  # the same Euler trajectory
    used = torch.arange(0, 400, 3)
    A, F = R[used], target[used]
    ridge = torch.linalg.solve(alpha * torch.eye(30, dtype=torch.float64) + A.T @ A, A.T @ F).T
    assert torch.allclose(result.W_out, ridge, atol=1e-8)
    assert torch.allclose(result.P, torch.linalg.inv(alpha * torch.eye(30, dtype=torch.float64) + A.T @ A),
                          atol=1e-10)
    assert torch.equal(result.P, result.P.mT)  # exactly symmetric
    assert torch.equal(model.W_out.detach(), result.W_out)
    assert result.error.shape == result.outputs.shape == (400, 2)
    assert torch.allclose(result.error[used[-1]], R[used[-1]] @ _w_before_last(model, R, F, alpha).T - F[-1])


def _w_before_last(model, R, F, alpha):
    """Ridge solution from all but the last used regressor (the readout the last error is measured with)."""
    A, B = R[torch.arange(0, 400, 3)][:-1], F[:-1]
    return torch.linalg.solve(alpha * torch.eye(30, dtype=torch.float64) + A.T @ A, A.T @ B).T


def test_batched_networks_match_single_runs():
    model = open_loop(20)
    model.w_fb.normal_()  # with feedback
    t = torch.arange(200, dtype=torch.float64) * 1e-3
    targets = torch.stack([torch.stack([torch.sin(2 * math.pi * f * t)] * 2, -1) for f in (1.0, 2.0, 3.0)])
    r0 = 0.5 * torch.randn(3, 20, dtype=torch.float64)
    batched = train_force(model, targets, t, state0=r0)
    assert batched.W_out.shape == (3, 2, 20) and batched.error.shape == (3, 200, 2)
    for i in range(3):
        fresh = open_loop(20)
        fresh.w_fb.copy_(model.w_fb)
        single = train_force(fresh, targets[i], t, state0=r0[i:i + 1])
        assert torch.allclose(single.W_out, batched.W_out[i], atol=1e-10)
        assert torch.allclose(single.final_state.r, batched.final_state.r[i:i + 1], atol=1e-10)
        assert torch.equal(batched.network(model, i).W_out.detach(), batched.W_out[i])


def test_nonfinite_P_raises_and_bad_input():
    model = ForceRNN(10, 1, p=0.5)
    t = torch.arange(50) * 1e-3
    target = torch.zeros(50, 1)
    with pytest.raises(DivergenceError, match="P"):
        train_force(model, target, t, alpha=1e-39)
    with pytest.raises(ValueError, match="target"):
        train_force(model, torch.zeros(49, 1), t)
    with pytest.raises(ValueError, match="uniform"):
        train_force(model, target, t ** 2)
    with pytest.raises(ValueError, match="alpha"):
        train_force(model, target, t, alpha=0.0)
    with pytest.raises(ValueError, match="every"):
        train_force(model, target, t, every=0)
    with pytest.raises(ValueError, match="tau"):
        train_force(model, target, t * 100)
    with pytest.raises(TypeError):
        train_force(RateRNN(10, 0, 1), target, t)
    with pytest.raises(ValueError, match="init_std"):
        train_force(model, target, t, init_std=-1.0)
    # QA: x with 3 trials for 2 target networks gave torch's raw expand RuntimeError
    driven = ForceRNN(10, 1, n_in=2)
    with pytest.raises(ValueError, match=r"x must be .*B=1 or the target's B=2; got \(3, 50, 2\)"):
        train_force(driven, torch.zeros(2, 50, 1), t, x=torch.zeros(3, 50, 2))
    assert train_force(driven, torch.zeros(2, 50, 1), t, x=torch.zeros(1, 50, 2)).W_out.shape == (2, 1, 10)


@pytest.mark.slow
def test_force_learns_two_sines_and_continues_autonomously():
    """Sussillo & Abbott (2009) Fig. 2: N=400, g=1.5, tau=10 ms, dt=1 ms, 20 s of training, then 2 s alone."""
    torch.manual_seed(0)
    model = ForceRNN(400, 1, tau=0.01, g=1.5, p=0.1)
    task = PeriodicTarget(dt=1e-3)
    t = torch.arange(20000) * 1e-3
    result = train_force(model, task.target(t), t, alpha=1.0, generator=torch.Generator().manual_seed(0))
    assert isinstance(result, ForceResult)
    assert torch.equal(result.P, result.P.mT)
    after = t[-1] + torch.arange(2001) * 1e-3
    with torch.no_grad():
        y = simulate(model, after, state0=result.final_state, dt=1e-3).outputs[0, 1:, 0]
    f = task.target(after[1:])[:, 0]
    relative = ((y - f).pow(2).mean().sqrt() / f.pow(2).mean().sqrt()).item()
    assert relative < 0.3, relative


@pytest.mark.gpu
def test_force_on_gpu_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    t = torch.arange(300, dtype=torch.float64) * 1e-3
    target = torch.sin(2 * math.pi * t)[:, None].expand(300, 2)
    r0 = 0.5 * torch.randn(1, 30, dtype=torch.float64)
    cpu, gpu = open_loop(), open_loop().cuda()
    a = train_force(cpu, target, t, state0=r0)
    b = train_force(gpu, target.cuda(), t.cuda(), state0=r0.cuda())
    assert torch.allclose(a.W_out, b.W_out.cpu(), atol=1e-8)


def test_inputs_are_named_when_malformed():
    """QA: NaN in state0 or x raised DivergenceError advising to raise alpha; a (30,) state0 was reported as
    (30, 1); a callable x raised AttributeError; alpha=True was accepted and a 0-d tensor alpha refused."""
    torch.manual_seed(0)
    model, driven = ForceRNN(30, 1, p=0.5), ForceRNN(30, 1, n_in=1)
    t = torch.arange(200) * 1e-3
    target = torch.sin(2 * math.pi * 5 * t)[:, None]
    with pytest.raises(ValueError, match="state0 contains NaN"):
        train_force(model, target, t, state0=torch.full((1, 30), math.nan))
    with pytest.raises(ValueError, match=r"state0 must be \(1, 30\); got \(30,\)"):
        train_force(model, target, t, state0=torch.randn(30))
    with pytest.raises(ValueError, match="x contains NaN"):
        train_force(driven, target, t, x=torch.full((200, 1), math.nan))
    with pytest.raises(TypeError, match="x must be a tensor.*not callables"):
        train_force(driven, target, t, x=lambda time: torch.zeros(1, 1))
    with pytest.raises(TypeError, match="alpha"):
        train_force(model, target, t, alpha=True)
    with pytest.raises(TypeError, match="every"):
        train_force(model, target, t, every=2.0)
    runs = []
    for alpha in (torch.tensor(0.5), 0.5):  # each run trains its own copy of the readout
        torch.manual_seed(0)
        runs.append(train_force(ForceRNN(30, 1, p=0.5), target, t, alpha=alpha,
                                generator=torch.Generator().manual_seed(1)))
    by_tensor, by_float = runs
    torch.testing.assert_close(by_tensor.error, by_float.error)
