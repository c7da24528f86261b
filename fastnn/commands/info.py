"""``fastnn info``: what this installation has and what it will run with."""

from __future__ import annotations

import argparse
import json
import platform

import fastnn
from fastnn import _compat, backends


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def cpu_flags() -> list[str]:
    """The SIMD features the CPU reports that fastnn's kernels care about."""
    wanted = ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512_vnni",
              "avx512_fp16", "avx2", "fma", "f16c", "sse4_2", "amx_tile")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


def _kib(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and size % (1 << 20) == 0 else f"{size >> 10} KiB"


def collect() -> dict:
    native, _ = _compat.native()
    from threadpoolctl import threadpool_info

    info = {
        "fastnn": fastnn.__version__,
        "python": platform.python_version(),
        "numpy": __import__("numpy").__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": __import__("os").cpu_count(),
        "backends_available": backends.available(),
        "backends_unavailable": backends.unavailable(),
        "default_backend": backends.default_for().name,
        "cpu_features": cpu_flags(),
        "kernel_isa": native.selected_isa() if native else None,
        "detected_isa": native.detected_isa() if native else None,
        "gemm_kernel": native.gemm_kernel() if native else None,
        "openmp": native.openmp_enabled() if native else None,
        "caches": native.cache_sizes() if native else None,
        "gemm_blocking": {
            f"{m}x{n}x{k}": native.gemm_blocking(m, n, k)
            for m, n, k in ((1024, 1024, 1024), (64, 128, 3136))
        } if native else None,
        "fastnn_threads": fastnn.get_num_threads(),
        "thread_pools": [
            {k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                      "architecture", "filepath")}
            for pool in threadpool_info()
        ],
    }
    return info


def run(name: str, args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"fastnn {info['fastnn']}  (Python {info['python']}, NumPy {info['numpy']})")
    print(f"machine:        {info['machine']}, {info['cpu_count']} logical CPUs")
    print(f"backends:       {', '.join(info['backends_available'])}"
          f"  (default: {info['default_backend']})")
    for missing, why in info["backends_unavailable"].items():
        print(f"  missing {missing}: {why}")
    print(f"CPU features:   {' '.join(info['cpu_features']) or 'unknown'}")
    if info["kernel_isa"]:
        print(f"kernel ISA:     {info['kernel_isa']} (best on this CPU: {info['detected_isa']}; "
              "FASTNN_ISA lowers it)")
        print(f"GEMM kernel:    {info['gemm_kernel']}")
        print(f"OpenMP:         {'yes' if info['openmp'] else 'no'}")
        caches = info["caches"]
        print(f"caches:         L1d {_kib(caches['l1d'])}, L2 {_kib(caches['l2'])} per core, "
              f"L3 {_kib(caches['l3'])}  "
              f"(from {caches['source']}; the kernels' blocks follow them)")
        for shape, b in info["gemm_blocking"].items():
            print(f"  GEMM {shape:<13} tile {b['mr']}x{b['nr']}, kc {b['kc']}, mc {b['mc']}, "
                  f"nc {b['nc']}, {b['threads']} thread{'s' if b['threads'] != 1 else ''}")
    print(f"fastnn threads: {info['fastnn_threads']}")
    for pool in info["thread_pools"]:
        print(f"  {pool['user_api']:<7} {pool['internal_api']:<9} {pool['num_threads']} threads"
              f"  {pool.get('architecture') or ''} {pool['filepath']}")
    return 0
