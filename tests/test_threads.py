"""Native kernels release the GIL: several Python threads call them at once and every
result equals the serial one. Thread counts: set_num_threads reaches every pool, and
results are deterministic for a given count."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
from support import BACKEND_PARAMS

import fastnn
from fastnn import backends, ops

NAMES = [p.values[0] for p in BACKEND_PARAMS if not p.marks]


def _workload(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 12, 12, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)
    y = ops.conv2d(x, w, padding="same", activation="relu")
    p, argmax = ops.max_pool2d(y, kernel=2)
    n, s = ops.local_response_norm(p)
    logits = ops.linear(n.reshape(4, -1), rng.standard_normal((288, 10)).astype(np.float32))
    loss, probs = ops.softmax_cross_entropy(logits, np.arange(4))
    dx = ops.conv2d_backward_data(ops.relu_backward(np.ones_like(y), y), w, x.shape,
                                  padding="same")
    return [y, argmax, n, logits, probs, np.asarray(loss), dx]


@pytest.mark.parametrize("name", NAMES)
def test_concurrent_calls_match_serial(name):
    with backends.use(name):
        serial = [_workload(seed) for seed in range(8)]

    def run(seed):
        with backends.use(name):  # ContextVar: each worker thread sets its own backend
            return _workload(seed)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        concurrent_results = list(pool.map(run, range(8)))
    for expected, actual in zip(serial, concurrent_results):
        for e, a in zip(expected, actual):
            np.testing.assert_array_equal(a, e)


def test_set_num_threads_reaches_fastnn_and_blas():
    from threadpoolctl import threadpool_info

    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert all(p["num_threads"] == 1 for p in blas)
    finally:
        fastnn.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads: n must be an int >= 1, got 0"):
        fastnn.set_num_threads(0)


@pytest.mark.parametrize("name", NAMES)
def test_results_are_deterministic_for_a_thread_count(name):
    before = fastnn.get_num_threads()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 14, 14, 32)).astype(np.float32)
    dy = rng.standard_normal((16, 14, 14, 64)).astype(np.float32)
    try:
        results = {}
        for threads in (1, 2, 2):
            fastnn.set_num_threads(threads)
            with backends.use(name):
                dw = ops.conv2d_backward_weights(dy, x, (3, 3, 32, 64), padding="same")
                db = ops.bias_backward(dy)
            results.setdefault(threads, []).append((dw, db))
        for a, b in zip(*results[2]):
            np.testing.assert_array_equal(a, b)  # same thread count: bit-identical
        for a, b in zip(results[1][0], results[2][0]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    finally:
        fastnn.set_num_threads(before)


# --------------------------------------------------------------------------- subnormals

TINY = np.float32(1e-40)  # a float32 subnormal


def _subnormal_ops(threads):
    """Ops whose results are subnormal (IEEE) or zero (flushed), on 1 or 2 threads."""
    fastnn.set_num_threads(threads)
    big = np.full((256, 256), TINY, np.float32)  # big enough for the GEMM to fork
    eye = np.eye(256, dtype=np.float32)
    x = np.full((2, 6, 6, 16), TINY, np.float32)
    w = np.zeros((3, 3, 16, 16), np.float32)
    w[1, 1] = np.eye(16)
    return [ops.gemm(big, eye), ops.conv2d(x, w, padding="same"),
            ops.sigmoid_backward(np.full(100_000, TINY, np.float32),
                                 np.full(100_000, 0.5, np.float32))]


@pytest.mark.parametrize("threads", [1, 2])
def test_flush_denormals_is_off_by_default_and_scoped(threads):
    before = fastnn.get_num_threads()
    try:
        with backends.use("cpu"):
            assert not fastnn.get_flush_denormals()
            for y in _subnormal_ops(threads):  # IEEE: the subnormal survives, as in NumPy
                assert np.all(y[y != 0] > 0) and np.count_nonzero(y) > 0
            with fastnn.flush_denormals():
                assert fastnn.get_flush_denormals()
                assert not any(np.count_nonzero(y) for y in _subnormal_ops(threads))
                # NumPy on this thread keeps IEEE arithmetic: the mode is per kernel call.
                assert TINY * np.float32(1.0) == TINY
            assert not fastnn.get_flush_denormals()
            assert all(np.count_nonzero(y) for y in _subnormal_ops(threads))
        with pytest.raises(TypeError, match="on must be a bool"):
            fastnn.set_flush_denormals(1)
    finally:
        fastnn.set_num_threads(before)


def test_learner_flushes_while_it_runs_the_model():
    seen = []

    class Probe(fastnn.nn.Layer):
        def forward(self, X):
            seen.append(fastnn.get_flush_denormals())
            return X, lambda D: D

    for flag in (True, False):
        learner = fastnn.nn.Learner(fastnn.nn.Sequential(Probe(), fastnn.nn.Linear(2, 1, rng=0)),
                                    fastnn.nn.mse_loss, fastnn.nn.SGD(0.1),
                                    flush_denormals=flag)
        X, Y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
        learner.fit_batch(X, Y)
        learner.predict(X)
        learner.evaluate(X, Y)
        assert seen[-3:] == [flag] * 3
        assert not fastnn.get_flush_denormals()


# --------------------------------------------------------------------------- thread count flips

def _flip_workload():
    """(name, call) pairs whose kernels split work by the thread count: every one reads
    the count once per call, so a call's result is its result at 1 or at 2 threads."""
    rng = np.random.default_rng(7)
    f32 = np.float32
    dy_conv = rng.standard_normal((8, 16, 16, 32)).astype(f32)
    x_conv = rng.standard_normal((8, 16, 16, 16)).astype(f32)
    x_first = rng.standard_normal((8, 24, 24, 3)).astype(f32)
    dy_first = rng.standard_normal((8, 24, 24, 32)).astype(f32)
    x_wide = rng.standard_normal((4, 12, 12, 40)).astype(f32)
    dy_wide = rng.standard_normal((4, 10, 10, 24)).astype(f32)
    a = rng.standard_normal((192, 160)).astype(f32)
    b = rng.standard_normal((160, 144)).astype(f32)
    pool_x = rng.standard_normal((8, 32, 32, 16)).astype(f32)
    lrn_x = rng.standard_normal((16, 14, 14, 32)).astype(f32)
    rows = rng.standard_normal((4096, 48)).astype(f32)
    logits = rng.standard_normal((4096, 10)).astype(f32)
    labels = rng.integers(0, 10, 4096)
    return [
        ("conv2d_backward_weights (indirect)",
         lambda: ops.conv2d_backward_weights(dy_conv, x_conv, (3, 3, 16, 32), padding=1)),
        ("conv2d_backward_weights (direct)",
         lambda: ops.conv2d_backward_weights(dy_first, x_first, (3, 3, 3, 32), padding=1)),
        ("conv2d_backward_weights (im2col)",
         lambda: ops.conv2d_backward_weights(dy_wide, x_wide, (3, 3, 40, 24))),
        ("conv2d", lambda: ops.conv2d(x_conv, rng_w, padding=1)),
        ("gemm", lambda: ops.gemm(a, b)),
        ("max_pool2d", lambda: ops.max_pool2d(pool_x, kernel=3, stride=2, padding=1)[0]),
        ("avg_pool2d", lambda: ops.avg_pool2d(pool_x, kernel=2)),
        ("local_response_norm", lambda: ops.local_response_norm(lrn_x)[0]),
        ("bias_backward", lambda: ops.bias_backward(rows)),
        ("softmax_cross_entropy",
         lambda: np.asarray(ops.softmax_cross_entropy(logits, labels)[0])),
        ("mse_loss", lambda: np.asarray(ops.mse_loss(rows, rows[::-1].copy())[0])),
    ]


