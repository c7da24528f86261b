"""Every benchmark runs with fastnn, BLAS and torch pinned to the same thread count
(FASTNN_BENCH_THREADS, default 2), so ratios measured in one run are fair."""

from __future__ import annotations

import os

import pytest

from fastnn import bench

THREADS = int(os.environ.get("FASTNN_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    limits = bench.pin_threads(THREADS)
    yield THREADS
    limits.restore_original_limits()
