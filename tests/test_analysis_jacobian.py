"""Jacobians and the batched linear solve of neurodyn.analysis."""

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.analysis.linalg import solve
from neurodyn.analysis.stability import classify, eig_with_left, is_stable

D64 = torch.float64


def test_linear_rate_rnn_jacobian_is_w_minus_identity_over_tau():
    torch.manual_seed(0)
    W = torch.randn(6, 6, dtype=D64)
    model = nd.RateRNN(6, activation="linear", W=W, tau=0.25)
    J = nd.jacobian(model, torch.randn(3, 6, dtype=D64))
    expected = (W - torch.eye(6, dtype=D64)) / 0.25
    assert J.shape == (3, 6, 6)
    torch.testing.assert_close(J, expected.expand(3, 6, 6), rtol=0, atol=1e-14)


def test_tanh_jacobians_match_the_analytic_formula_and_finite_differences():
    torch.manual_seed(1)
    n, n_in = 5, 2
    W, W_in, b = torch.randn(n, n, dtype=D64), torch.randn(n, n_in, dtype=D64), torch.randn(n, dtype=D64)
    model = nd.RateRNN(n, n_in, W=W, W_in=W_in, b=b, tau=0.1)
    r, x = torch.randn(4, n, dtype=D64), torch.randn(4, n_in, dtype=D64)
    gain = 1 - torch.tanh(r @ W.T + x @ W_in.T + b) ** 2
    J = nd.jacobian(model, r, x)
    torch.testing.assert_close(J, (gain[:, :, None] * W - torch.eye(n, dtype=D64)) / 0.1)
    torch.testing.assert_close(nd.input_jacobian(model, r, x), gain[:, :, None] * W_in / 0.1)

    def F(y):  # noqa: N802
        return model.vector_field(0.0, model.State(y[None]), model.input_drive(x[:1]))[0][0]

    h = 1e-6
    fd = torch.stack([(F(r[0] + h * e) - F(r[0] - h * e)) / (2 * h) for e in torch.eye(n, dtype=D64)], 1)
    torch.testing.assert_close(J[0], fd.detach(), atol=1e-8, rtol=1e-7)


def test_euler_map_jacobian_is_identity_plus_dt_j():
    torch.manual_seed(2)
    model = nd.WilsonCowan(dtype=D64)
    y, dt = torch.tensor([0.3, 0.2], dtype=D64), 0.01
    drive = model.input_drive(torch.zeros(1, 2, dtype=D64))

    def euler(v):
        s = model.State(v[:1][None], v[1:][None])
        return v + dt * torch.cat(model.vector_field(0.0, s, drive), -1)[0]

    step_jac = torch.autograd.functional.jacobian(euler, y)
    torch.testing.assert_close(step_jac, torch.eye(2, dtype=D64) + dt * nd.jacobian(model, y)[0])


