"""``neurodyn analyze FILE``: fixed points, eigenvalues, stability and a phase portrait of text equations.

FILE holds the equations and ``[params]``, ``[inputs]``, ``[ranges]`` and
``[sizes]`` blocks (format: :mod:`neurodyn.equations.spec` and the README).
Fixed points are found by Levenberg–Marquardt (``find_fixed_points``) from a
grid of about ``--starts`` starts over the ranges (random ones above three
dimensions), in float64.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .equations import Equations
from .equations.spec import Spec, parse_assignment, read_spec
from .files import is_neurodyn_png, refuse_foreign, save_png

DEFAULT_RANGE = (-1.0, 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="equations file: equations, then [params], [inputs], [ranges], [sizes] blocks")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a scalar parameter of the file (repeatable)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                        help="override a constant input of the file (repeatable)")
    parser.add_argument("--out", default=".", help="folder for the phase portrait PNG (default: current folder)")
    parser.add_argument("--starts", type=int, default=400,
                        help="fixed-point starts: a grid over the ranges up to 3-D, random above (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random starts")


def run(args: argparse.Namespace) -> int:
    try:
        spec = read_spec(args.file)
        _override(spec, args.param, args.input)
        try:
            model = Equations(spec.text, spec.params, inputs=tuple(spec.inputs), state_sizes=spec.sizes,
                              dtype=torch.float64)
        except ValueError as err:  # its line numbers are the file's; its advice names the Python keywords
            raise ValueError(f"{args.file}, {err} (in the file: params= is the [params] section, inputs= the "
                             "[inputs] section)") from err
        if args.starts < 1:
            raise ValueError(f"--starts must be >= 1; got {args.starts}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out!r} is a file; give a folder for the phase portrait")
        low, high = _bounds(model, spec.ranges)
        try:
            if model.dim == 2:  # only a 2-D state gets a portrait, so only then is --out written
                Path(args.out).mkdir(parents=True, exist_ok=True)
                refuse_foreign(_portrait_path(args), is_neurodyn_png)
        except OSError as err:
            raise ValueError(f"--out {args.out!r}: {err.strerror or err}") from None
    except ValueError as err:
        print(f"neurodyn analyze: error: {err}", file=sys.stderr)
        return 2
    from .analysis.fixed_points import find_fixed_points

    x = torch.tensor([list(spec.inputs.values())], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no start converging is reported below, with the likely cause
        fps = find_fixed_points(model, _starts(low, high, args.starts, args.seed), x=x)
    if not torch.isfinite(fps.start_q).any():
        print("neurodyn analyze: error: the vector field is NaN or infinite at every start; check the parameters "
              "(a zero time constant?) and [ranges]", file=sys.stderr)
        return 1
    print(_report(model, fps, spec))
    if model.dim == 2:
        path = _portrait_path(args)
        try:
            _save_portrait(model, fps, x, (low[0], high[0]), (low[1], high[1]), path)
        except OSError as err:
            print(f"neurodyn analyze: error: cannot write the phase portrait {str(path)!r} "
                  f"({err.strerror or err}); give another --out folder", file=sys.stderr)
            return 1
        print(f"phase portrait: {path}")
    else:
        print(f"no phase portrait: the state has {model.dim} dimensions, not 2")
    return 0


def _portrait_path(args: argparse.Namespace) -> Path:
    return Path(args.out) / f"{Path(args.file).stem}_phase_portrait.png"


def _override(spec: Spec, params: list[str], inputs: list[str]) -> None:
    for values, items, option in ((spec.params, params, "--param"), (spec.inputs, inputs, "--input")):
        for item in items:
            name, value = parse_assignment(item, option)
            if name not in values:
                raise ValueError(f"{option} {item}: the file has no {option[2:]} {name!r}; it has {list(values)}")
            if np.ndim(values[name]):
                raise ValueError(f"{option} {item}: {name!r} is not a scalar; edit it in the file")
            values[name] = value


def _bounds(model: Equations, ranges: dict[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    unknown = sorted(set(ranges) - set(model.state_vars))
    if unknown:
        raise ValueError(f"[ranges] names {unknown}, which are not state variables {list(model.state_vars)}")
    spans = [ranges.get(name, DEFAULT_RANGE) for name, size in model.state_vars.items() for _ in range(size)]
    return np.array([s[0] for s in spans]), np.array([s[1] for s in spans])


def _starts(low: np.ndarray, high: np.ndarray, count: int, seed: int) -> torch.Tensor:
    """About ``count`` starts: a grid over the box up to 3-D, else uniform random ones."""
    if len(low) <= 3:
        per_axis = max(2, round(count ** (1 / len(low))))
        axes = [np.linspace(a, b, per_axis) for a, b in zip(low, high, strict=True)]
        points = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], 1)
    else:
        points = low + (high - low) * np.random.default_rng(seed).random((count, len(low)))
    return torch.as_tensor(points, dtype=torch.float64)


def _report(model: Equations, fps, spec: Spec) -> str:
    names = [name if size == 1 else f"{name}[{i}]" for name, size in model.state_vars.items() for i in range(size)]
    settings = ", ".join(f"{k}={v:g}" for k, v in spec.params.items() if not np.ndim(v))
    lines = [f"parameters: {settings or '(none)'}"]
    if spec.inputs:
        lines.append("inputs: " + ", ".join(f"{k}={v:g}" for k, v in spec.inputs.items()))
    lines.append(f"{len(fps)} fixed point{'s' if len(fps) != 1 else ''} ({fps.n_starts} starts, "
                 f"{fps.n_unconverged} did not converge)")
    for k in range(len(fps)):
        state = ", ".join(f"{n}={float(v):.6g}" for n, v in zip(names, fps.states[k], strict=True))
        eig = ", ".join(_complex(z) for z in fps.eigvals[k].tolist())
        lines.append(f"  [{k}] {state}\n      {fps.stability[k]}; eigenvalues: {eig}")
    return "\n".join(lines)


def _complex(z: complex) -> str:
    if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real)):
        return f"{z.real:.6g}"
    return f"{z.real:.6g}{'+' if z.imag >= 0 else '-'}{abs(z.imag):.6g}i"


def _save_portrait(model: Equations, fps, x: torch.Tensor, x_range, y_range, path: Path) -> None:
    """Draw with :func:`neurodyn.plot.phase_portrait` and write the PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import phase_portrait

    ax = phase_portrait(model, x_range, y_range, x=x, fixed_points=fps)
    try:
        save_png(path, ax.figure)
    finally:
        plt.close(ax.figure)
