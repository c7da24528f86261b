"""Turn a ``fastnn bench --json`` file into the Markdown tables of BENCHMARKS.md.

    python benchmarks/report.py benchmarks/results-latest.json > /tmp/tables.md

One table per group; one row per case with each implementation's time, the rate
(GFLOP/s, GB/s or images/s) of fastnn-cpu, and fastnn-cpu's ratio to NumPy and to the
fastest PyTorch form measured in the same run.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} us"


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    machine = data["machine"]
    print(f"Threads: {data['threads']}; measured peak {machine['peak_gflops']:.0f} GFLOP/s, "
          f"triad bandwidth {machine['bandwidth_gbs']:.1f} GB/s.\n")
    groups: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for row in data["results"]:
        groups[row["group"]][row["case"]][row["impl"]] = row
    for group, cases in groups.items():
        impls = sorted({impl for rows in cases.values() for impl in rows},
                       key=lambda i: (not i.startswith("numpy"), not i.startswith("fastnn"), i))
        print(f"### {group}\n")
        print("| case | " + " | ".join(impls) + " | cpu vs numpy | cpu vs best torch |")
        print("|---" * (len(impls) + 3) + "|")
        for case, rows in cases.items():
            cells = []
            for impl in impls:
                row = rows.get(impl)
                if row is None:
                    cells.append("")
                elif row.get("images_per_s"):
                    cells.append(f"{row['images_per_s']:,.0f} img/s")
                else:
                    cells.append(_time(row["seconds"]))
            cpu = rows.get("fastnn-cpu")
            torch_times = [r["seconds"] for i, r in rows.items() if i.startswith("torch")]
            vs_numpy = f"{cpu['ratio_vs_numpy']:.2f}x" if cpu else ""
            vs_torch = f"{min(torch_times) / cpu['seconds']:.2f}x" if cpu and torch_times else ""
            print(f"| {case} | " + " | ".join(cells) + f" | {vs_numpy} | {vs_torch} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
