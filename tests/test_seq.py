"""The sequence ops' reference (the oracle the other backends are held to) against their
definitions: plain loops written from Thinc 9's ``Ops``/``NumpyOps`` semantics, and Thinc's
``NumpyOps`` itself where thinc is installed. Also the cuda backend's host fallback, with
NumPy standing in for CuPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import backends, ops


@pytest.fixture(autouse=True)
def _reference_backend():
    with backends.use("reference"):
        yield


LENGTHS = [[3, 0, 1, 5, 2], [0, 4, 0, 0, 3, 0], [1] * 6, [11], [], [0, 0]]
POSITIVE = [[3, 1, 5, 2], [1] * 6, [11], []]


def _rng(*key):
    import zlib

    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _starts(lengths):
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(int) if len(lengths) else []


# --------------------------------------------------------------------------- loops

def loop_maxout(x):
    n, o, p = x.shape
    y, which = np.zeros((n, o), x.dtype), np.zeros((n, o), np.int32)
    for i in range(n):
        for j in range(o):
            best = 0
            for k in range(1, p):  # the first maximum, or the first NaN
                v, b = x[i, j, k], x[i, j, best]
                if not np.isnan(b) and (v > b or np.isnan(v)):
                    best = k
            which[i, j], y[i, j] = best, x[i, j, best]
    return y, which


def loop_seq2col(x, nw, lengths):
    n, i = x.shape
    cols = np.zeros((n, (2 * nw + 1) * i), x.dtype)
    for start, length in zip(_starts(lengths), lengths):
        for j in range(start, start + length):
            for k in range(2 * nw + 1):
                source = j + k - nw
                if start <= source < start + length:
                    cols[j, k * i:(k + 1) * i] = x[source]
    return cols


def loop_seq2col_backward(dy, nw, lengths):
    n = dy.shape[0]
    i = dy.shape[1] // (2 * nw + 1)
    dx = np.zeros((n, i), dy.dtype)
    for start, length in zip(_starts(lengths), lengths):
        for j in range(start, start + length):
            for k in range(2 * nw + 1):
                source = j + k - nw
                if start <= source < start + length:
                    dx[source] += dy[j, k * i:(k + 1) * i]
    return dx


def loop_reduce(x, lengths, how):
    y = np.zeros((len(lengths), x.shape[1]), x.dtype)
    which = np.zeros(y.shape, np.int32)
    for b, (start, length) in enumerate(zip(_starts(lengths), lengths)):
        rows = x[start:start + length]
        if how == "sum":
            y[b] = rows.sum(axis=0)
        elif how == "mean" and length:
            y[b] = rows.sum(axis=0) / x.dtype.type(length)
        elif how == "max":
            which[b] = np.argmax(rows, axis=0)
            y[b] = rows[which[b], np.arange(x.shape[1])]
    return (y, which) if how == "max" else y


def loop_reduce_backward(dy, lengths, how, which=None):
    dx = np.zeros((int(sum(lengths)), dy.shape[1]), dy.dtype)
    for b, (start, length) in enumerate(zip(_starts(lengths), lengths)):
        if how == "max":
            for o in range(dy.shape[1]):
                dx[start + which[b, o], o] = dy[b, o]
        else:
            for r in range(start, start + length):
                dx[r] = dy[b] if how == "sum" else dy[b] / dy.dtype.type(length)
    return dx


def loop_gather_add(table, indices):
    out = np.zeros((indices.shape[0], table.shape[1]), table.dtype)
    for b in range(indices.shape[0]):
        for k in range(indices.shape[1]):
            out[b] += table[indices[b, k]]
    return out


def _close(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pieces", [1, 2, 3, 4, 5])
def test_maxout_is_the_first_maximum_of_each_unit(pieces, dtype):
    rng = _rng("maxout", pieces)
    x = rng.integers(0, 3, (6, 7, pieces)).astype(dtype)  # ties
    x[0, :3] = np.nan
    x[1, 0, -1] = np.nan
    x[2, 0] = -np.inf
    y, which = ops.maxout(x)
    ey, ewhich = loop_maxout(x)
    np.testing.assert_array_equal(which, ewhich)
    np.testing.assert_array_equal(y, ey)
    dy = rng.standard_normal((6, 7)).astype(dtype)
    dx = ops.maxout_backward(dy, which, pieces)
    expected = np.zeros(x.shape, dtype)
    for i, j in np.ndindex(6, 7):
        expected[i, j, which[i, j]] = dy[i, j]
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("nw", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_seq2col_windows_stop_at_sequence_boundaries(lengths, nw):
    rng = _rng("seq2col", lengths, nw)
    x = rng.standard_normal((sum(lengths), 3))
    x[::3] = np.nan  # nothing outside a window may leak into it
    got = ops.seq2col(x, nw=nw, lengths=np.array(lengths, np.int32))
    np.testing.assert_array_equal(got, loop_seq2col(x, nw, lengths))
    dy = rng.standard_normal((sum(lengths), 3 * (2 * nw + 1)))
    _close(ops.seq2col_backward(dy, nw=nw, lengths=lengths),
           loop_seq2col_backward(dy, nw, lengths))


def test_seq2col_without_lengths_is_one_sequence():
    x = _rng("seq2col-none").standard_normal((5, 2))
    np.testing.assert_array_equal(ops.seq2col(x, nw=2), loop_seq2col(x, 2, [5]))
    dy = _rng("seq2col-none-dy").standard_normal((5, 10))
    _close(ops.seq2col_backward(dy, nw=2), loop_seq2col_backward(dy, 2, [5]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["sum", "mean"])
@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_reduce_sum_and_mean_treat_an_empty_sequence_as_zeros(lengths, how, dtype):
    rng = _rng("reduce", how, lengths)
    x = rng.standard_normal((sum(lengths), 5)).astype(dtype)
    _close(getattr(ops, f"reduce_{how}")(x, np.array(lengths, np.int32)),
           loop_reduce(x, lengths, how))
    dy = rng.standard_normal((len(lengths), 5)).astype(dtype)
    _close(getattr(ops, f"reduce_{how}_backward")(dy, np.array(lengths, np.int32)),
           loop_reduce_backward(dy, lengths, how))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", POSITIVE, ids=str)
def test_reduce_max_is_the_first_maximum_of_each_sequence(lengths, dtype):
    rng = _rng("reduce_max", lengths)
    x = rng.integers(0, 3, (sum(lengths), 6)).astype(dtype)
    if x.size:
        x[0, 0] = x[-1, 1] = np.nan
        x[:, 2] = -np.inf
    y, which = ops.reduce_max(x, np.array(lengths, np.int32))
    ey, ewhich = loop_reduce(x, lengths, "max")
    np.testing.assert_array_equal(which, ewhich)
    np.testing.assert_array_equal(y, ey)
    assert which.dtype == np.int32
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(ops.reduce_max_backward(dy, which, lengths),
                                  loop_reduce_backward(dy, lengths, "max", which))


@pytest.mark.parametrize("index_dtype", [np.int32, np.uint32, np.int64, np.uint16])
def test_gather_add_sums_the_rows(index_dtype):
    rng = _rng("gather_add", np.dtype(index_dtype).name)
    table = rng.standard_normal((9, 4)).astype(np.float32)
    indices = rng.integers(0, 9, (7, 3)).astype(index_dtype)
    _close(ops.gather_add(table, indices), loop_gather_add(table, indices))
    assert ops.gather_add(table, indices[:, :0]).tolist() == [[0.0] * 4] * 7


# --------------------------------------------------------------------------- Thinc

def _numpy_ops():
    thinc_ops = pytest.importorskip("thinc.api", reason="thinc is not installed")
    return thinc_ops.NumpyOps()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_reference_matches_thinc_numpy_ops(dtype):
    thinc = _numpy_ops()
    rng = _rng("thinc", np.dtype(dtype).name)
    for pieces in (2, 3, 4):
        x = rng.standard_normal((7, 5, pieces)).astype(dtype)
        y, which = ops.maxout(x)
        ty, twhich = thinc.maxout(x)
        np.testing.assert_array_equal(y, ty)
        np.testing.assert_array_equal(which, twhich)
        dy = rng.standard_normal((7, 5)).astype(dtype)
        np.testing.assert_array_equal(ops.maxout_backward(dy, which, pieces),
                                      thinc.backprop_maxout(dy, twhich, pieces))
    for lengths in LENGTHS[:4]:
        lengths = np.array(lengths, np.int32)
        x = rng.standard_normal((int(lengths.sum()), 4)).astype(dtype)
        for nw in (1, 2, 3):
            np.testing.assert_array_equal(ops.seq2col(x, nw=nw, lengths=lengths),
                                          thinc.seq2col(x, nw, lengths=lengths))
            dy = rng.standard_normal((x.shape[0], 4 * (2 * nw + 1))).astype(dtype)
            _close(ops.seq2col_backward(dy, nw=nw, lengths=lengths),
                   thinc.backprop_seq2col(dy, nw, lengths=lengths))
        for how in ("sum", "mean"):
            _close(getattr(ops, f"reduce_{how}")(x, lengths),
                   getattr(thinc, f"reduce_{how}")(x, lengths))
            d = rng.standard_normal((lengths.size, 4)).astype(dtype)
            _close(getattr(ops, f"reduce_{how}_backward")(d, lengths),
                   getattr(thinc, f"backprop_reduce_{how}")(d, lengths))
    for lengths in POSITIVE[:3]:
        lengths = np.array(lengths, np.int32)
        x = rng.standard_normal((int(lengths.sum()), 4)).astype(dtype)
        y, which = ops.reduce_max(x, lengths)
        ty, twhich = thinc.reduce_max(x, lengths)
        np.testing.assert_array_equal(y, ty)
        np.testing.assert_array_equal(which, twhich)
        d = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_array_equal(ops.reduce_max_backward(d, which, lengths),
                                      thinc.backprop_reduce_max(d, twhich, lengths))
    table = rng.standard_normal((20, 6)).astype(dtype)
    for index_dtype in (np.int32, np.uint32):
        indices = rng.integers(0, 20, (9, 4)).astype(index_dtype)
        _close(ops.gather_add(table, indices), thinc.gather_add(table, indices))


def test_where_fastnn_is_stricter_than_thinc():
    """Thinc's NumpyOps sums only the first rows when the lengths cover fewer than all of
    them, and raises IndexError when they cover more; fastnn (like Thinc's CupyOps)
    requires them to cover exactly all rows, a ValueError either way."""
    x = np.ones((5, 2), np.float32)
    for lengths in ([2, 2], [3, 3]):
        with pytest.raises(ValueError, match=r"lengths must sum to the rows of x \(5\)"):
            ops.reduce_sum(x, np.array(lengths, np.int32))


# --------------------------------------------------------------------------- cuda fallback

class _NumPyAsCuPy:
    """The parts of CuPy the host fallback uses, answered by NumPy."""

    ndarray = np.ndarray
    asarray = staticmethod(np.asarray)
    asnumpy = staticmethod(np.asarray)


def test_the_cuda_host_fallback_returns_the_reference_results_and_errors():
    from fastnn.backends.cuda.seq import SeqOps

    fallback = SeqOps()
    fallback.xp = _NumPyAsCuPy
    rng = _rng("fallback")
    x = rng.standard_normal((6, 4))
    lengths = np.array([2, 0, 4])
    reference = backends.get("reference")
    np.testing.assert_array_equal(fallback.reduce_sum(x, lengths),
                                  reference.reduce_sum(x, lengths))
    out = np.full((6, 12), np.nan)
    assert fallback.seq2col(x, nw=1, lengths=lengths, out=out) is out
    np.testing.assert_array_equal(out, reference.seq2col(x, nw=1, lengths=lengths))
    y, which = fallback.maxout(x.reshape(6, 2, 2))
    assert which.dtype == np.int32 and y.shape == (6, 2)
    with pytest.raises(ValueError, match=r"gather_add: indices holds 6, outside \[0, 6\)"):
        fallback.gather_add(x, np.array([[0, 6]]))
