"""``fastnn selftest``: check that this install computes correctly on this machine.

Runs :func:`fastnn.selftest.run`: every available backend's ops against the reference
backend (the cpu backend at every kernel ISA the CPU runs), then a small training run on
each backend; prints a table and a one-line verdict. Exit status 0 when every check passed,
1 when any failed (each failure is named: backend, op, shape, dtype, error), 2 for an
unusable option.
"""

from __future__ import annotations

import argparse

from fastnn.commands._common import FAILURE, CommandError, threads_int


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", action="append", default=None, metavar="BACKEND",
                        help="check only this backend (repeat for several; default: every "
                             "available one, see `fastnn info`)")
    parser.add_argument("--no-isa", action="store_true",
                        help="check the cpu backend at its best kernel ISA only (default: at "
                             "every ISA this CPU runs, each in a subprocess)")
    parser.add_argument("--threads", type=threads_int, default=None,
                        help="threads for fastnn's kernels, 1-1024 (default: all cores)")


def run(name: str, args: argparse.Namespace) -> int:
    import fastnn
    from fastnn import backends, selftest

    if args.backend:
        for backend in args.backend:
            if backend not in backends.available():
                why = backends.unavailable().get(backend)
                raise CommandError(f"--backend {backend}: backend {backend!r} is not available"
                                   + (f" ({why})" if why else "")
                                   + f"; available: {', '.join(backends.available())}")
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    report = selftest.run(args.backend, isa=not args.no_isa)
    return 0 if report.ok else FAILURE
