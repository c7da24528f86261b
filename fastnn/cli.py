"""The ``fastnn`` command line: ``info``, ``train``, ``evaluate``, ``predict``, ``summary``,
``examples``, ``bench``, ``selftest``. Each subcommand lives in :mod:`fastnn.commands` and
is imported only when run, so ``fastnn info`` does not pay for matplotlib or the training
stack.

A user error prints one line, ``fastnn <command>: error: <message>``, on stderr. Exit
status: 0 done; 1 the command failed while running (e.g. its results could not be
written); 2 an option, or a file or folder it names, cannot be used (nothing was done);
130 interrupted by Ctrl-C (``fastnn train`` then says how to resume).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Optional

from fastnn._version import __version__
from fastnn.commands._common import EXIT_STATUS_HELP, INTERRUPTED, USAGE, CommandError

DESCRIPTION = ("fastnn: compiled-kernel neural networks. Train the seed convnet on the bundled "
               "MNIST digits (or your own data), evaluate and query saved models, run the "
               "seed programs, and time the kernels. `fastnn COMMAND --help` for a command's "
               "options.")

# subcommand -> (module in fastnn.commands, one-line help)
COMMANDS = {
    "info": ("info", "version, backends, CPU features, kernel ISA and thread counts"),
    "train": ("train", "train the seed convnet on MNIST (bundled by default)"),
    "evaluate": ("train", "evaluate a saved model on the evaluation digits"),
    "predict": ("train", "classify a 28x28 PNG or .npy with a saved model"),
    "summary": ("summary", "the layers, output shapes and parameters of a saved model"),
    "examples": ("examples", "list or run the seed programs written with fastnn"),
    "bench": ("bench", "time fastnn's ops against NumPy (and PyTorch where installed)"),
    "selftest": ("selftest", "check that this install computes correctly on this machine "
                             "(every backend against the reference; run after installing)"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error reported as one line (exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="fastnn", description=DESCRIPTION, epilog=EXIT_STATUS_HELP)
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
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:  # bare `fastnn`: what it can do, not an error
        parser.print_help()
        return 0
    try:
        # Two passes: find the subcommand, then let its module add options and parse again.
        known, _ = parser.parse_known_args(
            argv[:1] if argv and not argv[0].startswith("-") else argv)
        module = importlib.import_module(f"fastnn.commands.{known._module}")
        full = ArgumentParser(prog=f"fastnn {known._name}",
                              description=COMMANDS[known._name][1], epilog=EXIT_STATUS_HELP)
        module.add_arguments(known._name, full)
        args = full.parse_args(argv[1:])
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else USAGE
    try:
        return int(module.run(known._name, args) or 0)
    except CommandError as exc:
        print(f"fastnn {known._name}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which handles its own)
        print(f"fastnn {known._name}: interrupted; no file was left half-written",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
