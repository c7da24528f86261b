"""numba backend against plain NumPy (the reference) and the C++ backend, at the seed shapes.

Run with ``pytest benchmarks/bench_numba.py`` (pytest-benchmark). Threads are pinned to 2
for every pool (fastnn's, numba's, the BLAS under NumPy) so the comparison is fair. The
``cpu`` column appears only for ops fastnn._C implements itself (an inherited reference
op would be timed twice). Rows are grouped per case, so pytest-benchmark's table shows the
backends side by side; ``--benchmark-group-by=group`` is the default here.

``test_first_call_compile`` is its own row: a fresh interpreter with an empty
``NUMBA_CACHE_DIR`` imports fastnn, builds the backend and calls each seed op once, so it
measures what a user waits for the first time (per-op seconds are in ``extra_info``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import backends, ops
from fastnn.backends.reference import ReferenceBackend

pytest.importorskip("pytest_benchmark")
if "numba" not in backends.available():
    pytest.skip("numba backend unavailable", allow_module_level=True)

THREADS = 2
BATCH = 64


@pytest.fixture(scope="module", autouse=True)
def pinned_threads():
    from threadpoolctl import threadpool_limits

    before = fastnn.get_num_threads()
    with threadpool_limits(limits=THREADS):
        fastnn.set_num_threads(THREADS)
        yield
    fastnn.set_num_threads(before)


def _randn(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _conv(x_shape, w_shape):
    x, w, b = _randn(x_shape), _randn(w_shape, 1), _randn(w_shape[3:], 2)
    return "conv2d", lambda: ops.conv2d(x, w, b, padding="same", activation="relu")


def _pool(shape):
    x = _randn(shape)
    return "max_pool2d", lambda: ops.max_pool2d(x, kernel=2)


def _lrn(shape):
    x = _randn(shape)
    return "local_response_norm", lambda: ops.local_response_norm(x)


def _activation(name):
    x = _randn(10**6)
    out = np.empty_like(x)
    return name, lambda: getattr(ops, name)(x, out=out)


CASES = {
    "conv1 (64,28,28,1)->32 3x3": lambda: _conv((BATCH, 28, 28, 1), (3, 3, 1, 32)),
    "conv2 (64,14,14,32)->64 3x3": lambda: _conv((BATCH, 14, 14, 32), (3, 3, 32, 64)),
    "pool1 (64,28,28,32) 2x2": lambda: _pool((BATCH, 28, 28, 32)),
    "pool2 (64,14,14,64) 2x2": lambda: _pool((BATCH, 14, 14, 64)),
    "lrn (64,14,14,32)": lambda: _lrn((BATCH, 14, 14, 32)),
    "lrn (64,7,7,64)": lambda: _lrn((BATCH, 7, 7, 64)),
    "relu 1e6": lambda: _activation("relu"),
    "sigmoid 1e6": lambda: _activation("sigmoid"),
    "tanh 1e6": lambda: _activation("tanh"),
}


def _has_own(backend_name, op):
    if backend_name not in backends.available():
        return False
    if backend_name == "reference":
        return True
    return getattr(type(backends.get(backend_name)), op) is not getattr(ReferenceBackend, op)


@pytest.mark.parametrize("backend_name", ["reference", "numba", "cpu"])
@pytest.mark.parametrize("case", list(CASES))
def test_op(benchmark, case, backend_name):
    op, run = CASES[case]()
    if not _has_own(backend_name, op):
        pytest.skip(f"{backend_name} has no {op} of its own")
    benchmark.group = case
    benchmark.extra_info.update(backend=backend_name, threads=THREADS)
    with backends.use(backend_name):
        run()  # compile (numba) and warm caches outside the timing
        benchmark(run)


_COLD_START = """
import json, time
import numpy as np
start = time.perf_counter()
import fastnn
from fastnn import backends, ops
fastnn.set_num_threads(THREADS)
backends.get("numba")
built = time.perf_counter()
x = np.ones((2, 8, 8, 4), np.float32)
w = np.ones((3, 3, 4, 4), np.float32)
calls = {
    "conv2d": lambda: ops.conv2d(x, w, np.ones(4, np.float32), padding="same",
                                 activation="relu"),
    "max_pool2d": lambda: ops.max_pool2d(x, kernel=2),
    "local_response_norm": lambda: ops.local_response_norm(x),
    "relu": lambda: ops.relu(x),
}
seconds = {"import_and_build": built - start}
with backends.use("numba"):
    for name, call in calls.items():
        t = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - t
print(json.dumps(seconds))
""".replace("THREADS", str(THREADS))


def test_first_call_compile(benchmark, tmp_path):
    """Cold start with an empty cache: import, build the backend, first call of each op."""
    if benchmark.disabled:
        pytest.skip("compiles every seed kernel from scratch (~30 s); timed runs only")
    benchmark.group = "first-call compile (fresh NUMBA_CACHE_DIR)"
    found = {}

    def cold_start():
        cache = tmp_path / f"cache{len(found)}"
        result = subprocess.run([sys.executable, "-c", _COLD_START], capture_output=True,
                                text=True, check=True,
                                env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
        found.update(json.loads(result.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(cold_start, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_s": round(v, 3) for k, v in found.items()})
