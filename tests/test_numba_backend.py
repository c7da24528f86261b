"""What is particular to the numba backend: lazy compilation, the on-disk cache, the
thread count, and the dropout mask being the reference's bit for bit. (Op-by-op agreement
with the reference is the parity suite's job: test_parity.py runs every backend.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("numba")

from support import assert_close  # noqa: E402

import fastnn  # noqa: E402
from fastnn import backends, ops  # noqa: E402

pytestmark = pytest.mark.skipif("numba" not in backends.available(),
                                reason="numba backend unavailable")


def _run(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    # cwd: tests/, so `fastnn` is the installed package, not the source folder.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=300, check=False,
                            cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


_FIRST_USE = """
import json, sys
import numpy as np
import fastnn
imported_at_start = "numba" in sys.modules
from fastnn import backends, ops
backend = backends.get("numba")
from fastnn.backends.numba import activations as _activations
before = len(_activations._activation_kernel.signatures)
with backends.use("numba"):
    y = ops.relu(np.array([-1.0, 0.5, 2.0], dtype=np.float32))
stats = _activations._activation_kernel.stats
print(json.dumps(dict(
    numba_on_import=imported_at_start, compiled_before=before,
    compiled_after=len(_activations._activation_kernel.signatures), y=y.tolist(),
    hits=sum(stats.cache_hits.values()), misses=sum(stats.cache_misses.values()))))
"""


def test_compiles_on_first_call_and_reuses_the_disk_cache(tmp_path):
    cache = str(tmp_path / "numba-cache")
    first = _run(_FIRST_USE, NUMBA_CACHE_DIR=cache)
    assert first["numba_on_import"] is False  # import fastnn leaves numba alone
    assert first["compiled_before"] == 0  # building the backend compiled nothing
    assert first["compiled_after"] == 1
    assert first["y"] == [0.0, 0.5, 2.0]
    assert first["misses"] == 1 and first["hits"] == 0
    assert any(name.endswith(".nbi") for _, _, files in os.walk(cache) for name in files)

    second = _run(_FIRST_USE, NUMBA_CACHE_DIR=cache)
    assert second["hits"] == 1 and second["misses"] == 0
    assert second["y"] == first["y"]


def test_backend_built_after_set_num_threads_uses_that_count():
    code = """
