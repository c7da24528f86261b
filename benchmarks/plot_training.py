"""Plot the seed convnet's training and inference throughput (images/s) per batch size.

Reads the JSON of ``fastnn bench --filter 'seed_*' --json PATH`` (``--json PATH``), or runs
:func:`fastnn.bench.training_cases` itself, and writes
``benchmarks/training_images_per_s.png``: two panels (training step, inference), images/s
against batch size, one line per implementation.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        fastnn bench --filter 'seed_*' --json /tmp/seed.json
    python benchmarks/plot_training.py --json /tmp/seed.json
    python benchmarks/plot_training.py --threads 2          # measure here instead
"""

from __future__ import annotations

import argparse
import json
import os
import re

from fastnn import bench

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = re.compile(r"seed_(train|infer)/bs(\d+)$")


def measure(threads: int, min_time: float) -> list[dict]:
    """Results in the ``fastnn bench --json`` form, for the training cases only."""
    bench.pin_threads(threads)
    results = []
    for case in bench.training_cases():
        times = bench.time_interleaved(
            {impl: factory() for impl, factory in case.impls.items()}, min_time=min_time)
        for impl, seconds in times.items():
            results.append(dict(case=case.name, impl=impl, seconds=seconds,
                                images=case.images, images_per_s=case.images / seconds))
            print(f"{case.name:<18}{impl:<16}{case.images / seconds:>10,.0f} img/s")
    return results


def series(results: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``{"train"|"infer": {impl: [(batch, images/s), ...]}}`` from bench results."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {"train": {}, "infer": {}}
    for row in results:
        match = NAME.match(row["case"])
        if not match:
            continue
        rate = row.get("images_per_s") or row["images"] / row["seconds"]
        out[match.group(1)].setdefault(row["impl"], []).append((int(match.group(2)), rate))
    for panel in out.values():
        for points in panel.values():
            points.sort()
    return out


def plot(data, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, (kind, label) in zip(axes, (("train", "training step (fwd + bwd + Adam)"),
                                        ("infer", "inference (forward, eval mode)"))):
        for impl, points in sorted(data[kind].items()):
            batches, rates = zip(*points)
            ax.plot(batches, rates, marker="o", label=impl,
                    linestyle="--" if impl.startswith("torch") else "-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({b for pts in data[kind].values() for b, _ in pts}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/s")
        ax.set_ylim(bottom=0)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="a `fastnn bench --json` file (default: measure now)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--out", default=os.path.join(HERE, "training_images_per_s.png"))
    args = parser.parse_args()
    if args.json:
        with open(args.json, encoding="utf-8") as f:
            report = json.load(f)
        results, threads = report["results"], report.get("threads", "?")
        clock = report.get("clock", "wall clock")
    else:
        results, threads = measure(args.threads, args.min_time), args.threads
        clock = "wall clock"
    plot(series(results), args.out, f"seed MNIST convnet, float32, {threads} thread(s), "
         f"{clock}: images/s (higher is better)")


if __name__ == "__main__":
    main()
