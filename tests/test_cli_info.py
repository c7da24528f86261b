"""`fastnn info` reports the version, backends (and why one is missing), CPU features,
the kernel ISA and GEMM micro-kernel, and the thread pools."""

from __future__ import annotations

import json

import fastnn
from fastnn import backends
from fastnn.cli import main


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"fastnn {fastnn.__version__}" in out
    backends_line = next(line for line in out.splitlines() if line.startswith("backends:"))
    assert "reference" in backends_line and "cpu" in backends_line
    for missing in backends.unavailable():
        assert f"missing {missing}:" in out
    assert "kernel ISA:" in out and "GEMM kernel:" in out
    assert "fastnn threads:" in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"reference", "cpu"} <= set(info["backends_available"])
    assert info["kernel_isa"] in ("portable", "avx2", "avx512")
    assert info["gemm_kernel"].split()[0] == info["kernel_isa"]
    assert info["fastnn_threads"] == fastnn.get_num_threads()
    assert any(pool["user_api"] == "blas" for pool in info["thread_pools"])


def test_info_reports_the_caches_the_kernels_are_blocked_for(capsys):
    from fastnn import _compat
    from fastnn.bench.machine import cache_sizes  # sysfs, read in Python

    native, _ = _compat.native()
    caches = native.cache_sizes()
    sources = caches["source"].split(",")
    assert len(sources) == 3 and set(sources) <= {"sysfs", "sysconf", "default"}
    sysfs = cache_sizes()
    for level, (key, name) in enumerate((("l1d", "L1d"), ("l2", "L2"), ("l3", "L3"))):
        assert caches[key] > 0
        if name in sysfs:
            assert sources[level] == "sysfs" and caches[key] == sysfs[name], (key, caches)
    # The GEMM blocks follow them: a B micro-panel (kc x nr) within about twice L1d, a
    # B block (kc x nc) within half of L2.
    b = native.gemm_blocking(2048, 2048, 2048)
    assert b["kc"] * b["nr"] * 4 <= 2 * caches["l1d"] or b["kc"] == 128
    assert b["kc"] * b["nc"] * 4 <= caches["l2"] // 2 or b["nc"] == b["nr"]
    assert b["kernel"] == native.gemm_kernel()
    assert native.gemm_blocking(8, 8, 8, "float64", 3)["threads"] == 1  # too small to fork

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"L1d {caches['l1d'] >> 10} KiB" in out and f"(from {caches['source']};" in out
    assert "GEMM 64x128x3136" in out
