"""Short-term plasticity (STPRateRNN) and Hebbian fast weights (HebbianRNN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.state import flatten, unflatten

f64 = torch.float64


def test_stp_steady_state_matches_analytic():
    n, U, tau_u, tau_x, r = 3, 0.2, 1.5, 0.2, 20.0
    model = nd.STPRateRNN(n, U=U, tau_u=tau_u, tau_x=tau_x, activation="relu", W=torch.zeros(n, n, dtype=f64),
                          b=torch.full((n,), r, dtype=f64))
    t = torch.linspace(0, 20, 3, dtype=f64)
    final = nd.simulate(model, t, solver="dopri5", rtol=1e-10, atol=1e-12).states
    u_star = U * (1 + tau_u * r) / (1 + U * tau_u * r)
    x_star = 1 / (1 + tau_x * u_star * r)
    assert u_star == pytest.approx(0.885714, abs=1e-6) and x_star == pytest.approx(0.220126, abs=1e-6)
    torch.testing.assert_close(final.r[:, -1], torch.full((1, n), r, dtype=f64))
    torch.testing.assert_close(final.u[:, -1], torch.full((1, n), u_star, dtype=f64))
    torch.testing.assert_close(final.x[:, -1], torch.full((1, n), x_star, dtype=f64))


def test_stp_u_and_x_stay_in_unit_interval_under_strong_inputs():
    n = 12
    model = nd.STPRateRNN(n, 5, U=torch.rand(n) * 0.9 + 0.05, W_in=10 * torch.randn(n, 5).abs())
    t = torch.linspace(0, 0.2, 21)
    x = 5 * torch.rand(2, 21, 5)
    for solver, dt in (("euler", 2e-3), ("dopri5", None)):
        s = nd.simulate(model, t, x, solver=solver, dt=dt, rtol=1e-5, atol=1e-7).states
        assert s.r.max() > 50  # strongly driven
        if dt is not None:  # the docstring's Euler condition dt (1/tau_x + u r+) <= 1 holds for this run
            assert dt * (1 / 0.2 + s.r.max()) <= 1
        for v in (s.u, s.x):
            assert v.min() >= 0 and v.max() <= 1
        assert s.x.min() < 0.2 and s.u.max() > 0.8  # depression and facilitation both engaged


def _clamped_stp(r, n=1, **kwargs):
    """STP units driven to the rate r (W = 0, relu, b = r)."""
    return nd.STPRateRNN(n, W=torch.zeros(n, n, dtype=f64), b=torch.full((n,), r, dtype=f64), **kwargs)


@torch.no_grad()
def test_stp_euler_keeps_unit_interval_exactly_when_dt_is_below_the_documented_bound():
    # U = 1 holds u = 1, so x's Euler step is x <- (1 - dt a) x + dt / tau_x with a = 1/tau_x + r
    r, tau_x = 100.0, 0.2
    a = 1 / tau_x + r
    rest_at_r = {k: torch.full((1, 1), v, dtype=f64) for k, v in (("r", r), ("u", 1.0), ("x", 1.0))}  # r = b: held
    for dt_a, inside in ((1.0, True), (0.5, True), (1.5, False), (2.5, False)):
        dt = dt_a / a
        x = nd.simulate(_clamped_stp(r, U=1.0, tau_x=tau_x), torch.arange(0, 0.5, dt, dtype=f64), state0=rest_at_r,
                        dt=dt).states.x
        assert bool(x.min() >= 0 and x.max() <= 1) == inside, dt_a
    # the reported case: default U, r = 110 Hz, dt = 0.02 s violates dt (1/tau_x + u r) <= 1 and overshoots
    traj = nd.simulate(_clamped_stp(110.0), torch.arange(0, 1 + 1e-9, 0.02, dtype=f64), dt=0.02).states
    assert traj.x.min().item() == pytest.approx(-0.111, abs=1e-3)
    dt = 1 / (1 / 0.2 + 110.0)  # within the bound (u <= 1): stays in [0, 1] and reaches the analytic x*
    s = nd.simulate(_clamped_stp(110.0), torch.arange(0, 20 + 1e-9, dt, dtype=f64), dt=dt).states
    assert s.x.min() >= 0 and s.u.max() <= 1
    u_star = 0.2 * (1 + 1.5 * 110) / (1 + 0.2 * 1.5 * 110)
    assert float(s.x[0, -1, 0]) == pytest.approx(1 / (1 + 0.2 * u_star * 110), rel=1e-9)


def test_stp_gradient_through_the_default_initial_state_u0_equals_U():
    # u(0) = U, so dL/dU has a path through the initial state; compare with central differences of simulate
    model = _clamped_stp(20.0, n=2, U=0.2, learn_stp=True)
    t = torch.linspace(0, 0.5, 6, dtype=f64)
    for kwargs in (dict(dt=1e-3), dict(solver="dopri5", gradient="adjoint", rtol=1e-10, atol=1e-12)):
        def loss(kw=kwargs):
            return nd.simulate(model, t, **kw).states.u[:, -1].sum()

        model.zero_grad()
        loss().backward()
        with torch.no_grad():
            model.U += 1e-6
            up = loss().item()
            model.U -= 2e-6
            down = loss().item()
            model.U += 1e-6
        fd = (up - down) / 2e-6
        assert fd == pytest.approx(3.0829, abs=1e-4)  # the reported value (without u0's path: 2.7954)
        assert model.U.grad.item() == pytest.approx(fd, rel=1e-6), kwargs


def test_stp_noise_reaches_r_only():
    model = nd.STPRateRNN(3, U=torch.tensor([0.2, 0.5, 0.9]), tau=0.05)
    torch.testing.assert_close(model.state_noise(), torch.cat([torch.full((3,), (2 / 0.05) ** 0.5), torch.zeros(6)]))
    # r held far below 0, so u and x see r+ = 0: their noise-free path must be unchanged by noise_std
    state0 = {"r": torch.full((4, 3), -100.0), "u": torch.full((4, 3), 0.6), "x": torch.full((4, 3), 0.4)}
    t = torch.linspace(0, 0.05, 11)
    clean = nd.simulate(model, t, state0=state0, dt=1e-3).states
    noisy = nd.simulate(model, t, state0=state0, dt=1e-3, noise_std=1.0, generator=torch.Generator().manual_seed(0))
    assert noisy.states.r.max() < 0 and (noisy.states.r - clean.r).abs().max() > 0.1
    torch.testing.assert_close(noisy.states.u, clean.u, rtol=0, atol=0)
    torch.testing.assert_close(noisy.states.x, clean.x, rtol=0, atol=0)
    # wrappers keep the model's noise layout: a perturbation forwards it, an Ensemble stacks its members'
    torch.testing.assert_close(nd.perturb.lesion(model, [0]).state_noise(), model.state_noise())
    torch.testing.assert_close(nd.Ensemble([model, model]).state_noise(), model.state_noise())


def test_stp_euler_step_and_effective_weight():
    n, dt = 3, 1e-3
    W = torch.randn(n, n, dtype=f64)
    U, tau_u, tau_x, tau = torch.tensor([0.1, 0.3, 0.5], dtype=f64), 1.2, 0.3, 0.05
    model = nd.STPRateRNN(n, 1, W=W, W_in=torch.ones(n, 1, dtype=f64), U=U, tau_u=tau_u, tau_x=tau_x, tau=tau)
    r, u, x = (torch.rand(1, n, dtype=f64) for _ in range(3))
    xin = torch.tensor([[0.4]], dtype=f64)
    traj = nd.simulate(model, torch.tensor([0.0, dt], dtype=f64), xin, {"r": r, "u": u, "x": x}, dt=dt)
    r1 = r + dt / tau * (-r + torch.relu((W * (u * x)).matmul(r[0]) + 0.4))
    x1 = x + dt * ((1 - x) / tau_x - u * x * r)
    u1 = u + dt * ((U - u) / tau_u + U * (1 - u) * r)
    torch.testing.assert_close(traj["r"][:, 1], r1)
    torch.testing.assert_close(traj["u"][:, 1], u1)
    torch.testing.assert_close(traj["x"][:, 1], x1)
    rest = model.initial_state(2)
    torch.testing.assert_close(rest.u, U.expand(2, n))
    torch.testing.assert_close(rest.x, torch.ones(2, n, dtype=f64))


def test_stp_gradients_reach_U_and_time_constants():
    model = nd.STPRateRNN(4, 1, 1, learn_stp=True, learn_tau=True, U=torch.full((4,), 0.3), tau_u=0.5)
    traj = nd.simulate(model, torch.linspace(0, 0.5, 6), torch.ones(1, 1), dt=0.01)
    (traj.outputs.pow(2).sum() + traj["x"].sum()).backward()
    for name in ("U", "tau_u", "tau_x", "tau"):
        assert getattr(model, name).grad.abs().sum() > 0, name


def test_stp_bad_input():
    for U in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="U"):
            nd.STPRateRNN(3, U=U)
    with pytest.raises(ValueError, match="tau_u"):
        nd.STPRateRNN(3, tau_u=0.0)
    with pytest.raises(ValueError, match="tau_x"):
        nd.STPRateRNN(3, tau_x=torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError, match="U"):
        nd.STPRateRNN(3, U=True)
    # numpy scalars, 0-d tensors and arrays are numbers like Python's
    for U in (np.float32(0.3), np.float64(0.3), torch.tensor(0.3), np.full(3, 0.3)):
        torch.testing.assert_close(nd.STPRateRNN(3, U=U).U.expand(3), torch.full((3,), 0.3))


def test_hebbian_state_shapes_and_flat_round_trip():
    n = 3
    model = nd.HebbianRNN(n)
    assert model.state_vars == {"r": n, "A": n * n} and model.state_shapes["A"] == (n, n)
    flat = torch.randn(2, n + n * n)
    state = unflatten(flat, model)
    assert state.A.shape == (2, n, n)
    torch.testing.assert_close(flatten(state), flat)


def test_hebbian_euler_step_is_equation_45():
    n, dt, tau, tau_A, eta = 4, 1e-3, 0.05, 0.5, 0.7
    W = torch.randn(n, n, dtype=f64)
    model = nd.HebbianRNN(n, W=W, tau=tau, tau_A=tau_A, eta=eta, b=torch.full((n,), 0.1, dtype=f64))
    r, A = torch.rand(1, n, dtype=f64), 0.1 * torch.randn(1, n, n, dtype=f64)
    traj = nd.simulate(model, torch.tensor([0.0, dt], dtype=f64), state0={"r": r, "A": A}, dt=dt)
    lam, eta_step = 1 - dt / tau_A, eta * dt / tau_A
    A1 = lam * A + eta_step * r[0, :, None] * r[0, None, :]  # Eq. 45: A <- lambda A + eta r r^T
    r1 = r + dt / tau * (-r + torch.tanh(r @ (W + A[0]).T + 0.1))
    torch.testing.assert_close(traj["A"][:, 1], A1)
    torch.testing.assert_close(traj["r"][:, 1], r1)


def test_hebbian_fast_weights_store_a_pattern():
    # linear units driven by a constant p: r = p + A r and A = eta r r^T at the fixed point, so r = c p with
    # c (1 - eta c^2 |p|^2) = 1 (the smaller positive root is the stable one)
    n, eta = 3, 0.5
    p = torch.tensor([0.2, 0.1, 0.4], dtype=f64)
    model = nd.HebbianRNN(n, W=torch.zeros(n, n, dtype=f64), activation="linear", b=p, tau_A=0.2, eta=eta)
    traj = nd.simulate(model, torch.linspace(0, 20, 3, dtype=f64), solver="dopri5", rtol=1e-10, atol=1e-12)
    r, A = traj["r"][0, -1], traj["A"][0, -1]
    roots = np.roots([-eta * float(p @ p), 0.0, 1.0, -1.0])
    c = min(z.real for z in roots if abs(z.imag) < 1e-12 and z.real > 0)
    torch.testing.assert_close(r, c * p, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(A, eta * torch.outer(r, r), rtol=1e-6, atol=1e-9)


def test_hebbian_learnable_per_synapse_eta_and_mask():
    n = 3
    mask = torch.ones(n, n)
    mask[0, 1] = 0
    model = nd.HebbianRNN(n, 1, 1, eta=torch.full((n, n), 0.2), learn_eta=True, mask=mask, b=torch.ones(n))
    traj = nd.simulate(model, torch.linspace(0, 0.5, 6), torch.ones(1, 1), dt=0.01)
    assert (traj["A"][..., 0, 1] == 0).all() and (traj["A"][..., 1, 0] != 0).any()
    traj.outputs.pow(2).sum().backward()
    assert model.eta.grad.shape == (n, n) and model.eta.grad[0, 1] == 0 and model.eta.grad[1, 0] != 0
    with pytest.raises(ValueError, match="eta"):
        nd.HebbianRNN(n, eta=torch.ones(2, 2))
    with pytest.raises(ValueError, match="tau_A"):
        nd.HebbianRNN(n, tau_A=-1.0)


def test_a_trained_u_outside_its_range_is_refused():
    """QA: one Adam step at lr 0.1 took U from 0.9 to 1.22, and u then exceeded 1 (issue 3 keeps u, x in [0, 1])."""
    model = nd.STPRateRNN(3, learn_stp=True, U=0.9)
    with torch.no_grad():
        model.U.fill_(1.22)
    t = torch.linspace(0, 1, 11)
    with pytest.raises(ValueError, match=r"U must be in \(0, 1\].*clamp it"):
        nd.simulate(model, t, dt=0.01)
    with pytest.raises(ValueError, match=r"U must be in \(0, 1\]"):
        nd.simulate(nd.Ensemble([nd.STPRateRNN(3, learn_stp=True), model]), t, dt=0.01)
    with torch.no_grad():
        model.U.clamp_(1e-3, 1)
    assert nd.simulate(model, t, torch.zeros(1, 0), torch.ones(1, 9), dt=0.01)["u"].max() <= 1
