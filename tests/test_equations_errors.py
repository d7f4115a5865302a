"""Bad equation text raises ValueError quoting the line and the fix; hostile text is rejected, never run."""

import os

import pytest
import torch

from neurodyn.equations import Equations


@pytest.mark.parametrize(
    "text,params,kwargs,match",
    [
        # an unknown symbol
        ("dx/dt = -x + k*y0", {"k": 1.0}, {}, r"line 1: 'dx/dt = -x \+ k\*y0': unknown symbol 'y0'"),
        # a matrix product with a state left scalar: the message says how to make it a vector
        ("dr/dt = -r + W @ r", {"W": [[1.0, 0.0], [0.0, 1.0]]}, {}, r"r is a scalar.*state_sizes=\{'r': n\}"),
        # a variable used as a state but never given a derivative
        ("dx/dt = -x + y\n", {}, {}, r"line 1: .*unknown symbol 'y'.*'dy/dt = \.\.\.'"),
        ("dx/dt = -x", {}, {"state_sizes": {"r": 3}}, r"state_sizes names 'r' but no line 'dr/dt = \.\.\.'"),
        # a derivative defined twice
        ("dx/dt = -x\n\n# again\ndx/dt = x", {}, {}, r"line 4: 'dx/dt = x': dx/dt is already defined on line 1"),
        # a syntax error
        ("dx/dt = -x +* 2", {}, {}, r"line 1: 'dx/dt = -x \+\* 2': syntax error"),
        ("dx/dt = (x", {}, {}, r"line 1: .*syntax error"),
        ("dx/dt -x", {}, {}, r"line 1: 'dx/dt -x': expected 'dX/dt = expression'"),
        ("2x = 3\ndx/dt = -x", {}, {}, r"line 1: .*left-hand side '2x'"),
        # a parameter without a value
        ("dx/dt = -x/tau", {"tau": None}, {}, r"parameter 'tau' has no value \(used on line 1: 'dx/dt = -x/tau'\)"),
        ("dx/dt = -x/tau", {}, {}, r"line 1: .*unknown symbol 'tau'; give it a value in params=\{'tau': \.\.\.\}"),
        # a matrix parameter of the wrong shape
        ("dr/dt = -r + W @ r", {"W": torch.zeros(3, 3)}, {"state_sizes": {"r": 4}},
         r"line 1: 'dr/dt = -r \+ W @ r': .*W has shape \(3, 3\) but r has shape \(4,\); give W a shape with 4 col"),
        ("dr/dt = W @ r", {"W": torch.zeros(3, 4)}, {"state_sizes": {"r": 4}},
         r"line 1: .*shape \(3,\) but r needs a scalar or shape \(4,\)"),
        ("dr/dt = -r + W * r", {"W": torch.zeros(4, 4)}, {"state_sizes": {"r": 4}}, r"line 1: .*elementwise"),
        # an input name that clashes with a parameter
        ("dx/dt = -x + I", {"I": 1.0}, {"inputs": ("I",)},
         r"input 'I' clashes with the parameter 'I' \(used on line 1: 'dx/dt = -x \+ I'\)"),
        # other clashes and misuse
        ("dx/dt = -x", {"x": 1.0}, {}, r"line 1: .*'x' is both a state variable and an parameter"),
        ("h = 2\nh = 3\ndx/dt = -h*x", {}, {}, r"line 2: 'h = 3': 'h' is already an auxiliary expression \(line 1\)"),
        ("dx/dt = -h*x\nh = 2", {}, {}, r"line 1: .*'h' is defined on line 2, at or below this line"),
        ("dx/dt = exp(x, 2)", {}, {}, r"line 1: .*exp\(\) takes 1 argument; got 2"),
        ("dx/dt = exp", {}, {}, r"line 1: .*the function 'exp' must be called"),
        ("dx/dt = where(x > 0 and x < 1, 1, 0)", {}, {}, r"'and', 'or' and 'not' are not allowed"),
        ("dx/dt = where(0 < x < 1, 1, 0)", {}, {}, r"chained comparisons"),
        ("dx/dt = where(x, 1, 2)", {}, {}, r"line 1: .*where's first argument must be a comparison"),
        ("dx/dt = -x/\u03c4", {}, {}, r"line 1: .*'\u03c4' is not a valid name; use ASCII letters"),
        ("dx/dt = log(-1)*x", {}, {}, r"line 1: .*which is complex"),
        ("dx/dt = 10**10**10*x", {}, {}, r"line 1: .*the constant 10 \*\* 10 \*\* 10 is beyond float64's range"),
        ("dx/dt = 1e308*10*x", {}, {}, r"line 1: .*the constant 1e\+308 \* 10 is beyond"),
        ("dx/dt = 1/0", {}, {}, r"line 1: .*not a finite expression"),
        ("dt/dt = 1", {}, {}, r"line 1: .*'t' is reserved"),
        ("", {}, {}, r"no state variable"),
    ],
)
def test_bad_equations_raise_value_error(text, params, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Equations(text, params, **kwargs)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(text=3), TypeError, "text must be a str"),
        (dict(params=[("a", 1)]), TypeError, "params must be a dict"),
        (dict(inputs="u"), TypeError, r"inputs must be a sequence of names, e.g. \('I',\)"),
        (dict(params={"k": "fast"}), TypeError, "parameter 'k' must be a number or an array"),
        (dict(params={"k": 1.0}, trainable=("c",)), ValueError, r"trainable names unknown parameters \['c'\]"),
        (dict(params={"dim": 1.0}), ValueError, "clashes with an attribute of the model"),
        (dict(params={"k": float("nan")}), ValueError, "k must be finite"),
        (dict(timescale=-1.0), ValueError, "timescale must be a positive number"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    kwargs = {"text": "dx/dt = -x", **kwargs}
    with pytest.raises(error, match=match):
        Equations(**kwargs)


@pytest.mark.parametrize(
    "line,match",
    [
        ("__import__('os').system('touch {flag}')", r"names starting with '_'|attribute access"),
        ("open('{flag}', 'w').write('x')", r"attribute access"),
        ("open('{flag}', 'w')", r"'open' is not a function"),
        ("x.real", r"attribute access \('\.'\) is not allowed"),
        ("exp.__globals__", r"attribute access"),
        ("(lambda: 1)()", r"Lambda syntax is not allowed|not a function"),
        ("[c for c in ()]", r"ListComp syntax is not allowed"),
        ("x if x > 0 else 0", r"IfExp syntax is not allowed"),
        ("'{flag}'", r"the constant '.*' is not allowed"),
        ("x[0]", r"Subscript syntax is not allowed"),
        ("exp(x=1)", r"positional arguments only"),
        ("eval('1')", r"'eval' is not a function"),
        ("__import__('os')", r"names starting with '_' \(such as '__import__'\)"),
        ("(x := 1)", r"NamedExpr syntax is not allowed"),
        ("exp(1j)", r"the constant 1j is not allowed"),
    ],
)
def test_hostile_text_is_rejected_and_never_run(tmp_path, monkeypatch, line, match):
    flag = tmp_path / "ran"
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    text = f"dx/dt = {line.format(flag=flag)}"
    with pytest.raises(ValueError, match=match):
        Equations(text)
    assert not flag.exists() and not calls


def test_hostile_names_in_params_inputs_and_states():
    with pytest.raises(ValueError, match="not a valid parameter name"):
        Equations("dx/dt = -x", {"__class__": 1.0})
    with pytest.raises(ValueError, match="not a valid name"):
        Equations("dx/dt = -x", inputs=("__import__",))
    with pytest.raises(ValueError, match=r"line 1: .*'_x' is not a valid name"):
        Equations("d_x/dt = -_x")


@pytest.mark.parametrize("text", ["dx/dt = ~2", "dx/dt = 2 & 3", "dx/dt = x | 1"])
def test_logical_operators_on_numbers_are_refused(text):
    """QA: Python computed them bitwise: ~2 became -3 and 2 & 3 became 2."""
    with pytest.raises(ValueError, match=r"& \| ~ combine comparisons"):
        Equations(text, {})
    Equations("dx/dt = where((x > 0) & ~(x > 1), 1.0, 0.0)", {})  # their use on comparisons stays