import json, fastnn
fastnn.set_num_threads(1)  # numba is not imported yet, so only fastnn remembers it
from fastnn import backends
backends.get("numba")
import numba
print(json.dumps(dict(threads=numba.get_num_threads())))
"""
    assert _run(code)["threads"] == 1


def test_ops_follow_set_num_threads_in_any_thread():
    import numba

    before = fastnn.get_num_threads()
    seen = []

    def work():
        with backends.use("numba"):
            ops.relu(np.ones(10))
        seen.append(numba.get_num_threads())

    try:
        fastnn.set_num_threads(1)
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        work()
    finally:
        fastnn.set_num_threads(before)
    assert seen == [1, 1]


def _blas_threads():
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_products_run_the_blas_single_threaded_and_restore_its_count():
    """NumPy's BLAS (the libraries loaded when the backend first looks, NumPy's among them:
    a BLAS another library loads later, PyTorch's or SciPy's, is not one NumPy calls) runs
    single-threaded inside products, nested or from several threads, and gets its count
    back after."""
    from fastnn.backends.numba import common

    def numpy_blas_threads():
        return {pool.get_num_threads() for pool in common._blas_controllers()}

    before = fastnn.get_num_threads()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 30)), rng.standard_normal((30, 20))
    try:
        fastnn.set_num_threads(2)
        assert numpy_blas_threads() == {2}
        with common.single_threaded_blas():
            assert numpy_blas_threads() == {1}
            with common.single_threaded_blas():  # nested: the outer exit restores
                pass
            assert numpy_blas_threads() == {1}
        assert numpy_blas_threads() == {2}

        errors = []

        def work():
            try:
                for _ in range(50):
                    with backends.use("numba"):
                        y = ops.linear(a, b)
                    np.testing.assert_allclose(y, a @ b, rtol=1e-12)
            except Exception as exc:  # reported below, in the main thread
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not errors
        assert numpy_blas_threads() == {2}
    finally:
        fastnn.set_num_threads(before)


def _openblas_in_numpy():
    from threadpoolctl import threadpool_info

    return any(pool["internal_api"] == "openblas" for pool in threadpool_info()
               if pool["user_api"] == "blas")


@pytest.mark.parametrize("path", ["cblas", "python"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n, trans_a, trans_b", [
    (197, 33, 50, False, False),  # split by rows, uneven blocks
    (50, 33, 197, False, True),   # wider than tall: by columns
    (84, 57, 84, True, True),     # square, both operands transposed views
    (31, 5, 31, False, False),    # below OpenBLAS's threading size: NumPy's call, one block
    (7, 3, 5, True, False)])      # fewer rows than a block
@pytest.mark.parametrize("threads", [2, 3])
def test_split_products_match_numpy(path, m, k, n, trans_a, trans_b, threads, dtype, monkeypatch):
    """A product split into row or column blocks equals NumPy's, with and without ``out``,
    with ``alpha`` and ``beta``, and leaves the BLAS thread count as it was: on OpenBLAS's
    CBLAS from numba's pool, and on NumPy's matmul over Python threads (the path where
    NumPy's BLAS is another library). The first three are above OpenBLAS's threading size
    (m * n * k of 262,144), so plain products take the split too."""
    from fastnn.backends.numba import common

    if path == "cblas":
        # The CBLAS path wherever NumPy's BLAS is OpenBLAS (NumPy's wheels), and no other:
        # with another BLAS the same checks run on the fallback.
        assert (common._cblas(np.dtype(dtype)) is not None) == _openblas_in_numpy()
    else:
        monkeypatch.setitem(common._cblas_state, "found", True)
        monkeypatch.setitem(common._cblas_state, "fns", None)
        monkeypatch.setattr(common, "SPLIT_MIN_FLOPS", 0.0)
    rng = np.random.default_rng(m * n + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
    blas = set(_blas_threads())
    expected = a_op @ b_op
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(common.matmul(a_op, b_op, threads=threads), expected, **tol)
    out = np.full((m, n), np.nan, dtype)
    assert common.matmul(a_op, b_op, out=out, threads=threads) is out
    np.testing.assert_allclose(out, expected, **tol)
    assert set(_blas_threads()) == blas
    with backends.use("numba"):
        got = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5)
        np.testing.assert_allclose(got, 0.5 * expected, **tol)
        c = rng.standard_normal((m, n)).astype(dtype)
        want = 0.5 * expected - 2.0 * c
        assert ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=-2.0, out=c) is c
        np.testing.assert_allclose(c, want, **tol)
    assert set(_blas_threads()) == blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_outside_the_cblas_path_match_numpy(dtype):
    """Operands the CBLAS path does not take go to NumPy's matmul and still come out right:
    a strided view, an ``out`` overlapping an operand, integers, mixed dtypes, an empty
    inner dimension."""
    from fastnn.backends.numba import common

    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 60)).astype(dtype)
    b = rng.standard_normal((60, 30)).astype(dtype)
    strided = a[:, ::2]
    np.testing.assert_allclose(common.matmul(strided, b[:30]), strided @ b[:30], rtol=1e-5)
    square = rng.standard_normal((30, 30)).astype(dtype)
    expected = square @ square
    np.testing.assert_allclose(common.matmul(square, square, out=square), expected, rtol=1e-5)
    ints = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(common.matmul(ints, ints.T), ints @ ints.T)
    other = b.astype(np.float32 if dtype == np.float64 else np.float64)
    np.testing.assert_allclose(common.matmul(a, other), a @ other, rtol=1e-12)
    empty = common.matmul(np.ones((3, 0), dtype), np.ones((0, 4), dtype))
    np.testing.assert_array_equal(empty, np.zeros((3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, keep_prob, seed", [
    (1, 0.5, 0), (1000, 0.5, 1), (4097, 0.9, 2**64 - 1), (333, 0.1, 12345), (64, 1.0, 7)])
def test_dropout_matches_the_reference_bit_for_bit(size, keep_prob, seed, dtype):
    x = np.random.default_rng(seed % 1000).standard_normal((size, 3)).astype(dtype)
    x[0, 0] = np.nan  # NaN * 0 stays NaN in both
    with backends.use("reference"):
        y_ref, mask_ref = ops.dropout(x, keep_prob=keep_prob, seed=seed)
        dx_ref = ops.dropout_backward(x, mask_ref, keep_prob=keep_prob)
    with backends.use("numba"):
        y, mask = ops.dropout(x, keep_prob=keep_prob, seed=seed)
        dx = ops.dropout_backward(x, mask, keep_prob=keep_prob)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, mask_ref)
    assert y.tobytes() == y_ref.tobytes()
    assert dx.tobytes() == dx_ref.tobytes()


def test_dropout_mask_does_not_depend_on_the_thread_count():
    import numba

    x = np.ones(100_003, dtype=np.float32)
    before = fastnn.get_num_threads()
    masks = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            fastnn.set_num_threads(threads)
            with backends.use("numba"):
                masks.append(ops.dropout(x, keep_prob=0.3, seed=99)[1])
    finally:
        fastnn.set_num_threads(before)
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])


def test_is_the_default_when_the_native_module_is_hidden():
    code = """
import json
from fastnn import backends
print(json.dumps(dict(available=backends.available(), default=backends.current().name)))
"""
    found = _run(code, FASTNN_DISABLE_NATIVE="1", FASTNN_BACKEND="")
    assert "numba" in found["available"] and "reference" in found["available"]
    assert "cpu" not in found["available"]
    assert found["default"] == "numba"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, options", [
    ((2, 9, 9, 1), (3, 3, 1, 8), dict(padding=1)),
    ((3, 11, 10, 2), (3, 3, 2, 5), dict(stride=2, padding=1)),
    ((2, 9, 8, 3), (5, 5, 3, 7), dict(padding=2, dilation=2)),
    ((1, 8, 8, 1), (2, 2, 1, 4), dict(stride=3)),
])
def test_few_channel_backward_data_kernel_matches_the_reference(dtype, x_shape, w_shape,
                                                                options, monkeypatch):
    """The few-input-channel backward-data goes to the reference by default; the numba
    kernel it would otherwise run stays correct."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_shape = ops.conv2d(np.zeros(x_shape, dtype), w, **options).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    with backends.use("numba") as numba_backend:
        default = ops.conv2d_backward_data(dy, w, x_shape, **options)
        monkeypatch.setattr(numba_backend, "numba_few_channel_data", True)
        got = ops.conv2d_backward_data(dy, w, x_shape, **options)
    with backends.use("reference"):
        expected = ops.conv2d_backward_data(dy, w, x_shape, **options)
    assert_close(got, expected)
    np.testing.assert_array_equal(default, expected)  # the default is the reference's


@pytest.mark.parametrize("size", [1, 100, 2048, 5000])
def test_float32_tanh_kernel_matches_the_reference(size, monkeypatch):
    """On one numba thread float32 tanh is NumPy's; the kernel for more threads stays
    correct through the op (NaN, infinities and signed zero included)."""
    from fastnn.backends.numba import activations

    x = (np.random.default_rng(size).standard_normal(size) * 4).astype(np.float32)
    x[: min(size, 5)] = [np.nan, np.inf, -np.inf, -0.0, 0.1][: min(size, 5)]
    monkeypatch.setattr(activations, "_TANH_THREADS", 1)
    with backends.use("numba"):
        got = ops.tanh(x)
    assert_close(got, np.tanh(x))
    assert np.array_equal(np.signbit(got), np.signbit(np.tanh(x)))


def _ordered(bits):
    """float32 bit patterns as integers that count ulps across zero."""
    bits = bits.astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def test_float32_tanh_kernel_within_5_ulp_odd_and_saturating():
    """The kernel's rational function (the cpu backend's coefficients) against the correctly
    rounded tanh: every 97th float from 0 to the largest finite one and every 5th in
    [1, 9.02], where the quotient sits just below 1; odd; exactly +-1 from 9.010914."""
    from fastnn.backends.numba import activations

    inf_bits = np.float32(np.inf).view(np.int32)
    sweep = np.arange(0, inf_bits, 97, dtype=np.int32).view(np.float32)
    near_one = np.arange(np.float32(1).view(np.int32), np.float32(9.02).view(np.int32), 5,
                         dtype=np.int32).view(np.float32)
    for x in (sweep, near_one, -sweep):
        got = np.empty_like(x)
        activations._tanh32_serial(x, got)
        want = np.tanh(x.astype(np.float64)).astype(np.float32)
        err = np.abs(_ordered(got.view(np.int32)) - _ordered(want.view(np.int32)))
        worst = int(err.argmax())
        assert err[worst] <= 5, f"tanh({x[worst]!r}) is {err[worst]} ulp off"
    x = np.array([0.0, 1e-30, 1e-40, 8.9, 9.0109, 9.010914, 9.1, 44, 1e30,
                  np.finfo(np.float32).max], np.float32)
    y, y_neg = np.empty_like(x), np.empty_like(x)
    activations._tanh32_serial(x, y)
    activations._tanh32_serial(-x, y_neg)
    np.testing.assert_array_equal(y_neg, -y)
    assert np.all(np.abs(y) <= 1)
    np.testing.assert_array_equal(y[x >= np.float32(9.010914)], 1)
