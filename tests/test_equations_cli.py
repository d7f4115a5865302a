"""`neurodyn analyze FILE`: fixed points, eigenvalues, stability, phase portrait; the file format."""

import re

import pytest

from neurodyn.cli import main
from neurodyn.equations.spec import parse_spec

WILSON_COWAN = """\
# Wilson & Cowan (1972) with the Neuromatch couplings (neurodyn.WilsonCowan's defaults)
[equations]
FE = sigmoid(aE*(wEE*E - wEI*I + P - thetaE)) - sigmoid(-aE*thetaE)
dE/dt = (-E + FE)/tauE
dI/dt = (-I + sigmoid(aI*(wIE*E - wII*I - thetaI)) - sigmoid(-aI*thetaI))/tauI

[params]
tauE = 1
tauI = 2
aE = 1.2
thetaE = 2.8
aI = 1.0
thetaI = 4.0
wEE = 9
wEI = 4
wIE = 13
wII = 11

[inputs]
P = 0.0

[ranges]
E = -0.1, 1
I = -0.1, 1
"""


def test_analyze_prints_fixed_points_and_saves_a_phase_portrait(tmp_path, capsys):
    path = tmp_path / "wc.eqs"
    path.write_text(WILSON_COWAN)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "3 fixed points" in out
    # the published fixed points of these parameters (WilsonCowan docstring):
    # (0, 0) stable, (0.3369, 0.1684) saddle, (0.9384, 0.6725) stable
    found = [(float(e), float(i), kind)
             for e, i, kind in re.findall(r"E=(\S+), I=(\S+)\n\s+(stable node|stable focus|saddle)", out)]
    assert len(found) == 3
    for e, i, kind in ((0.0, 0.0, "stable"), (0.3369, 0.1684, "saddle"), (0.9384, 0.6725, "stable")):
        match = [k for a, b, k in found if abs(a - e) < 1e-4 and abs(b - i) < 1e-4]
        assert len(match) == 1 and match[0].startswith(kind)
    png = tmp_path / "out" / "wc_phase_portrait.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "out").iterdir() if p != png]  # no temporary files left


def test_param_override_changes_the_fixed_points(tmp_path, capsys):
    path = tmp_path / "wc.eqs"
    path.write_text(WILSON_COWAN)
    assert main(["analyze", str(path), "--out", str(tmp_path), "--param", "wEE=4", "--input", "P=0.5"]) == 0
    out = capsys.readouterr().out
    assert "wEE=4" in out and "P=0.5" in out and "1 fixed point " in out


@pytest.mark.parametrize(
    "content,args,match",
    [
        (WILSON_COWAN, ["--param", "nope=1"], "the file has no param 'nope'"),
        (WILSON_COWAN, ["--param", "wEE"], "--param expects NAME=VALUE"),
        (WILSON_COWAN.replace("wII = 11", "wII = __import__('os')"), [], r"bad.eqs, line 17: .* is not a number"),
        (WILSON_COWAN.replace("dE/dt = (-E + FE)/tauE", "dE/dt = (-E + FE)/tauE + q"), [],
         r"bad.eqs, line 4: .*unknown symbol 'q'.*\[params\] section"),
        (WILSON_COWAN.replace("[ranges]", "[limits]"), [], r"unknown section \[limits\]"),
        (WILSON_COWAN + "V = 0, 1\n", [], r"\[ranges\] names \['V'\], which are not state variables"),
        (WILSON_COWAN, ["--out", "bad.eqs"], r"--out .*bad.eqs' is a file; give a folder"),
    ],
)
def test_errors_exit_with_status_2_and_a_message(tmp_path, capsys, content, args, match, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.eqs").write_text(content)
    assert main(["analyze", "bad.eqs", "--out", str(tmp_path), *args]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_a_field_infinite_everywhere_is_an_error_not_zero_fixed_points(tmp_path, capsys):
    (tmp_path / "net.eqs").write_text("dx/dt = (-x + tanh(y))/tau\ndy/dt = -y/tau\n[params]\ntau = 0.1\n")
    assert main(["analyze", str(tmp_path / "net.eqs"), "--out", str(tmp_path), "--param", "tau=0"]) == 1
    assert "NaN or infinite at every start" in capsys.readouterr().err


def test_portrait_of_trajectories_that_blow_up_and_of_a_vector_state(tmp_path, capsys):
    """Lotka-Volterra over the default window (-1, 1): negative populations blow up in finite time; a 2-unit
    network written as one vector state still gets its portrait."""
    (tmp_path / "lv.eqs").write_text("dx/dt = x*(1.1 - 0.4*y)\ndy/dt = y*(0.1*x - 0.4)\n")
    (tmp_path / "net.eqs").write_text("dr/dt = -r + tanh(W @ r)\n[params]\nW = [[1.5, -0.5], [0.8, 1.2]]\n"
                                      "[sizes]\nr = 2\n")
    for name in ("lv", "net"):
        assert main(["analyze", str(tmp_path / f"{name}.eqs"), "--out", str(tmp_path)]) == 0
        assert (tmp_path / f"{name}_phase_portrait.png").stat().st_size > 0
    assert "saddle" in capsys.readouterr().out  # Lotka-Volterra's origin


def test_file_format_sections_and_line_numbers():
    spec = parse_spec("[params]\nW = [[0, 1], [1, 0]]\nk = 2\n[equations]\ndr/dt = -r + W @ r * k\n"
                      "[sizes]\nr = 2\n[ranges]\nr = -1, 1\n")
    assert spec.params == {"W": [[0, 1], [1, 0]], "k": 2}
    assert spec.sizes == {"r": 2} and spec.ranges == {"r": (-1.0, 1.0)}
    assert spec.text.splitlines()[4] == "dr/dt = -r + W @ r * k"  # file line 5 is equations line 5
    with pytest.raises(ValueError, match="given twice"):
        parse_spec("dx/dt = -x\n[params]\nk = 1\nk = 2\n")
    with pytest.raises(ValueError, match="low < high"):
        parse_spec("dx/dt = -x\n[ranges]\nx = 1, 0\n")


def test_analyze_replaces_its_own_portrait_but_not_a_users_file(tmp_path, capsys):
    """QA: an existing <stem>_phase_portrait.png was replaced whoever wrote it; a bad --out gave a traceback."""
    path = tmp_path / "wc.eqs"
    path.write_text(WILSON_COWAN)
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--out", str(out)]) == 0
    assert main(["analyze", str(path), "--out", str(out)]) == 0  # a rerun replaces its own figure
    capsys.readouterr()
    (out / "wc_phase_portrait.png").write_bytes(b"user data")
    assert main(["analyze", str(path), "--out", str(out)]) == 2
    assert "was not written by neurodyn" in capsys.readouterr().err
    assert (out / "wc_phase_portrait.png").read_bytes() == b"user data"
    (tmp_path / "afile").write_text("")
    assert main(["analyze", str(path), "--out", str(tmp_path / "afile" / "sub")]) == 2
    assert "Traceback" not in capsys.readouterr().err
