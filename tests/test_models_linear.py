"""models.linear: F.linear's values and gradients, with the weight gradient formed the fast way round."""

import pytest
import torch
from torch.nn import functional as F

from neurodyn.models.linear import linear


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
