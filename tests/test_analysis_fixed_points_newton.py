"""The trust-region Newton solver's internals: autodiff gradient products and early retirement of starts."""

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.analysis.fixed_points import _damped_newton, _gradient_products, _unique
from neurodyn.analysis.jacobian import field_and_jacobian
from neurodyn.analysis.linalg import solve

D64 = torch.float64


def _random_net(n, seed, g=1.6):
    gen = torch.Generator().manual_seed(seed)
    model = nd.RateRNN(n, W=g * torch.randn(n, n, generator=gen, dtype=D64) / n**0.5, tau=1.0)
    return model, gen


@pytest.mark.parametrize("kind", ["rate_rnn", "equations"])
def test_gradient_products_match_the_explicit_jacobian(kind):
    if kind == "rate_rnn":
        model, gen = _random_net(7, 0)
        model.b.data = torch.randn(7, generator=gen, dtype=D64)
        y = torch.randn(5, 7, generator=gen, dtype=D64)
    else:
        model = nd.Equations("dx/dt = x * y - sin(x)\ndy/dt = -y**3 + x", params={}, dtype=D64)
        y = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=D64)
    drive = model.input_drive(torch.zeros(5, model.n_in, dtype=D64)).detach().expand(5, -1)
    with torch.no_grad():
        F, J = field_and_jacobian(model, y, drive)
        g, Jg = _gradient_products(model, y, drive, 0.0, F)
    g_ref = (J.mT @ F.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Jg, (J @ g_ref.unsqueeze(-1)).squeeze(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 7])
def test_retired_starts_are_unconverged_and_lose_few_fixed_points(seed):
    # a start is retired when q has not halved in `window` iterations; until then it follows the same path as in a
    # run with a longer window, so every root the default run reports is one the longer run reaches from the same
    # start, while the default run stops far sooner (here 40 against 115 iterations for seed 1)
    model, gen = _random_net(50, seed)
    init = torch.randn(48, 50, generator=gen, dtype=D64)
    drive = model.input_drive(torch.zeros(48, 0, dtype=D64)).detach()
    y, q, iters = _damped_newton(model, init, drive, 0.0, 1e-10, 300)
    y_long, q_long, iters_long = _damped_newton(model, init, drive, 0.0, 1e-10, 300, window=30)
    ok, ok_long = q < 1e-10, q_long < 1e-10
    assert ok.any() and not (ok & ~ok_long).any()
    torch.testing.assert_close(y[ok], y_long[ok], rtol=0, atol=1e-8)
    assert iters < 0.6 * iters_long
    fps = nd.find_fixed_points(model, init)
    assert fps.n_unconverged == int((~ok).sum()) > 0 and (fps.start_q[~ok] >= 1e-10).all()
    assert (fps.q < 1e-16).all()  # polished far below tol
    for retired in fps.start_states[fps.start_q >= 1e-10]:  # never returned as a fixed point
        assert (fps.states - retired).norm(dim=1).min() > 1e-6
    assert len(fps) >= len(_unique(y_long[ok_long], q_long[ok_long], torch.zeros(int(ok_long.sum()), 0), 1e-3)) - 1


def test_a_field_independent_of_the_state_has_no_fixed_point_and_does_not_crash():
    model = nd.Equations("dx/dt = c", params={"c": 1.0}, dtype=D64)
    with pytest.warns(UserWarning, match="none of"):
        fps = nd.find_fixed_points(model, torch.rand(3, 1, dtype=D64))
    assert len(fps) == 0 and fps.n_unconverged == 3
    y = torch.rand(4, 1, dtype=D64)
    g, Jg = _gradient_products(model, y, model.input_drive(torch.zeros(4, 0, dtype=D64)), 0.0, torch.ones_like(y))
    assert (g == 0).all() and (Jg == 0).all()


def test_solve_split_among_threads_keeps_order_and_flags_the_singular_matrix():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(3)
        A = torch.randn(7, 96, 96, generator=gen, dtype=D64)
        A[4] = 0.0
        b = torch.randn(7, 96, generator=gen, dtype=D64)
        x = solve(A, b)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.isnan(x[4]).all() and torch.isfinite(x[torch.arange(7) != 4]).all()
    for i in (0, 1, 2, 3, 5, 6):
        np.testing.assert_allclose(x[i].numpy(), np.linalg.solve(A[i].numpy(), b[i].numpy()), rtol=1e-9, atol=1e-9)
