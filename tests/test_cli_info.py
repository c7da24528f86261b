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
