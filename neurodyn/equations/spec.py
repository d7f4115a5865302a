"""The file format of ``neurodyn analyze``: equations followed by ``[params]``, ``[inputs]``, ``[ranges]``, ``[sizes]``.

::

    # Wong & Wang (2006), reduced model            <- comments start with #
    x1 = J11*S1 - J12*S2 + I0 + u1                 <- equations first (or under [equations])
    dS1/dt = -S1/tau_S + (1 - S1)*gamma*H1
    ...
    [params]
    J11 = 0.2609                                   <- NAME = number, or a list for vectors/matrices
    W = [[0, 1], [1, 0]]
    [inputs]
    u1 = 0.0                                       <- input channels in order, with their constant value
    [ranges]
    S1 = 0, 1                                      <- window of the phase portrait and of the fixed-point starts
    [sizes]
    r = 4                                          <- units of vector states

Values are read with ``ast.literal_eval`` (numbers, lists and tuples only; nothing is executed).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = ("equations", "params", "inputs", "ranges", "sizes")
HEADER = re.compile(r"\s*\[\s*(?P<name>\w+)\s*\]\s*\Z")
ENTRY = re.compile(r"\s*(?P<name>[A-Za-z]\w*)\s*=\s*(?P<value>.+?)\s*\Z")


@dataclass
class Spec:
    """The contents of an equations file."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def read_spec(path: str | Path) -> Spec:
    """Read an equations file (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such equations file: {str(path)!r}")
    return parse_spec(path.read_text(encoding="utf-8"), str(path))


def parse_spec(content: str, source: str = "<text>") -> Spec:
    """Parse the text of an equations file; errors name ``source`` and the line."""
    section, equations = "equations", []
    entries: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS[1:]}
    for number, raw in enumerate(content.splitlines(), start=1):
        code = raw.split("#", 1)[0]
        header = HEADER.match(code)
        if header or section != "equations":
            equations.append("")  # keep the equations' line numbers equal to the file's
        if header:
            section = header["name"].lower()
            if section not in SECTIONS:
                raise ValueError(f"{source}, line {number}: unknown section [{header['name']}]; the sections are "
                                 f"{['[' + s + ']' for s in SECTIONS]}")
            continue
        if section == "equations":
            equations.append(raw if code.strip() else "")
            continue
        if not code.strip():
            continue
        match = ENTRY.match(code)
        if not match:
            raise ValueError(f"{source}, line {number}: {raw.strip()!r}: expected 'NAME = value' in [{section}]")
        name = match["name"]
        if name in entries[section]:
            raise ValueError(f"{source}, line {number}: {name!r} is given twice in [{section}]")
        entries[section][name] = _value(match["value"], section, f"{source}, line {number}: {raw.strip()!r}")
    return Spec("\n".join(equations), entries["params"], entries["inputs"], entries["ranges"], entries["sizes"])


def parse_assignment(text: str, option: str) -> tuple[str, float]:
    """``NAME=VALUE`` of a command-line option as ``(name, float)``."""
    match = ENTRY.match(text)
    try:
        value = float(match["value"]) if match else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError(f"{option} expects NAME=VALUE with a number, e.g. {option} I0=0.33; got {text!r}")
    return match["name"], value


def _value(text: str, section: str, where: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{where}: {text!r} is not a number or a list of numbers") from None
    if section == "ranges":
        if not (isinstance(value, tuple) and len(value) == 2 and all(_is_number(v) for v in value)
                and value[0] < value[1]):
            raise ValueError(f"{where}: a range is 'low, high' with low < high")
        return float(value[0]), float(value[1])
    if section == "sizes":
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ValueError(f"{where}: a size is a positive integer")
        return value
    if section == "inputs" and not _is_number(value):
        raise ValueError(f"{where}: an input value is a number")
    if not _is_numeric(value):
        raise ValueError(f"{where}: a parameter is a number or a (nested) list of numbers")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numeric(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_is_numeric(v) for v in value)
    return _is_number(value)
