"""Nullclines: every branch, exact vertical/horizontal lines, separate branches never joined."""

import warnings

import numpy as np
import pytest
import torch

import neurodyn as nd
from neurodyn.equations import Equations, nullclines


def test_lotka_volterra_gives_the_four_straight_branches_exactly():
    model = Equations("dx/dt = x*(a - b*y)\ndy/dt = y*(-c + d*x)", dict(a=1.0, b=0.5, c=0.75, d=0.25))
    nc = nullclines(model, "x", "y", (-1, 5), (-1, 5))
    assert list(nc) == ["x", "y"]
    xs = sorted(nc["x"], key=lambda b: b[0, 0])
    assert len(xs) == 2
    np.testing.assert_allclose(xs[0], [[-1, 2], [5, 2]], atol=1e-12)   # y = a/b, horizontal
    np.testing.assert_allclose(xs[1], [[0, -1], [0, 5]], atol=1e-12)   # x = 0, vertical
    ys = sorted(nc["y"], key=lambda b: b[0, 0])
    assert len(ys) == 2
    np.testing.assert_allclose(ys[0], [[-1, 0], [5, 0]], atol=1e-12)   # y = 0
    np.testing.assert_allclose(ys[1], [[3, -1], [3, 5]], atol=1e-12)   # x = c/d


def test_crossing_branches_stay_separate():
    model = Equations("dx/dt = (y - x)*(y + x)\ndy/dt = (x^2 + y^2 - 1)*(x^2 + y^2 - 4)")
    nc = nullclines(model, "x", "y", (-3, 3), (-3, 3), resolution=101)
    lines = nc["x"]
    assert len(lines) == 2
    slopes = sorted(np.sign(b[-1, 1] - b[0, 1]) * np.sign(b[-1, 0] - b[0, 0]) for b in lines)
    assert slopes == [-1, 1]
    for b in lines:  # each branch lies on one line y = +x or y = -x, through the crossing
        assert np.allclose(np.abs(b[:, 1]), np.abs(b[:, 0]), atol=1e-9)
        assert np.ptp(b[:, 0]) == pytest.approx(6.0)
    circles = sorted(nc["y"], key=lambda b: np.hypot(*b[0]))
    assert len(circles) == 2
    for radius, b in zip((1.0, 2.0), circles, strict=True):
        np.testing.assert_allclose(np.hypot(b[:, 0], b[:, 1]), radius, atol=2e-3)
        np.testing.assert_allclose(b[0], b[-1])  # closed


def test_fitzhugh_nagumo_text_and_builtin_agree():
    text = Equations("dv/dt = v - v^3/3 - w + I_ext + u\ndw/dt = (v + a - b*w)/tau",
                     dict(a=0.7, b=0.8, tau=12.5, I_ext=0.5), inputs=("u",), dtype=torch.float64)
    builtin = nd.FitzHughNagumo(I_ext=0.5, dtype=torch.float64)
    for model in (text, builtin):
        nc = nullclines(model, "v", "w", (-2.5, 2.5), (-1.5, 3.0), x=[0.1])
        (cubic,) = nc["v"]
        v, w = cubic[:, 0], cubic[:, 1]
        np.testing.assert_allclose(w, v - v**3 / 3 + 0.6, atol=2e-4)
        (line,) = nc["w"]
        np.testing.assert_allclose(line[:, 1], (line[:, 0] + 0.7) / 0.8, atol=1e-9)


def test_wong_wang_nullclines_meet_at_the_fixed_points():
    model = nd.WongWang(mu0=0.0, dtype=torch.float64)
    text = Equations("""
        x1 = J11*S1 - J12*S2 + I0
        x2 = J11*S2 - J12*S1 + I0
        dS1/dt = -S1/tau_S + (1 - S1)*gamma*(a*x1 - b)/(1 - exp(-d*(a*x1 - b)))
        dS2/dt = -S2/tau_S + (1 - S2)*gamma*(a*x2 - b)/(1 - exp(-d*(a*x2 - b)))
    """, dict(a=270.0, b=108.0, d=0.154, gamma=0.641, tau_S=0.1, J11=0.2609, J12=0.0497, I0=0.3255),
        dtype=torch.float64)
    from neurodyn.analysis.fixed_points import find_fixed_points

    grid = torch.stack(torch.meshgrid(torch.linspace(0, 0.8, 8), torch.linspace(0, 0.8, 8), indexing="ij"), -1)
    fps = find_fixed_points(model, grid.reshape(-1, 2).double())
    assert len(fps) == 5
    for m in (model, text):
        nc = nullclines(m, "S1", "S2", (0, 1), (0, 1), resolution=300)
        for var in ("S1", "S2"):
            points = np.concatenate(nc[var])
            # the singular line a x = b crosses the window: no NaN gap, every point finite
            assert np.isfinite(points).all()
            for p in fps.states.numpy():
                assert np.min(np.hypot(*(points - p).T)) < 5e-3