rng_w = np.random.default_rng(8).standard_normal((3, 3, 16, 32)).astype(np.float32)


def test_results_stay_exact_while_the_thread_count_flips():
    """Several threads mix ops while another flips set_num_threads between 1 and 2: every
    result must be bit-identical to the op's serial result at 1 or at 2 threads (a kernel
    that read the count twice summed per-thread partials it never zeroed)."""
    import threading
    import time

    before = fastnn.get_num_threads()
    failures = []
    try:
        with backends.use("cpu"):
            work = _flip_workload()
            expected = {}
            for threads in (1, 2):
                fastnn.set_num_threads(threads)
                for name, call in work:
                    expected.setdefault(name, []).append(call())
        stop = threading.Event()

        def flip():
            while not stop.is_set():
                for threads in (2, 1):
                    fastnn._C.set_num_threads(threads)
                    time.sleep(0)

        def worker(offset):
            with backends.use("cpu"):
                i = offset
                while not stop.is_set():
                    name, call = work[i % len(work)]
                    i += 1
                    got = call()
                    if not any(np.array_equal(got, e) for e in expected[name]):
                        failures.append(name)
                        stop.set()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        threads.append(threading.Thread(target=flip))
        for t in threads:
            t.start()
        stop.wait(3.0)
        stop.set()
        for t in threads:
            t.join()
    finally:
        fastnn.set_num_threads(before)
    assert not failures, f"results changed while the thread count flipped: {failures}"
