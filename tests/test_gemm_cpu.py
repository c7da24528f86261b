"""fastnn._C.gemm / linear and the cpu backend's gemm / linear against float64 NumPy.

Covers the four transpose combinations, alpha/beta (BLAS semantics for beta == 0), both
dtypes, sizes that are not multiples of any block size, degenerate sizes, the fused bias and
activation epilogue, bad input at the binding, concurrent calls from several Python threads,
and every micro-kernel: the best ISA runs in-process, each lower one (FASTNN_ISA is read once
per process) reruns this module in a subprocess.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest

from fastnn import _compat, backends

C, _why = _compat.native()
pytestmark = pytest.mark.skipif(C is None, reason=f"fastnn._C unavailable: {_why}")

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 17, 33, 65, 127, 257]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
ACTIVATIONS = {
    None: lambda v: v,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
}


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _operands(m, n, k, trans_a, trans_b, dtype, seed=0):
    rng = _rng(m, n, k, trans_a, trans_b, seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def _reference(a, b, c, trans_a, trans_b, alpha, beta):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    a64 = a64.T if trans_a else a64
    b64 = b64.T if trans_b else b64
    ref = alpha * (a64 @ b64)
    if beta != 0.0:
        ref += beta * c.astype(np.float64)
    return ref


def _assert_close(got, ref, k, dtype):
    # float32 error grows like sqrt(k) for random-sign sums; scale by the operands' size.
    if np.dtype(dtype) == np.float32:
        rtol = 1e-4 * max(1.0, np.sqrt(k) / 4)
    else:
        rtol = 1e-10
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


def _check_gemm(m, n, k, trans_a, trans_b, dtype, alpha=1.0, beta=0.0):
    a, b, c = _operands(m, n, k, trans_a, trans_b, dtype)
    out = c.copy()
    if beta == 0.0:
        out[...] = np.nan  # must be ignored, not propagated
    C.gemm(a, b, out, trans_a, trans_b, alpha, beta)
    _assert_close(out, _reference(a, b, c, trans_a, trans_b, alpha, beta), k, dtype)


# ----------------------------------------------------------------------------- parity

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("size", SIZES)
def test_square_sizes(size, trans_a, trans_b, dtype):
    _check_gemm(size, size, size, trans_a, trans_b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("m, n, k", [
    (1, 65, 33), (65, 1, 33), (33, 65, 1), (1, 1, 300), (14, 32, 5), (15, 33, 7),
    (64, 10, 256), (256, 10, 64), (64, 256, 10), (64, 128, 600), (200, 33, 1100),
    (29, 300, 17), (130, 2100, 40),
    # Outputs wider than 256 columns pack A: row counts around the 6-row panels and the
    # 16-row groups they are transposed in.
    (1, 300, 20), (5, 257, 33), (16, 300, 17), (17, 270, 100), (23, 513, 31), (50, 260, 16),
    # A transposed A whose rows are a page or more apart, multiplied by two or more
    # panels over several K blocks, is packed however narrow the output.
    (1030, 130, 900),
])
def test_rectangular_sizes(m, n, k, trans_a, trans_b, dtype):
    _check_gemm(m, n, k, trans_a, trans_b, dtype)


# The dense register tile follows the output width (the one padding the fewest columns):
# widths that pick each of the selected ISA's tiles, each with row and column tails.
DENSE_WIDTHS = [3, 5, 9, 17, 20, 40, 48, 50, 96, 100, 144, 200, 288]


def test_dense_widths_cover_every_tile():
    names = {C.gemm_blocking(64, n, 64, dtype="float32")["kernel"] for n in DENSE_WIDTHS}
    expected = {"avx512": {"avx512 14x16", "avx512 14x32", "avx512 8x48", "avx512 6x64"},
                "avx2": {"avx2 6x8", "avx2 6x16"},
                "portable": {"portable 4x4", "portable 4x8"}}[C.selected_isa()]
    assert names == expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("n", DENSE_WIDTHS)
@pytest.mark.parametrize("m, k", [(13, 70), (50, 300)])
def test_dense_widths(m, n, k, trans_a, trans_b, dtype):
    _check_gemm(m, n, k, trans_a, trans_b, dtype, alpha=0.5, beta=0.25)
    _check_gemm(m, n, k, trans_a, trans_b, dtype)


# Big enough to cross every block of the packed-A loop nest on one thread, on a machine with a
# 48 KiB L1 and a 2 MiB L2 (and most others): several A blocks (m past 4 MiB of packed rows),
# B blocks (n past half of L2) and K blocks, each with a ragged last block.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("m, n, k, dtype", [(2900, 850, 1100, np.float32),
                                            (1000, 500, 1300, np.float64)])
def test_every_block_boundary(m, n, k, dtype, trans_a, trans_b, threads):
    before = C.get_num_threads()
    try:
        C.set_num_threads(threads)
        _check_gemm(m, n, k, trans_a, trans_b, dtype, alpha=0.5, beta=0.25)
    finally:
        C.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("alpha, beta", [(0.5, 0.0), (1.0, 1.0), (-2.0, 0.25), (0.0, 3.0)])
def test_alpha_beta(alpha, beta, trans_a, trans_b, dtype):
    # k large enough for several K blocks, so the accumulate path (C += alpha*acc) runs.
    _check_gemm(45, 70, 1300, trans_a, trans_b, dtype, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("k", [1, 31, 32, 1000, 401_408])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-2.0, 0.25)])
def test_dot_product_shape(k, alpha, beta, trans_a, trans_b, dtype):
    # m = n = 1 runs as a dot product (contiguous operands in vector partial sums with a
    # scalar tail, strided ones in a scalar loop: a trans_a A or a plain B of k rows).
    _check_gemm(1, 1, k, trans_a, trans_b, dtype, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("m", [15, 23, 45, 100])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-2.0, 0.25)])
def test_narrow_output_row_tail(m, alpha, beta, trans_a, dtype):
    # Outputs of at most one register column read A in place; the last, partial row tile
    # overlaps the tile before it and must store only its own rows (beta applied once).
    # k = 1300 takes several K blocks, so the accumulate pass also sees the overlap.
    _check_gemm(m, 10, 1300, trans_a, False, dtype, alpha, beta)
    _check_gemm(m, 7, 9, trans_a, False, dtype, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_zero_scales_c(dtype):
    a = np.empty((5, 0), dtype)
    b = np.empty((0, 6), dtype)
    c = _rng(1).standard_normal((5, 6)).astype(dtype)
    out = c.copy()
    C.gemm(a, b, out, False, False, 1.0, 2.5)
    np.testing.assert_allclose(out, 2.5 * c)
    out[...] = np.nan
    C.gemm(a, b, out, False, False, 1.0, 0.0)
    assert np.all(out == 0)


def test_empty_output_is_a_no_op():
    out = np.empty((0, 4), np.float32)
    C.gemm(np.empty((0, 3), np.float32), np.ones((3, 4), np.float32), out)


def test_nan_in_operands_propagates():
    a, b, _ = _operands(20, 40, 30, False, False, np.float32)
    a[3, 4] = np.nan
    out = np.zeros((20, 40), np.float32)
    C.gemm(a, b, out)
    assert np.isnan(out[3]).all() and not np.isnan(np.delete(out, 3, axis=0)).any()


# One row of C (m = 1): the row kernel, B unpacked. Widths around its blocks of 8 vectors
# (4, 2 and 1 after them, then a partial vector), 4-row groups of a transposed B, short k.
ROW_WIDTHS = [2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129, 200, 257]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("n", ROW_WIDTHS)
@pytest.mark.parametrize("k", [1, 2, 3, 31, 70])
def test_one_row(n, k, trans_a, trans_b, dtype):
    _check_gemm(1, n, k, trans_a, trans_b, dtype)
    _check_gemm(1, n, k, trans_a, trans_b, dtype, alpha=-2.0, beta=0.25)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_is_the_same_on_every_thread_count(trans_b, dtype):
    # 1 MiB and more of B is split over the threads by columns: each output computed alike.
    before = C.get_num_threads()
    try:
        for n, k in [(130, 2049), (7, 40_000), (1000, 300)]:
            a, b, c = _operands(1, n, k, False, trans_b, dtype)
            outs = []
            for threads in (1, 2, 3):
                C.set_num_threads(threads)
                out = np.full((1, n), np.nan, dtype)
                C.gemm(a, b, out, False, trans_b, 1.0, 0.0)
                outs.append(out)
            _assert_close(outs[0], _reference(a, b, c, False, trans_b, 1.0, 0.0), k, dtype)
            assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    finally:
        C.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_agree(threads):
    before = C.get_num_threads()
    try:
        C.set_num_threads(threads)
        for m, n, k, ta, tb in [(300, 200, 500, False, False), (64, 700, 300, False, True),
                                (700, 64, 300, True, False)]:
            _check_gemm(m, n, k, ta, tb, np.float32)
        _check_gemm(1000, 500, 1300, False, False, np.float64)  # several blocks of each kind
    finally:
        C.set_num_threads(before)


# ----------------------------------------------------------------------------- linear

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("n, k, m", [(64, 3136, 128), (64, 128, 256), (64, 256, 10), (7, 33, 65),
                                     (1, 1, 1), (1, 777, 1), (50, 96, 96), (13, 40, 200),
                                     (1, 3136, 128), (1, 256, 10), (1, 33, 65), (1, 5000, 300)])
def test_linear_epilogue(n, k, m, with_bias, activation, dtype):
    rng = _rng(n, k, m, with_bias, activation)
    x = rng.standard_normal((n, k)).astype(dtype)
    w = (rng.standard_normal((k, m)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype) if with_bias else None
    out = np.full((n, m), np.nan, dtype)
    C.linear(x, w, b, out, activation)
    pre = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        pre += b
    _assert_close(out, ACTIVATIONS[activation](pre), k, dtype)


def test_linear_relu_keeps_nan():
    x = np.ones((3, 4), np.float32)
    w = np.ones((4, 5), np.float32)
    b = np.array([np.nan, -10, 0, 1, 2], np.float32)
    out = np.empty((3, 5), np.float32)
    C.linear(x, w, b, out, "relu")
    assert np.isnan(out[:, 0]).all()
    np.testing.assert_array_equal(out[:, 1:], np.tile([0, 4, 5, 6], (3, 1)))


# ----------------------------------------------------------------------------- bad input

def _good():
    return np.ones((4, 3), np.float32), np.ones((3, 5), np.float32), np.empty((4, 5), np.float32)


@pytest.mark.parametrize("case, error", [
    ("int_dtype", TypeError), ("mixed_dtype", TypeError), ("out_dtype", TypeError),
    ("noncontiguous", ValueError), ("inner_mismatch", ValueError), ("out_shape", ValueError),
    ("one_d", ValueError), ("readonly_out", ValueError), ("trans_mismatch", ValueError),
])
def test_gemm_bad_input_raises(case, error):
    a, b, out = _good()
    trans_a = False
    if case == "int_dtype":
        a = a.astype(np.int64)
    elif case == "mixed_dtype":
        b = b.astype(np.float64)
    elif case == "out_dtype":
        out = out.astype(np.float64)
    elif case == "noncontiguous":
        a = np.ones((4, 6), np.float32)[:, ::2]
    elif case == "inner_mismatch":
        b = np.ones((4, 5), np.float32)
    elif case == "out_shape":
        out = np.empty((5, 4), np.float32)
    elif case == "one_d":
        a = np.ones(12, np.float32)
    elif case == "readonly_out":
        out.flags.writeable = False
    elif case == "trans_mismatch":
        trans_a = True
    with pytest.raises(error):
        C.gemm(a, b, out, trans_a)


@pytest.mark.parametrize("case, error", [
    ("bias_shape", ValueError), ("bias_dtype", TypeError), ("bias_type", TypeError),
    ("activation", ValueError), ("w_rows", ValueError), ("out_shape", ValueError),
])
def test_linear_bad_input_raises(case, error):
    x, w, out = _good()
    b = np.zeros(5, np.float32)
    activation = "relu"
    if case == "bias_shape":
        b = np.zeros(4, np.float32)
    elif case == "bias_dtype":
        b = np.zeros(5, np.float64)
    elif case == "bias_type":
        b = [0.0] * 5
    elif case == "activation":
        activation = "gelu"
    elif case == "w_rows":
        w = np.ones((2, 5), np.float32)
    elif case == "out_shape":
        out = np.empty((4, 4), np.float32)
    with pytest.raises(error):
        C.linear(x, w, b, out, activation)


# ----------------------------------------------------------------------------- threads

def test_concurrent_calls_from_python_threads():
    # The GIL is released and each Python thread has its own packing workspace: four
    # threads with different shapes (so different workspace sizes) must not interfere.
    shapes = [(64, 128, 3136, False, False), (300, 200, 150, True, False),
              (64, 3136, 128, False, True), (129, 65, 257, True, True)]
    errors = []

    def work(m, n, k, ta, tb):
        try:
            a, b, _ = _operands(m, n, k, ta, tb, np.float32)
            ref = _reference(a, b, None, ta, tb, 1.0, 0.0)
            out = np.empty((m, n), np.float32)
            for _ in range(20):
                out[...] = np.nan
                C.gemm(a, b, out, ta, tb)
                _assert_close(out, ref, k, np.float32)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=s) for s in shapes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# ----------------------------------------------------------------------------- backend

@pytest.mark.skipif("cpu" not in backends.available(), reason="cpu backend unavailable")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_backend_gemm_and_linear(dtype):
    be = backends.get("cpu")
    a, b, c = _operands(33, 65, 17, True, False, dtype)
    got = be.gemm(a, b, trans_a=True)
    _assert_close(got, _reference(a, b, c, True, False, 1.0, 0.0), 17, dtype)
    out = c.copy()
    assert be.gemm(a, b, trans_a=True, alpha=2.0, beta=-1.0, out=out) is out
    _assert_close(out, _reference(a, b, c, True, False, 2.0, -1.0), 17, dtype)

    x = a.T.copy()
    bias = np.linspace(-1, 1, 65).astype(dtype)
    out = np.empty((33, 65), dtype)
    assert be.linear(x, b, bias, activation="tanh", out=out) is out
    _assert_close(out, np.tanh(x.astype(np.float64) @ b.astype(np.float64) + bias), 17, dtype)
    _assert_close(be.linear(x, b), x.astype(np.float64) @ b.astype(np.float64), 17, dtype)


# ----------------------------------------------------------------------------- ISA paths

ORDER = ["portable", "avx2", "avx512"]
LOWER = ORDER[:ORDER.index(C.detected_isa())] if C is not None else []


def test_kernel_matches_selected_isa():
    assert C.gemm_kernel().split()[0] == C.selected_isa()


@pytest.mark.parametrize("isa", LOWER)
def test_lower_isa_micro_kernels(isa):
    # Rerun this module (minus this test) with FASTNN_ISA forcing the lower micro-kernel.
    env = dict(os.environ, FASTNN_ISA=isa)
    here = pathlib.Path(__file__)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(here), "-q", "-x", "-k", "not lower_isa",
         "-p", "no:cacheprovider", "--benchmark-disable"],
        env=env, cwd=here.parent, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