def test_named_state_and_multi_variable_models():
    model = nd.WongWang(mu0=30.0, dtype=D64)
    state = model.State(torch.tensor([[0.1]], dtype=D64), torch.tensor([[0.2]], dtype=D64))
    J = nd.jacobian(model, state)
    assert J.shape == (1, 2, 2)
    torch.testing.assert_close(J, nd.jacobian(model, torch.tensor([[0.1, 0.2]], dtype=D64)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [192, 256])
def test_batched_solve_is_correct_at_n256_with_two_threads(dtype, n):
    """torch 2.13 + MKL with 2 threads raises or is wrong on batched LU at n >= 193 (the bug the helper avoids)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(n)
        A = torch.randn(4, n, n, generator=gen, dtype=torch.float64).to(dtype) + 3 * torch.eye(n, dtype=dtype)
        B = torch.randn(4, n, 3, generator=gen, dtype=torch.float64).to(dtype)
        X = solve(A, B)
        assert torch.get_num_threads() == 2
        backward_error = (A @ X - B).norm() / (A.norm() * X.norm() + B.norm())
        assert backward_error < 50 * torch.finfo(dtype).eps
        reference = np.linalg.solve(A.double().numpy(), B.double().numpy())
        forward_error = np.linalg.norm(X.double().numpy() - reference) / np.linalg.norm(reference)
        assert forward_error < 1e5 * torch.finfo(dtype).eps
        x1 = solve(A, B[..., 0])
        torch.testing.assert_close(x1, X[..., 0], rtol=1e3 * torch.finfo(dtype).eps, atol=1e3 * torch.finfo(dtype).eps)
    finally:
        torch.set_num_threads(threads)


def test_singular_solve_is_non_finite_not_an_error():
    A = torch.zeros(2, 3, 3, dtype=D64)
    assert not torch.isfinite(solve(A, torch.ones(2, 3, dtype=D64))).any()


def test_left_and_right_eigenvectors_are_biorthogonal():
    torch.manual_seed(3)
    J = torch.randn(3, 7, 7, dtype=D64)
    lam, V, L = eig_with_left(J)
    Jc = J.to(V.dtype)
    torch.testing.assert_close(Jc @ V, V * lam[:, None, :])
    torch.testing.assert_close(L.mH @ Jc, lam[:, :, None] * L.mH)
    torch.testing.assert_close(L.mH @ V, torch.eye(7, dtype=V.dtype).expand(3, 7, 7))


def test_stability_classes_use_a_tolerance():
    ev = torch.tensor([
        [-1.0, -2.0], [-1 + 2j, -1 - 2j], [1.0, 2.0], [1 + 1j, 1 - 1j], [1.0, -1.0], [1e-12, -1.0], [-1e-12, -3.0],
    ], dtype=torch.complex128)
    assert classify(ev) == ["stable node", "stable focus", "unstable node", "unstable focus", "saddle",
                            "marginal", "marginal"]
    assert is_stable(ev).tolist() == [True, True, False, False, False, False, False]


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "softplus", "sigmoid"])
def test_closed_form_rate_jacobian_equals_autodiff(activation):
    gen = torch.Generator().manual_seed(3)
    n, n_in = 7, 2
    model = nd.RateRNN(n, n_in, tau=0.05 + torch.rand(n, generator=gen, dtype=D64), activation=activation,
                       W=torch.randn(n, n, generator=gen, dtype=D64), b=torch.randn(n, generator=gen, dtype=D64))
    r = 3 * torch.randn(4, n, generator=gen, dtype=D64)
    x = torch.randn(4, n_in, generator=gen, dtype=D64)
    drive = model.input_drive(x)
    closed = model.state_jacobian(0.0, model.State(r), drive)
    assert closed is not None
    auto = torch.stack([torch.autograd.functional.jacobian(
        lambda y, d=d: model.vector_field(0.0, model.State(y[None]), d[None])[0][0], y) for y, d in zip(r, drive)])
    torch.testing.assert_close(closed, auto, rtol=1e-12, atol=1e-12)
    assert closed.mT.is_contiguous()  # column-major: LAPACK factors it without a copy
    public = nd.jacobian(model, r, x)
    torch.testing.assert_close(public, auto, rtol=1e-12, atol=1e-12)
    assert public.is_contiguous()  # users get the usual row-major layout (view/reshape work)


def test_closed_form_jacobian_is_skipped_where_it_does_not_apply():
    gen = torch.Generator().manual_seed(4)
    state = nd.RateRNN(5, activation=lambda z: z.sin()).initial_state(2)
    assert nd.RateRNN(5, activation=lambda z: z.sin()).state_jacobian(0.0, state, torch.zeros(1, 5)) is None
    stp = nd.STPRateRNN(5)  # its own vector field: autodiff
    assert stp.state_jacobian(0.0, stp.initial_state(2), torch.zeros(1, 5)) is None
    ei = nd.EIRateRNN(4, 2, g=1.0).double()  # Dale's-law W, RateRNN dynamics: closed form, equal to autodiff
    r = torch.rand(3, 6, generator=gen, dtype=D64)
    closed = ei.state_jacobian(0.0, ei.State(r), ei.input_drive(torch.zeros(1, 0, dtype=D64)))
    auto = torch.stack([torch.autograd.functional.jacobian(
        lambda y: ei.vector_field(0.0, ei.State(y[None]), ei.input_drive(torch.zeros(1, 0, dtype=D64)))[0][0], y)
        for y in r])
    torch.testing.assert_close(closed, auto, rtol=1e-12, atol=1e-12)
