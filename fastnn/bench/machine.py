"""Machine probes: cache sizes, peak FLOP/s and bandwidth, the roof an op is judged by."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fastnn import _compat


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` gives it (``platform.processor()`` without lscpu)."""
    import platform
    import subprocess

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cache_sizes() -> dict[str, int]:
    """Bytes of each data cache level of CPU 0 as Linux reports them (``L1d``, ``L2``,
    ``L3``: the L3 is shared, the others per core); empty where /sys does not say."""
    from pathlib import Path

    sizes: dict[str, int] = {}
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        number = int(size.rstrip("KMG")) * units.get(size[-1], 1)
        sizes["L1d" if level == "1" else f"L{level}"] = number
    return sizes


def measure_machine() -> dict:
    """Peak float32 FLOP/s (FMA probe) and triad bandwidth, with the current threads: from
    memory (``bandwidth_gbs``) and, where the caches are known, from arrays that fit in L2
    and in L3 (``bandwidth_l2_gbs``, ``bandwidth_l3_gbs``): the roofs for data that size."""
    import fastnn

    native, _ = _compat.native()
    result: dict[str, Any] = {"peak_gflops": None, "bandwidth_gbs": None,
                              "caches": cache_sizes()}
    if native is not None:
        result["peak_gflops"] = native.measure_peak_flops(0.3) / 1e9 or None
        n = 1 << 25  # 3 x 128 MiB: far beyond the caches
        a, b, c = (np.ones(n, np.float32) for _ in range(3))
        result["bandwidth_gbs"] = native.measure_triad_bandwidth(a, b, c, 5) / 1e9
        threads = fastnn.get_num_threads()
        for level, total in (("L2", result["caches"].get("L2", 0) * threads),
                             ("L3", result["caches"].get("L3", 0))):
            if total:  # three arrays filling half the level
                n = max(total // 2 // 12, 1 << 12)
                a, b, c = (np.ones(n, np.float32) for _ in range(3))
                result[f"bandwidth_{level.lower()}_gbs"] = native.measure_triad_bandwidth(
                    a, b, c, 300) / 1e9
    return result


def bandwidth_roof(bytes_moved: float, machine: dict) -> tuple[str, Optional[float]]:
    """The bandwidth that bounds an op moving ``bytes_moved`` bytes: ``("L2", GB/s)`` when
    its data fits in the cores' L2, ``("L3", ...)`` in L3, else ``("memory", ...)``."""
    import fastnn

    caches = machine.get("caches") or {}
    if bytes_moved <= caches.get("L2", 0) * fastnn.get_num_threads() and machine.get(
            "bandwidth_l2_gbs"):
        return "L2", machine["bandwidth_l2_gbs"]
    if bytes_moved <= caches.get("L3", 0) and machine.get("bandwidth_l3_gbs"):
        return "L3", machine["bandwidth_l3_gbs"]
    return "memory", machine.get("bandwidth_gbs")
