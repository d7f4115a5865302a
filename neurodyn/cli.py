"""The ``neurodyn`` command: ``neurodyn demo``, ``neurodyn analyze``, ``neurodyn sweep``.

Each subcommand lives in its own module exposing ``add_arguments(parser)``
and ``run(args) -> int``; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib

COMMANDS = {
    "demo": ("neurodyn.demo", "train a Dale's-law network on working memory and open the black box"),
    "analyze": ("neurodyn.analyze", "fixed points, eigenvalues, stability and phase portrait of equations in a file"),
    "sweep": ("neurodyn.sweep", "run a hyperparameter/seed sweep from a JSON file on a process pool or Ray"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neurodyn", description=__doc__.splitlines()[0].replace("``", ""))
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(module=module)
        importlib.import_module(module).add_arguments(command)
    args = parser.parse_args(argv)
    return int(importlib.import_module(args.module).run(args) or 0)
