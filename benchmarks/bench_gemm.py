"""GEMM: fastnn's cpu backend against NumPy (its BLAS) and PyTorch, float32.

Cases: square n = 256 ... 2048, and the seed network's dense layers at batch 64 (forward
x @ w, weight gradient x.T @ dy, input gradient dy @ w.T). Every library writes into a
preallocated output and is pinned to the same thread count (benchmarks/conftest.py,
FASTNN_BENCH_THREADS, default 2). GFLOP/s (median and best) are in ``extra_info``; rows
are grouped per case so the table shows the libraries side by side.

For a fair NumPy number run without the OpenBLAS tuning variables this machine sets:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest benchmarks/bench_gemm.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import _compat, backends

pytest.importorskip("pytest_benchmark")

# name -> (m, n, k, trans_a, trans_b): C (m x n) = op(A) (m x k) @ op(B) (k x n)
CASES = {
    "square-256": (256, 256, 256, False, False),
    "square-512": (512, 512, 512, False, False),
    "square-1024": (1024, 1024, 1024, False, False),
    "square-2048": (2048, 2048, 2048, False, False),
    # The seed's dense layers, batch 64: 3136 -> 128 -> 256 -> 10.
    "fc1-forward": (64, 128, 3136, False, False),
    "fc2-forward": (64, 256, 128, False, False),
    "fc3-forward": (64, 10, 256, False, False),
    "fc1-dW": (3136, 128, 64, True, False),   # x.T @ dy
    "fc2-dW": (128, 256, 64, True, False),
    "fc3-dW": (256, 10, 64, True, False),
    "fc1-dx": (64, 3136, 128, False, True),   # dy @ w.T
    "fc2-dx": (64, 128, 256, False, True),
    "fc3-dx": (64, 256, 10, False, True),
}
LIBRARIES = ["fastnn", "numpy", "torch"]


def _operands(m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    return a, b, np.empty((m, n), np.float32)


def _runner(library, a, b, out, trans_a, trans_b):
    if library == "fastnn":
        if "cpu" not in backends.available():
            pytest.skip("cpu backend unavailable")
        gemm = backends.get("cpu").gemm
        return lambda: gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
    if library == "numpy":
        lhs, rhs = (a.T if trans_a else a), (b.T if trans_b else b)  # BLAS takes the views
        return lambda: np.matmul(lhs, rhs, out=out)
    torch, why = _compat.torch()
    if torch is None:
        pytest.skip(why)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    lhs, rhs = (ta.T if trans_a else ta), (tb.T if trans_b else tb)
    return lambda: torch.matmul(lhs, rhs, out=tout)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("case", list(CASES))
def test_gemm(benchmark, case, library):
    m, n, k, trans_a, trans_b = CASES[case]
    a, b, out = _operands(m, n, k, trans_a, trans_b)
    run = _runner(library, a, b, out, trans_a, trans_b)
    run()  # warm: workspaces, thread pools, page faults
    benchmark.group = f"gemm {case} {m}x{n}x{k}"
    benchmark(run)
    flops = 2.0 * m * n * k
    benchmark.extra_info["flops"] = flops
    if benchmark.stats is not None:  # None under --benchmark-disable (the test suite's run)
        stats = benchmark.stats.stats
        benchmark.extra_info.update(gflops_median=flops / stats.median / 1e9,
                                    gflops_best=flops / stats.min / 1e9)
