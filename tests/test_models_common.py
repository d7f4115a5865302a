"""Every model with simulate (all solvers, all gradient modes) and with a flat-state Jacobian."""

from __future__ import annotations

import pytest
import torch

import neurodyn as nd
from neurodyn.state import flatten, unflatten

f64 = torch.float64
N = 4


def _w(n=N, scale=0.5):
    return scale * torch.randn(n, n, dtype=f64) / n**0.5


def _masked(build):
    """``build(W, mask)`` with a random 0/1 mask and a W that is zero where the mask is."""
    mask = (torch.rand(N, N) < 0.5).to(f64)
    return build(_w() * mask, mask)


FACTORIES = {
    "RateRNN": lambda: nd.RateRNN(N, 2, 1, g=0.5, density=0.75, autapses=False, learn_tau=True, dtype=f64),
    "RateRNN_Wfix": lambda: _masked(lambda W, mask: nd.RateRNN(N, 2, 1, W=W, W_fix=_w(), mask=mask)),
    "EIRateRNN": lambda: nd.EIRateRNN(3, 1, 2, 1, W=_w().abs() * torch.tensor([1.0, 1, 1, -1], dtype=f64),
                                      tau_e=0.1, tau_i=0.05, activation_i="softplus", readout="excitatory"),
    "STPRateRNN": lambda: nd.STPRateRNN(N, 2, 1, W=_w(), U=torch.full((N,), 0.3, dtype=f64), learn_stp=True),
    "ForceRNN": lambda: nd.ForceRNN(N, 1, n_in=2, tau=0.05, W=_w(), W_out=0.3 * torch.randn(1, N, dtype=f64)),
    "HebbianRNN": lambda: nd.HebbianRNN(N, 2, 1, W=_w(), tau_A=0.2, eta=torch.full((N, N), 0.5, dtype=f64),
                                        learn_eta=True),
    "DivisiveNormalization": lambda: nd.RateRNN(
        N, 2, 1, W=_w().abs(), b=torch.ones(N, dtype=f64), activation=nd.DivisiveNormalization(2.0, 1.0)),
    "WongWang": lambda: nd.WongWang(mu0=30.0, coherence=10.0, dtype=f64, trainable=["mu0", "J_N11"]),
    "WilsonCowan": lambda: nd.WilsonCowan(dtype=f64, trainable=["wEE", "tauI"]),
    "LinearIntegrator": lambda: nd.LinearIntegrator(3, 2, leak=0.1, dtype=f64, trainable=["leak", "W_in"]),
    "FitzHughNagumo": lambda: nd.FitzHughNagumo(I_ext=0.5, dtype=f64, trainable=["a", "tau"]),
}


def _state0(model):
    flat = flatten(model.initial_state(2))
    return flat + 0.1 * torch.rand_like(flat)


def _x(model, T):
    return 0.5 * torch.rand(2, T, model.n_in, dtype=f64)


def _loss(traj):
    return traj.flat().pow(2).mean() + (0.0 if traj.outputs is None else traj.outputs.pow(2).mean())


@pytest.fixture(params=sorted(FACTORIES))
def model(request):
    return FACTORIES[request.param]()


def _span(model):
    return 2 * model.timescale


def _fastest_time(model, x, y0):
    """min(timescale, 1 / spectral radius of the Jacobian at y0): the step size scale of the dynamics."""
    drive = model.input_drive(x[:1, 0])
    J = torch.func.jacrev(lambda v: flatten(model.vector_field(0.0, unflatten(v[None], model), drive))[0])(y0[0])
    return min(model.timescale, 1.0 / float(torch.linalg.eigvals(J.detach()).abs().max()))


def test_every_solver_agrees_with_tight_dopri5(model):
    t = torch.linspace(0, _span(model), 5, dtype=f64)
    x, y0 = _x(model, 5), _state0(model)
    ref = nd.simulate(model, t, x, y0, solver="dopri5", rtol=1e-10, atol=1e-12).flat()
    scale = (ref - ref[:, :1]).abs().max()  # how far the state moves
    fast = _fastest_time(model, x, y0)
    for solver, dt_frac, tol in (("euler", 1e-2, 5e-2), ("midpoint", 5e-2, 5e-3), ("rk4", 1e-1, 1e-4)):
        got = nd.simulate(model, t, x, y0, solver=solver, dt=dt_frac * fast).flat()
        err = (got - ref).abs().max() / scale
        assert err < tol, (solver, float(err))
    for solver, rtol in (("bosh3", 1e-6), ("adaptive_heun", 1e-5), ("dopri8", 1e-6)):
        got = nd.simulate(model, t, x, y0, solver=solver, rtol=rtol, atol=rtol * 1e-2).flat()
        assert (got - ref).abs().max() / scale < 1e-3, solver


