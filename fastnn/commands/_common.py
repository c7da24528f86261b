"""What the subcommands share: :class:`CommandError` and the option value checks.

Errors are reported in one style, argparse's: one line ``fastnn <command>: error:
<message>`` on stderr, naming what the user wrote. Exit status 2: the command line, or a
file or folder it names, cannot be used (nothing was done); 1: the command failed while
running (e.g. its results could not be written, or the training diverged).
"""

from __future__ import annotations

import argparse
import math
import os

USAGE = 2    # refused before doing anything: bad option or an unusable file
FAILURE = 1  # failed while running
INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT, as shells report it)

MAX_THREADS = 1024

EXIT_STATUS_HELP = ("exit status: 0 done; 1 failed while running (e.g. results could not be "
                    "written); 2 an option, or a file or folder it names, cannot be used; "
                    "130 interrupted (Ctrl-C)")


class CommandError(Exception):
    """A user error: printed as one line ``fastnn <command>: error: <message>``; the exit
    status is ``status`` (2 by default, see the module docstring)."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


def whole_number(low: int, high: float = math.inf):
    """An argparse ``type``: an integer in [low, high]; the message quotes the value."""
    if high == math.inf:
        wanted = f"a whole number >= {low}"
    else:
        wanted = f"a whole number from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def positive_number(text: str) -> float:
    """An argparse ``type``: a finite float > 0 (``inf``, ``nan``, 0 and negatives refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


positive_number.__name__ = "number"

positive_int = whole_number(1)
seed_int = whole_number(0)
threads_int = whole_number(1, MAX_THREADS)


def output_folder(option: str, path: str, *, create: bool = True) -> None:
    """Refuse, before any work, a ``--out`` that cannot hold the results; ``create``: make
    the folder now (else only a file in its place is refused)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a file, not a folder; give a folder to write "
                           "the results into (it is created if missing)")
    if not create:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot create the folder "
                           f"({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise CommandError(f"{option} {path}: the folder is not writable")


def output_file(option: str, path: str) -> None:
    """Refuse, before any work, an output file that cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a folder; give a file name")
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"{option} {path}: the folder {folder} is not writable")
