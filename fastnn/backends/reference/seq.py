"""The sequence ops, Thinc's hot paths: maxout, seq2col, the ragged reductions, gather_add.

A ragged batch is the rows of every sequence one after another plus their ``lengths``
(validated by :mod:`fastnn.ops`: int64, non-negative, summing to the rows). Every op here
maps rows to sequences with two arrays, ``np.repeat(np.arange(b), lengths)`` (the sequence
each row belongs to) and the sequences' first rows, and works on whole columns at once: no
Python loop runs over rows or sequences. seq2col loops over the ``2 * nw + 1`` window
offsets, each one fancy-indexed copy. Sums add rows in order (``np.add.at``), as the native
kernels do; maxima follow ``np.argmax`` (the first maximum wins, and the first NaN).
"""

from __future__ import annotations

import numpy as np

from fastnn.backends.base import index_out_of_range, which_out_of_range
from fastnn.backends.reference.common import empty, store


def _sequence_of_rows(lengths):
    """The sequence index of every row of a ragged batch."""
    return np.repeat(np.arange(lengths.shape[0]), lengths)


def _starts(lengths):
    """The first row of every sequence."""
    return np.cumsum(lengths) - lengths


def _offsets(nw, rows):
    """``(k, d)``: window slot ``k`` holds the row ``d`` away; offsets of ``rows`` or more
    reach no row and are left out (their slots stay zero)."""
    return [(k, k - nw) for k in range(max(nw - rows + 1, 0), min(nw + rows, 2 * nw + 1))]


class SeqOps:
    def maxout(self, x):
        which = np.argmax(x, axis=-1)
        y = np.take_along_axis(x, which[..., None], axis=-1)[..., 0]
        return np.ascontiguousarray(y), which.astype(np.int32)

    def maxout_backward(self, dy, which, pieces, *, out=None):
        if which.size and (which.min() < 0 or which.max() >= pieces):
            raise index_out_of_range("maxout_backward", "which", which, pieces)
        dx = store(out, dy.shape + (pieces,), dy.dtype, 0)
        np.put_along_axis(dx, which[..., None].astype(np.intp), dy[..., None], axis=-1)
        return dx

    def seq2col(self, x, *, nw, lengths=None, out=None):
        n, i = x.shape
        cols = store(out, (n, (2 * nw + 1) * i), x.dtype, 0)
        window = cols.reshape(n, 2 * nw + 1, i)
        seq = _sequence_of_rows(lengths)
        rows = np.arange(n)
        for k, d in _offsets(nw, n):
            source = rows + d
            inside = (source >= 0) & (source < n)
            inside[inside] = seq[source[inside]] == seq[inside]  # the same sequence
            window[inside, k] = x[source[inside]]
        return cols

    def seq2col_backward(self, dy, *, nw, lengths=None, out=None):
        n = dy.shape[0]
        window = dy.reshape(n, 2 * nw + 1, dy.shape[1] // (2 * nw + 1))
        dx = np.zeros((n, window.shape[2]), dy.dtype)
        seq = _sequence_of_rows(lengths)
        rows = np.arange(n)
        # Row r appears in slot k of row r - d (d = k - nw) when that row is in its sequence.
        for k, d in _offsets(nw, n):
            source = rows - d
            inside = (source >= 0) & (source < n)
            inside[inside] = seq[source[inside]] == seq[inside]
            dx[inside] += window[source[inside], k]
        return store(out, dx.shape, dy.dtype, dx)

    def reduce_sum(self, x, lengths, *, out=None):
        sums = np.zeros((lengths.shape[0], x.shape[1]), x.dtype)
        np.add.at(sums, _sequence_of_rows(lengths), x)
        return store(out, sums.shape, x.dtype, sums)

    def reduce_sum_backward(self, dy, lengths, *, out=None):
        dx = np.repeat(dy, lengths, axis=0)
        return store(out, dx.shape, dy.dtype, dx)

    def reduce_mean(self, x, lengths, *, out=None):
        sums = np.zeros((lengths.shape[0], x.shape[1]), x.dtype)
        np.add.at(sums, _sequence_of_rows(lengths), x)
        # A sequence of length 0 sums to zeros, and stays zeros.
        means = sums / np.maximum(lengths, 1).astype(x.dtype)[:, None]
        return store(out, means.shape, x.dtype, means)

    def reduce_mean_backward(self, dy, lengths, *, out=None):
        share = dy / np.maximum(lengths, 1).astype(dy.dtype)[:, None]
        dx = np.repeat(share, lengths, axis=0)
        return store(out, dx.shape, dy.dtype, dx)

    def reduce_max(self, x, lengths):
        b, o = lengths.shape[0], x.shape[1]
        if b == 0:  # every length is positive, so no sequences means no rows
            return np.zeros((0, o), x.dtype), np.zeros((0, o), np.int32)
        starts = _starts(lengths)
        seq = _sequence_of_rows(lengths)
        # The maximum of each sequence (NaN where it holds one), then the first row that
        # reaches it: the first maximum, or the first NaN, as np.argmax.
        best = np.maximum.reduceat(x, starts, axis=0)
        reached = (x == best[seq]) | (np.isnan(x) & np.isnan(best[seq]))
        row_in_seq = (np.arange(x.shape[0]) - starts[seq])[:, None]
        first = np.where(reached, row_in_seq, np.iinfo(np.int64).max)
        which = np.minimum.reduceat(first, starts, axis=0)
        y = x[starts[:, None] + which, np.arange(o)]
        return np.ascontiguousarray(y), which.astype(np.int32)

    def reduce_max_backward(self, dy, which, lengths, *, out=None):
        if which.size and ((which < 0) | (which >= lengths[:, None])).any():
            raise which_out_of_range(which, lengths)
        dx = store(out, (int(lengths.sum()), dy.shape[1]), dy.dtype, 0)
        dx[_starts(lengths)[:, None] + which, np.arange(dy.shape[1])] = dy
        return dx

    def gather_add(self, table, indices, *, out=None):
        t = table.shape[0]
        if indices.size and (indices.min() < 0 or indices.max() >= t):
            raise index_out_of_range("gather_add", "indices", indices, t)
        y = empty(out, (indices.shape[0], table.shape[1]), table.dtype)
        y[...] = table[indices].sum(axis=1)
        return y
