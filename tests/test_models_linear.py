"""models.linear: F.linear's values and gradients, with the weight gradient formed the fast way round, and
recurrent currents on oneDNN for large float32 networks (addmm's values and gradients)."""

import pytest
import torch
from torch.nn import functional as F

import neurodyn as nd
from neurodyn.models import linear as linear_module
from neurodyn.models.linear import _onednn_recurrent, linear, recurrent, recurrent_steps


@pytest.mark.parametrize("shape", [(50, 3), (3, 50), (7, 7), (6, 0)])
@pytest.mark.parametrize("x_shape", [(4,), (5, 4), (2, 9, 4)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_equals_f_linear_in_values_and_gradients(shape, x_shape, with_bias):
    n, m = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*x_shape[:-1], m, dtype=torch.float64, generator=gen, requires_grad=True)
    W = torch.randn(n, m, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(n, dtype=torch.float64, generator=gen, requires_grad=True) if with_bias else None
    ours, theirs = linear(x, W, b), F.linear(x, W, b)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-14)
    g = torch.randn(ours.shape, dtype=torch.float64, generator=gen)
    inputs = [v for v in (x, W, b) if v is not None]
    for a, c in zip(torch.autograd.grad(ours, inputs, g, allow_unused=True),
                    torch.autograd.grad(theirs, inputs, g, allow_unused=True), strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)
    if shape == (50, 3) and with_bias:  # the tall weight: the transposed route
        assert torch.autograd.gradcheck(linear, tuple(inputs))


needs_onednn = pytest.mark.skipif(not linear_module._onednn_available(), reason="no oneDNN matmul-add here")
N_BIG = linear_module.ONEDNN_MIN_UNITS  # from here on float32 CPU products take the oneDNN route


@needs_onednn
@pytest.mark.parametrize("rows", [1, 5, N_BIG])  # one trial: MKL's matrix-vector product
@pytest.mark.parametrize("drive_shape", ["rows", (1, N_BIG), (N_BIG,), (), "one per row"])
def test_recurrent_takes_onednn_for_large_float32_and_equals_addmm(rows, drive_shape, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    drive_shape = {"rows": (rows, N_BIG), "one per row": (rows, 1)}.get(drive_shape, drive_shape)
    r = torch.randn(rows, N_BIG, generator=gen)
    W = torch.randn(N_BIG, N_BIG, generator=gen) / N_BIG**0.5
    drive = torch.randn(drive_shape, generator=gen)
    calls = []
    monkeypatch.setattr(linear_module, "_onednn_recurrent",
                        lambda *a: calls.append(1) or _onednn_recurrent(*a))
    ours = recurrent(r, W, drive)
    assert len(calls) == (rows > 1)  # the oneDNN route ran for a matrix-matrix product
    exact = torch.addmm(drive.double(), r.double(), W.double().t())
    torch.testing.assert_close(ours, exact.float(), rtol=0, atol=2e-5)  # (rows = n, (n, 1): each row its own)
    step = recurrent_steps(W, r)  # the packed weight of a fused scan: the same numbers, bitwise
    assert torch.equal(step(drive, r, None), ours)
    assert torch.equal(step(drive, r, torch.empty(rows, N_BIG)), ours)
    assert len(calls) == 3 * (rows > 1)


@needs_onednn
def test_onednn_check_is_not_fooled_by_a_float64_default_dtype():
    linear_module._onednn_available.cache_clear()  # the first large float32 run may come under a float64 default
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert linear_module._onednn_available()
    finally:
        torch.set_default_dtype(default)
        linear_module._onednn_available.cache_clear()


@needs_onednn
def test_recurrent_gradients_on_the_onednn_route_are_addmm_gradients():
    gen = torch.Generator().manual_seed(1)
    make = lambda *shape: torch.randn(*shape, generator=gen, requires_grad=True)  # noqa: E731
    r, W, drive = make(3, N_BIG), make(N_BIG, N_BIG), make(1, N_BIG)
    z = recurrent(r, W, drive)
    g = torch.randn(z.shape, generator=gen)
    ours = torch.autograd.grad(z, (r, W, drive), g, create_graph=True)
    exact = torch.autograd.grad(torch.addmm(drive.double(), r.double(), W.double().t()),
                                (r, W, drive), g.double())
    for a, c in zip(ours, exact, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-4)  # (float32 leaves: float32 gradients)
    # second order: d/dW of (dz/dr . v) = g^T v through the backward's own products
    v = torch.randn(r.shape, generator=gen)
    (second,) = torch.autograd.grad((ours[0] * v).sum(), W)
    torch.testing.assert_close(second, g.t().mm(v), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_large_float32_rate_network_scan_equals_its_step_loop_and_torch_func_still_works():
    # the fused scan (packed weight) and the generic loop (RateRNN.vector_field) take the same products
    torch.manual_seed(0)
    model = nd.RateRNN(N_BIG, 2, 1, tau=0.1)
    loop = nd.RateRNN(N_BIG, 2, 1, tau=0.1, activation=lambda z: torch.tanh(z), W=model.W.detach(),
                      W_in=model.W_in.detach(), b=model.b.detach(), W_out=model.W_out.detach())
    t, x = torch.linspace(0, 0.2, 21), torch.randn(3, 21, 2)
    fused, generic = nd.simulate(model, t, x), nd.simulate(loop, t, x)
    assert torch.equal(fused["r"], generic["r"])
    # and the scan's adjoint (oneDNN products with the packed W^T) gives autograd's gradients through the loop
    grads = [torch.autograd.grad(traj.outputs.pow(2).mean(), (m.recurrent.weight, m.W_in, m.b))
             for m, traj in ((model, fused), (loop, generic))]
    for a, c in zip(*grads, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-7)
    # Jacobians by torch.func (vmap over jacrev) run the plain product inside the transforms
    state = fused["r"][:2, -1]
    J = nd.jacobian(loop, state)
    slope = 1 - torch.tanh(state @ model.W.T + model.b).pow(2)
    expected = (slope[:, :, None] * model.W - torch.eye(N_BIG)) / 0.1
    torch.testing.assert_close(J, expected.detach(), rtol=0, atol=1e-4)
