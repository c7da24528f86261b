"""The sequence ops (maxout, seq2col, the ragged reductions, gather_add) as numba kernels.

Ragged batches come as row offsets (``0, cumsum(lengths)``). The reductions run one
sequence per ``prange`` iteration, the column loop innermost (contiguous, so LLVM
vectorises it); maxout, seq2col and gather_add run one row per iteration, seq2col finding
its row's sequence by binary search in the offsets, so a single long sequence parallelises
too. Maxima take the first maximum and the first NaN (``(v > b) | ((v != v) & (b == b))``,
bitwise so the loops stay branch-free), as ``np.argmax``. The kernels that scatter or
gather through an index array skip a bad index and count it; the method then raises the
reference's error, which names the first bad value.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastnn.backends.base import index_out_of_range, which_out_of_range
from fastnn.backends.numba.common import PARALLEL, alloc, sync_threads


def _offsets(lengths):
    offsets = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _divisors(lengths, dtype):
    """Each length in the data's dtype (1 for an empty sequence, whose sum stays 0), as the
    reference divides."""
    return np.maximum(lengths, 1).astype(dtype)


@njit(**PARALLEL)
def _maxout_kernel(x, y, which):
    n, o, pieces = x.shape
    for i in prange(n):
        for j in range(o):
            best = x[i, j, 0]
            where = 0
            for p in range(1, pieces):
                v = x[i, j, p]
                take = (v > best) | ((v != v) & (best == best))
                best = v if take else best
                where = p if take else where
            y[i, j] = best
            which[i, j] = where


@njit(**PARALLEL)
def _maxout_backward_kernel(dy, which, dx, zero):
    n, o, pieces = dx.shape
    bad = 0
    for i in prange(n):
        for j in range(o):
            w = which[i, j]
            for p in range(pieces):
                dx[i, j, p] = dy[i, j] if p == w else zero
            if not 0 <= w < pieces:
                bad += 1
    return bad


@njit(**PARALLEL)
def _seq2col_kernel(x, cols, offsets, nw):
    rows, width = x.shape
    slots = 2 * nw + 1
    for j in prange(rows):
        b = np.searchsorted(offsets, j, side="right") - 1
        first, last = max(offsets[b], j - nw), min(offsets[b + 1], j + nw + 1)
        lead = first - (j - nw)
        for c in range(lead * width):
            cols[j, c] = 0
        for r in range(first, last):
            base = (lead + r - first) * width
            for c in range(width):
                cols[j, base + c] = x[r, c]
        for c in range((lead + last - first) * width, slots * width):
            cols[j, c] = 0


@njit(**PARALLEL)
def _seq2col_backward_kernel(dy, dx, offsets, nw):
    rows, width = dx.shape
    slots = 2 * nw + 1
    for r in prange(rows):
        b = np.searchsorted(offsets, r, side="right") - 1
        # Slot k of row r - k + nw holds row r, for that row inside the sequence.
        k_first = max(0, r + nw - offsets[b + 1] + 1)
        k_last = min(slots - 1, r + nw - offsets[b])
        for c in range(width):
            dx[r, c] = dy[r - k_first + nw, k_first * width + c]
        for k in range(k_first + 1, k_last + 1):
            for c in range(width):
                dx[r, c] += dy[r - k + nw, k * width + c]


@njit(**PARALLEL)
def _reduce_sum_kernel(x, y, offsets, divisors, mean, zero):
    cols = x.shape[1]
    for b in prange(offsets.shape[0] - 1):
        for c in range(cols):
            y[b, c] = zero
        for r in range(offsets[b], offsets[b + 1]):
            for c in range(cols):
                y[b, c] += x[r, c]
        if mean:
            for c in range(cols):
                y[b, c] /= divisors[b]


@njit(**PARALLEL)
def _reduce_sum_backward_kernel(dy, dx, offsets, divisors, mean):
    cols = dy.shape[1]
    for b in prange(offsets.shape[0] - 1):
        for r in range(offsets[b], offsets[b + 1]):
            for c in range(cols):
                dx[r, c] = dy[b, c] / divisors[b] if mean else dy[b, c]


@njit(**PARALLEL)
def _reduce_max_kernel(x, y, which, offsets):
    cols = x.shape[1]
    for b in prange(offsets.shape[0] - 1):
        start = offsets[b]
        for c in range(cols):
            y[b, c] = x[start, c]
            which[b, c] = 0
        for r in range(start + 1, offsets[b + 1]):
            here = r - start
            for c in range(cols):
                v, best = x[r, c], y[b, c]
                take = (v > best) | ((v != v) & (best == best))
                y[b, c] = v if take else best
                which[b, c] = here if take else which[b, c]


@njit(**PARALLEL)
def _reduce_max_backward_kernel(dy, which, dx, offsets, zero):
    cols = dy.shape[1]
    bad = 0
    for b in prange(offsets.shape[0] - 1):
        start, length = offsets[b], offsets[b + 1] - offsets[b]
        for r in range(start, start + length):
            for c in range(cols):
                dx[r, c] = zero
        for c in range(cols):
            w = which[b, c]
            if 0 <= w < length:
                dx[start + w, c] = dy[b, c]
            else:
                bad += 1
    return bad


@njit(**PARALLEL)
def _gather_add_kernel(table, indices, out, zero):
    rows, cols = table.shape
    batch, per_row = indices.shape
    bad = 0
    for b in prange(batch):
        ok = True
        for k in range(per_row):
            index = indices[b, k]
            if not (index >= 0 and index < rows):
                ok = False
        if not ok:
            bad += 1
            continue
        for c in range(cols):
            out[b, c] = zero
        for k in range(per_row):
            index = indices[b, k]
            for c in range(cols):
                out[b, c] += table[index, c]
    return bad


class SeqOps:
    def maxout(self, x):
        sync_threads()
        y = np.empty(x.shape[:2], x.dtype)
        which = np.empty(x.shape[:2], np.int32)
        _maxout_kernel(x, y, which)
        return y, which

    def maxout_backward(self, dy, which, pieces, *, out=None):
        sync_threads()
        dx = alloc(out, dy.shape + (pieces,), dy.dtype)
        if dy.size and _maxout_backward_kernel(dy, which, dx, dy.dtype.type(0)):
            raise index_out_of_range("maxout_backward", "which", which, pieces)
        return dx

    def seq2col(self, x, *, nw, lengths=None, out=None):
        sync_threads()
        cols = alloc(out, (x.shape[0], x.shape[1] * (2 * nw + 1)), x.dtype)
        if cols.size:
            _seq2col_kernel(x, cols, _offsets(lengths), nw)
        return cols

    def seq2col_backward(self, dy, *, nw, lengths=None, out=None):
        sync_threads()
        dx = alloc(out, (dy.shape[0], dy.shape[1] // (2 * nw + 1)), dy.dtype)
        if dx.size:
            _seq2col_backward_kernel(dy, dx, _offsets(lengths), nw)
        return dx

    def _reduce_sum(self, x, lengths, out, mean):
        sync_threads()
        y = alloc(out, (lengths.shape[0], x.shape[1]), x.dtype)
        _reduce_sum_kernel(x, y, _offsets(lengths), _divisors(lengths, x.dtype), mean,
                           x.dtype.type(0))
        return y

    def _reduce_sum_backward(self, dy, lengths, out, mean):
        sync_threads()
        offsets = _offsets(lengths)
        dx = alloc(out, (int(offsets[-1]), dy.shape[1]), dy.dtype)
        _reduce_sum_backward_kernel(dy, dx, offsets, _divisors(lengths, dy.dtype), mean)
        return dx

    def reduce_sum(self, x, lengths, *, out=None):
        return self._reduce_sum(x, lengths, out, False)

    def reduce_mean(self, x, lengths, *, out=None):
        return self._reduce_sum(x, lengths, out, True)

    def reduce_sum_backward(self, dy, lengths, *, out=None):
        return self._reduce_sum_backward(dy, lengths, out, False)

    def reduce_mean_backward(self, dy, lengths, *, out=None):
        return self._reduce_sum_backward(dy, lengths, out, True)

    def reduce_max(self, x, lengths):
        sync_threads()
        y = np.empty((lengths.shape[0], x.shape[1]), x.dtype)
        which = np.empty(y.shape, np.int32)
        _reduce_max_kernel(x, y, which, _offsets(lengths))
        return y, which

    def reduce_max_backward(self, dy, which, lengths, *, out=None):
        sync_threads()
        offsets = _offsets(lengths)
        dx = alloc(out, (int(offsets[-1]), dy.shape[1]), dy.dtype)
        if _reduce_max_backward_kernel(dy, which, dx, offsets, dy.dtype.type(0)):
            raise which_out_of_range(which, lengths)
        return dx

    def gather_add(self, table, indices, *, out=None):
        sync_threads()
        y = alloc(out, (indices.shape[0], table.shape[1]), table.dtype)
        if _gather_add_kernel(table, indices, y, table.dtype.type(0)):
            raise index_out_of_range("gather_add", "indices", indices, table.shape[0])
        return y