def test_gradients_every_mode_reach_every_trainable_parameter(model):
    t = torch.linspace(0, _span(model), 5, dtype=f64)
    x, y0 = _x(model, 5), _state0(model)
    grads = {}
    for solver, gradient in (("rk4", "backprop"), ("rk4", "checkpoint"), ("dopri5", "backprop"),
                             ("dopri5", "adjoint")):
        model.zero_grad()
        traj = nd.simulate(model, t, x, y0, solver=solver, gradient=gradient, dt=0.1 * model.timescale,
                           rtol=1e-9, atol=1e-11)
        _loss(traj).backward()
        grads[solver, gradient] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    assert names, "every model under test has trainable parameters"
    for key, g in grads.items():
        assert sorted(g) == sorted(names), key
        assert all(v.abs().sum() > 0 for v in g.values()), key
    for k in names:
        torch.testing.assert_close(grads["rk4", "checkpoint"][k], grads["rk4", "backprop"][k])
        scale = grads["dopri5", "backprop"][k].abs().max()
        err = (grads["dopri5", "adjoint"][k] - grads["dopri5", "backprop"][k]).abs().max()
        assert err <= 1e-3 * scale + 1e-9, (k, float(err), float(scale))


def test_gradients_from_the_default_initial_state_match_finite_differences(model):
    # the whole simulate call from model.initial_state(): a parameter-derived initial state (STP's u0 = U)
    # must carry its gradient; central differences on the first entry of every trainable parameter
    t, dt = torch.linspace(0, _span(model), 5, dtype=f64), 0.05 * model.timescale
    x = _x(model, 5)

    def loss():
        return _loss(nd.simulate(model, t, x, dt=dt))

    model.zero_grad()
    loss().backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        with torch.no_grad():
            p.view(-1)[0] += 1e-6
            up = loss().item()
            p.view(-1)[0] -= 2e-6
            down = loss().item()
            p.view(-1)[0] += 1e-6
        fd = (up - down) / 2e-6
        assert p.grad.view(-1)[0].item() == pytest.approx(fd, rel=1e-5, abs=1e-9), name


def test_flat_jacobian_matches_finite_differences(model):
    drive = model.input_drive(0.3 * torch.ones(1, model.n_in, dtype=f64))
    y = _state0(model)[0]

    def F(v):
        return flatten(model.vector_field(0.0, unflatten(v[None], model), drive))[0]

    J = torch.func.jacrev(F)(y)
    assert J.shape == (model.dim, model.dim)
    eps = 1e-6
    fd = torch.stack([(F(y + eps * e) - F(y - eps * e)) / (2 * eps) for e in torch.eye(model.dim, dtype=f64)], 1)
    torch.testing.assert_close(J, fd.detach(), rtol=1e-6, atol=1e-6)


def test_noise_and_state_round_trip(model):
    state = model.initial_state(3)
    assert tuple(flatten(state).shape) == (3, model.dim)
    back = unflatten(flatten(state), model)
    assert all(torch.equal(a, b) for a, b in zip(back, state, strict=True))
    assert model.state_tau().shape == (model.dim,) and (model.state_tau() > 0).all()
    t = torch.linspace(0, _span(model), 4, dtype=f64)
    traj = nd.simulate(model, t, _x(model, 4), _state0(model), dt=0.01 * model.timescale, noise_std=0.01,
                       generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(traj.flat()).all()


def test_analysis_jacobian_sees_the_whole_flat_state(model):
    y = _state0(model)
    x = 0.3 * torch.ones(2, model.n_in, dtype=f64)
    J = nd.analysis.jacobian(model, y, x)
    drive = model.input_drive(x[:1])
    ref = torch.func.jacrev(lambda v: flatten(model.vector_field(0.0, unflatten(v[None], model), drive))[0])(y[0])
    assert J.shape == (2, model.dim, model.dim)
    torch.testing.assert_close(J[0], ref.detach())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_models_run_on_cuda(model):
    t = torch.linspace(0, _span(model), 4, dtype=f64)
    x, y0, dt = _x(model, 4), _state0(model), 0.05 * model.timescale
    cpu = nd.simulate(model, t, x, y0, solver="rk4", dt=dt).flat()
    model.cuda()
    gpu = nd.simulate(model, t.cuda(), x.cuda(), y0.cuda(), solver="rk4", dt=dt).flat()
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)


def test_models_and_states_pickle_after_a_run_and_load_in_a_fresh_process(tmp_path):
    """The state's named-tuple class is cached on the model by simulate; torch.save must still work, and the
    class must be found again by a process that never built it (pickle looks it up in neurodyn.state)."""
    import pickle
    import subprocess
    import sys

    model = nd.STPRateRNN(3, 1, 1)
    traj = nd.simulate(model, torch.linspace(0, 0.1, 3), torch.zeros(1, 3, 1))
    path = tmp_path / "model.pt"
    torch.save({"model": model, "states": traj.states}, path)
    loaded = pickle.loads(pickle.dumps(traj.states))
    assert type(loaded) is type(traj.states) and loaded._fields == ("r", "u", "x")
    code = (f"import torch; d = torch.load({str(path)!r}, weights_only=False); "
            "print(type(d['model']).__name__, d['states']._fields)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "STPRateRNN ('r', 'u', 'x')"
