"""``fastnn examples [NAME|all]``: list the seed programs, or run one or all of them."""

from __future__ import annotations

import argparse
import inspect
import time

from fastnn import examples
from fastnn.commands._common import CommandError, output_folder


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("example", nargs="?", metavar="NAME|all",
                        help="the example to run (omit to list them)")
    parser.add_argument("--out", default="runs",
                        help="folder for figures that examples save (default: runs/)")


def _list() -> None:
    width = max(len(n) for n in examples.names())
    print("fastnn examples (run one with `fastnn examples NAME`, or `all`):")
    for example, text in examples.EXAMPLES.items():
        print(f"  {example:<{width}}  {text}")


def _run_one(example: str, out: str) -> None:
    main = examples.load(example).main
    options = {"out": out} if "out" in inspect.signature(main).parameters else {}
    print(f"== {example}: {examples.describe(example)}")
    start = time.perf_counter()
    main(**options)
    print(f"   ({time.perf_counter() - start:.1f} s)\n")


def run(name: str, args: argparse.Namespace) -> int:
    if args.example is None:
        _list()
        return 0
    if args.example == "all":
        chosen = examples.names()
    else:
        try:
            chosen = [examples.resolve(args.example)]
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
    output_folder("--out", args.out, create=False)
    for example in chosen:
        _run_one(example, args.out)
    return 0
