"""``fastnn bench``: time each case for every implementation in one run and print ratios
against plain NumPy, with the machine's measured peak and bandwidth."""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import platform

from fastnn import bench
from fastnn._files import atomic_write
from fastnn.commands._common import FAILURE, CommandError, output_file, positive_number, threads_int


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=threads_int, default=2,
                        help="threads for every library, 1-1024 (default: 2)")
    parser.add_argument("--filter", default="*", help="glob over case names, e.g. 'relu*'")
    parser.add_argument("--min-time", type=positive_number, default=0.2,
                        help="seconds per measurement, > 0 (default: 0.2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--list", action="store_true",
                        help="list the cases (those --filter selects) and exit")


def run(name: str, args: argparse.Namespace) -> int:
    if args.json:  # refuse an unwritable --json now, not after minutes of timing
        output_file("--json", args.json)
    cases = [c for c in bench.all_cases() if fnmatch.fnmatch(c.name, args.filter)]
    if not cases:
        names = [c.name for c in bench.all_cases()]
        raise CommandError(f"--filter {args.filter!r}: matches none of the {len(names)} cases "
                           f"({', '.join(names[:4])}, ...); give a glob such as 'relu*'")
    if args.list:
        width = max(len(c.name) for c in cases) + 2
        for case in cases:
            print(f"{case.name:<{width}}{case.group:<12}{', '.join(case.impls)}")
        return 0
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            print(f"note: {var} is set; it slows NumPy's OpenBLAS. For a fair comparison run "
                  f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastnn bench`.")
    limits = bench.pin_threads(args.threads)
    machine = bench.measure_machine()
    blas = [p for p in limits.get_original_num_threads() and limits._original_info
            if p.get("user_api") == "blas"]
    print(f"fastnn bench  {datetime.date.today()}  {platform.machine()}  threads={args.threads}")
    for pool in blas:
        print(f"  BLAS: {pool.get('internal_api')} {pool.get('version')} "
              f"kernel={pool.get('architecture')}")
    if machine["peak_gflops"]:
        caches = " ".join(f"{k} {v >> 10} KiB" for k, v in machine["caches"].items())
        levels = ", ".join(f"{level} {machine[key]:.0f}" for level, key in
                           (("L2", "bandwidth_l2_gbs"), ("L3", "bandwidth_l3_gbs"))
                           if machine.get(key))
        print(f"  measured peak {machine['peak_gflops']:.0f} GFLOP/s (float32 FMA), "
              f"triad bandwidth {machine['bandwidth_gbs']:.1f} GB/s from memory"
              + (f" ({levels} GB/s from the caches)" if levels else ""))
        if caches:
            print(f"  caches: {caches} (L1d and L2 per core)")
    results = []
    width = max([28] + [len(c.name) + 2 for c in cases])
    header = f"{'case':<{width}}{'impl':<16}{'time':>12}{'vs numpy':>10}{'rate':>16}"
    print(header)
    print("-" * len(header))
    for case in cases:
        peak = (machine["peak_gflops"] or float("nan")) * case.peak_scale
        times = bench.time_interleaved(
            {impl: factory() for impl, factory in case.impls.items()}, min_time=args.min_time)
        for impl, seconds in times.items():
            ratio = times["numpy"] / seconds if "numpy" in times else float("nan")
            extra = {}
            if case.images:  # end to end: images/s, fraction of peak from the FLOP count
                extra["images_per_s"] = case.images / seconds
                rate = f"{case.images / seconds:,.0f} img/s"
                fraction = case.flops / seconds / 1e9 / peak
            elif case.flops:
                rate = f"{case.flops / seconds / 1e9:.1f} GFLOP/s"
                fraction = case.flops / seconds / 1e9 / peak
            else:  # memory-bound: against the bandwidth of the level its data fits in
                rate = f"{case.bytes_moved / seconds / 1e9:.1f} GB/s"
                roof, gbs = bench.bandwidth_roof(case.bytes_moved, machine)
                fraction = case.bytes_moved / seconds / 1e9 / (gbs or float("nan"))
            what = (("float64 " if case.peak_scale == 0.5 else "") + "FMA peak"
                    if case.images or case.flops else f"{roof} bandwidth")
            print(f"{case.name:<{width}}{impl:<16}{seconds * 1e6:>10.1f}us{ratio:>9.2f}x"
                  f"{rate:>16}  ({fraction:.0%} of {what})")
            results.append(dict(case=case.name, group=case.group, impl=impl, seconds=seconds,
                                ratio_vs_numpy=ratio, peak_fraction=fraction,
                                images=case.images, **extra))
    if args.json:
        try:
            with atomic_write(args.json, "w") as f:
                json.dump(dict(machine=machine, threads=args.threads, results=results), f,
                          indent=2)
        except OSError as exc:
            raise CommandError(f"cannot write --json {args.json} ({exc.strerror or exc})",
                               FAILURE) from None
    return 0