def test_generic_and_symbolic_paths_agree_on_wilson_cowan():
    builtin = nd.WilsonCowan(dtype=torch.float64)
    text = Equations("""
        dE/dt = (-E + sigmoid(aE*(wEE*E - wEI*I - thetaE)) - sigmoid(-aE*thetaE))/tauE
        dI/dt = (-I + sigmoid(aI*(wIE*E - wII*I - thetaI)) - sigmoid(-aI*thetaI))/tauI
    """, dict(tauE=1.0, tauI=2.0, aE=1.2, thetaE=2.8, aI=1.0, thetaI=4.0, wEE=9.0, wEI=4.0, wIE=13.0, wII=11.0),
        dtype=torch.float64)
    a = nullclines(builtin, "E", "I", (-0.2, 1), (-0.2, 1), resolution=200)
    b = nullclines(text, "E", "I", (-0.2, 1), (-0.2, 1), resolution=200)
    for var in ("E", "I"):
        assert len(a[var]) == len(b[var]) >= 1
        for p, q in zip(a[var], b[var], strict=True):
            np.testing.assert_allclose(p, q, atol=1e-9)


def test_bad_arguments():
    model = Equations("dx/dt = -x\ndy/dt = -y")
    with pytest.raises(ValueError, match="must be the two state variables"):
        nullclines(model, "x", "z", (0, 1), (0, 1))
    with pytest.raises(ValueError, match="low < high"):
        nullclines(model, "x", "y", (1, 0), (0, 1))
    with pytest.raises(ValueError, match="two scalar state variables"):
        nullclines(Equations("dx/dt = -x"), "x", "x", (0, 1), (0, 1))
    with pytest.raises(ValueError, match="resolution"):
        nullclines(model, "x", "y", (0, 1), (0, 1), resolution=2)
    with pytest.raises(TypeError, match="neurodyn Model"):
        nullclines("dx/dt = -x", "x", "y", (0, 1), (0, 1))


def test_poles_are_not_nullclines():
    """A sign change across a pole is no zero: 1/x - 1 vanishes at x = 1 only; 1/x - y on the hyperbola only."""
    model = Equations("dx/dt = a/x - b\ndy/dt = -y", params={"a": 1.0, "b": 1.0}, dtype=torch.float64)
    (line,) = nullclines(model, "x", "y", (-2, 2), (-2, 2))["x"]
    np.testing.assert_allclose(line[:, 0], 1.0, atol=1e-12)
    hyperbola = nullclines(Equations("dx/dt = 1/x - y\ndy/dt = x - y", dtype=torch.float64),
                           "x", "y", (-2, 2), (-2, 2))["x"]
    assert len(hyperbola) == 2
    for branch in hyperbola:
        np.testing.assert_allclose(branch[:, 1], 1 / branch[:, 0], atol=1e-3)


def test_trainable_parameters_give_the_same_branches_without_warnings():
    text, values = "dx/dt = x*(a - b*y)\ndy/dt = y*(-c + d*x)", dict(a=1.0, b=0.5, c=0.75, d=0.25)
    fixed = nullclines(Equations(text, values), "x", "y", (-1, 5), (-1, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was torch's "converting a tensor with requires_grad=True to a scalar"
        trained = nullclines(Equations(text, values, trainable=("a", "d")), "x", "y", (-1, 5), (-1, 5))
    for var in ("x", "y"):
        for a, b in zip(sorted(trained[var], key=lambda p: p[0, 0]), sorted(fixed[var], key=lambda p: p[0, 0]),
                        strict=True):
            np.testing.assert_allclose(a, b)


def test_a_leak_written_as_its_own_term_gives_its_nullcline():
    """-x/tau + I: a parameter in a denominator made sympy's factor_list raise PolynomialError."""
    nc = nullclines(Equations("dx/dt = -x/tau + I\ndy/dt = -y", dict(tau=0.5, I=2.0)), "x", "y", (-2, 2), (-2, 2))
    (branch,) = nc["x"]
    np.testing.assert_allclose(branch[:, 0], 1.0, atol=1e-12)  # x = I tau
