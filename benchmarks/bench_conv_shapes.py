"""Convolutions on shapes from well-known networks (fastnn.bench.conv_shapes): each pass of
each shape on fastnn against PyTorch channels-last, interleaved rounds, GFLOP/s and % of
the measured FMA peak, and the geometric mean of the ratios per pass.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv_shapes.py \\
        --threads 2 [--filter 'resnet*'] [--json conv_shapes.json]

Under pytest (``pytest benchmarks``) each shape's three passes run once and are checked
against PyTorch's results.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import math
import platform

import numpy as np
import pytest

from fastnn import bench
from fastnn.bench import conv_shapes
from fastnn.bench.conv_shapes import PASSES, SHAPES


def measure(threads: int, pattern: str = "*", min_time: float = 0.3):
    import torch

    bench.pin_threads(threads)
    machine = bench.measure_machine()
    peak = machine["peak_gflops"] or float("nan")
    rows = []
    for shape in (s for s in SHAPES if fnmatch.fnmatch(s.name, pattern)):
        for which in PASSES:
            times = bench.time_interleaved(
                {"fastnn": conv_shapes.fastnn_pass(shape, which),
                 "torch-cl": conv_shapes.torch_pass(shape, which)}, min_time=min_time)
            gflops = shape.flops / times["fastnn"] / 1e9
            rows.append(dict(shape=shape.name, network=shape.network, what=shape.describe(),
                             pass_=which, fastnn_s=times["fastnn"], torch_s=times["torch-cl"],
                             ratio=times["torch-cl"] / times["fastnn"], fastnn_gflops=gflops,
                             torch_gflops=shape.flops / times["torch-cl"] / 1e9,
                             fastnn_peak=gflops / peak))
    return dict(date=str(datetime.date.today()), machine=machine, threads=threads,
                torch=torch.__version__, platform=platform.platform(), rows=rows)


def report(result) -> str:
    lines = [f"conv shapes, {result['threads']} threads, torch {result['torch']}, measured "
             f"peak {result['machine']['peak_gflops'] or float('nan'):.0f} GFLOP/s",
             f"{'shape':<22}{'pass':<18}{'fastnn':>10}{'torch-cl':>10}{'ratio':>8}"
             f"{'GFLOP/s':>9}{'% peak':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['shape']:<22}{r['pass_']:<18}{r['fastnn_s'] * 1e3:>8.3f}ms"
                     f"{r['torch_s'] * 1e3:>8.3f}ms{r['ratio']:>7.2f}x{r['fastnn_gflops']:>9.1f}"
                     f"{r['fastnn_peak']:>8.0%}")
    for which in PASSES:
        ratios = [r["ratio"] for r in result["rows"] if r["pass_"] == which]
        if ratios:
            geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
            lines.append(f"geometric mean {which}: {geo:.2f}x (min {min(ratios):.2f}x, "
                         f"{len(ratios)} shapes)")
    return "\n".join(lines)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_each_pass_matches_torch(shape):
    pytest.importorskip("torch")
    for which in PASSES:
        got = conv_shapes.fastnn_pass(shape, which)()
        want = conv_shapes.torch_result(shape, which)
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * scale, err_msg=which)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--filter", default="*")
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.threads, args.filter, args.min_time)
    print(report(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
