"""The ``fastnn`` command line: ``info``, ``train``, ``evaluate``, ``predict``, ``examples``,
``bench``. Each subcommand lives in :mod:`fastnn.commands` and is imported only when run,
so ``fastnn info`` does not pay for matplotlib or the training stack."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Optional

from fastnn._version import __version__

# subcommand -> (module in fastnn.commands, one-line help)
COMMANDS = {
    "info": ("info", "version, backends, CPU features, kernel ISA and thread counts"),
    "train": ("train", "train the seed convnet on MNIST (bundled by default)"),
    "evaluate": ("train", "evaluate a saved model on the evaluation digits"),
    "predict": ("train", "classify a 28x28 PNG or .npy with a saved model"),
    "examples": ("examples", "list or run the seed programs written with fastnn"),
    "bench": ("bench", "time fastnn's ops against NumPy (and PyTorch where installed)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # The module adds its options lazily: only the chosen subcommand's module is imported.
        p.set_defaults(_name=name)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Two passes: find the subcommand, then let its module add options and parse again.
    known, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    module = importlib.import_module(f"fastnn.commands.{known._module}")
    full = argparse.ArgumentParser(prog=f"fastnn {known._name}",
                                   description=COMMANDS[known._name][1])
    module.add_arguments(known._name, full)
    args = full.parse_args(argv[1:])
    return int(module.run(known._name, args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
