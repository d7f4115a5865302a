"""The named activations: the "tanh" one runs numpy's tanh where no graph is recorded."""

import numpy as np
import pytest
import torch
from torch.autograd import forward_ad
from torch.func import jacfwd, jacrev, vmap

import neurodyn as nd
from neurodyn.models.activations import ACTIVATIONS, get_activation, numpy_tanh, slope_of, tanh


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_tanh_is_within_two_ulp_of_the_exact_value(dtype):
    tiny = torch.logspace(-40, 1.4, 20_001)
    z = torch.cat([torch.linspace(-25, 25, 200_001), tiny, -tiny, torch.tensor([0.0, -0.0])]).to(dtype)
    exact = np.tanh(z.numpy().astype(np.longdouble))  # 80-bit reference
    ulp = np.spacing(np.abs(exact).astype(z.numpy().dtype)).astype(np.longdouble)
    ulp[ulp == 0] = np.finfo(z.numpy().dtype).smallest_subnormal
    err = np.abs(numpy_tanh(z).numpy().astype(np.longdouble) - exact) / ulp
    assert err.max() <= 2
    special = numpy_tanh(torch.tensor([float("inf"), -float("inf"), float("nan")], dtype=dtype))
    assert special[0] == 1 and special[1] == -1 and special[2].isnan()
    assert torch.signbit(numpy_tanh(torch.tensor([-0.0], dtype=dtype)))


def test_tanh_uses_torch_where_autograd_records_and_under_torch_func():
    small = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tanh, (small,)) and torch.autograd.gradgradcheck(tanh, (small,))
    z = torch.randn(3, 1024, dtype=torch.float64, requires_grad=True)  # large enough for numpy's route
    torch.testing.assert_close(torch.autograd.grad(tanh(z).sum(), z)[0], 1 - torch.tanh(z.detach()) ** 2)
    with torch.no_grad():
        torch.testing.assert_close(tanh(z), torch.tanh(z), rtol=0, atol=1e-15)
    z = z.detach()
    torch.testing.assert_close(vmap(tanh)(z), torch.tanh(z), rtol=0, atol=1e-15)
    expected = torch.diag(1 - torch.tanh(z[0]) ** 2)
    for jac in (jacrev, jacfwd):
        torch.testing.assert_close(jac(tanh)(z[0]), expected, rtol=0, atol=1e-15)
    tangent = torch.randn_like(z)
    with forward_ad.dual_level(), torch.no_grad():  # forward-mode AD keeps its tangent without a graph
        out = forward_ad.unpack_dual(tanh(forward_ad.make_dual(z, tangent)))
    torch.testing.assert_close(out.tangent, (1 - torch.tanh(z) ** 2) * tangent, rtol=0, atol=1e-15)
    strided = torch.randn(70, 90)[:, ::2]  # non-contiguous input: same values as a contiguous copy
    assert torch.equal(numpy_tanh(strided), numpy_tanh(strided.contiguous()))
    assert numpy_tanh(torch.randn(3000, dtype=torch.float16)).dtype == torch.float16  # torch's for other dtypes


def test_torch_tanh_given_as_a_callable_is_the_named_activation():
    assert get_activation(torch.tanh) is ACTIVATIONS["tanh"] is get_activation("tanh")
    model = nd.RateRNN(4, activation=torch.tanh)
    assert slope_of(model.activation) is not None and model.euler_scan() is not None
