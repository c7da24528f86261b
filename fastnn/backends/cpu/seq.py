"""The sequence ops for the ``cpu`` backend (fastnn._C kernels): maxout, seq2col, the ragged
reductions and gather_add, forward and backward.

fastnn.ops hands over C-contiguous arrays, lengths as int64 and indices as int32, uint32
or int64; the methods allocate the outputs the caller did not give and the bindings write
into them directly (no copy for ``out=``). Index arrays outside their range raise from the
binding with the reference's words.
"""

from __future__ import annotations

import numpy as np


class SeqOps:
    """Sequence ops through ``self._C`` (set by the backend)."""

    def maxout(self, x):
        n, o, _ = x.shape
        y = np.empty((n, o), dtype=x.dtype)
        which = np.empty((n, o), dtype=np.int32)
        self._C.maxout(x, y, which)
        return y, which

    def maxout_backward(self, dy, which, pieces, *, out=None):
        dx = np.empty(dy.shape + (pieces,), dtype=dy.dtype) if out is None else out
        self._C.maxout_backward(dy, which, pieces, dx)
        return dx

    def seq2col(self, x, *, nw, lengths=None, out=None):
        cols = np.empty((x.shape[0], x.shape[1] * (2 * nw + 1)), x.dtype) if out is None else out
        self._C.seq2col(x, lengths, nw, cols)
        return cols

    def seq2col_backward(self, dy, *, nw, lengths=None, out=None):
        dx = np.empty((dy.shape[0], dy.shape[1] // (2 * nw + 1)), dy.dtype) if out is None else out
        self._C.seq2col_backward(dy, lengths, nw, dx)
        return dx

    def reduce_sum(self, x, lengths, *, out=None):
        y = np.empty((lengths.shape[0], x.shape[1]), x.dtype) if out is None else out
        self._C.reduce_sum(x, lengths, y)
        return y

    def reduce_sum_backward(self, dy, lengths, *, out=None):
        dx = np.empty((int(lengths.sum()), dy.shape[1]), dy.dtype) if out is None else out
        self._C.reduce_sum_backward(dy, lengths, dx)
        return dx

    def reduce_mean(self, x, lengths, *, out=None):
        y = np.empty((lengths.shape[0], x.shape[1]), x.dtype) if out is None else out
        self._C.reduce_mean(x, lengths, y)
        return y

    def reduce_mean_backward(self, dy, lengths, *, out=None):
        dx = np.empty((int(lengths.sum()), dy.shape[1]), dy.dtype) if out is None else out
        self._C.reduce_mean_backward(dy, lengths, dx)
        return dx

    def reduce_max(self, x, lengths):
        y = np.empty((lengths.shape[0], x.shape[1]), x.dtype)
        which = np.empty((lengths.shape[0], x.shape[1]), np.int32)
        self._C.reduce_max(x, lengths, y, which)
        return y, which

    def reduce_max_backward(self, dy, which, lengths, *, out=None):
        # On one thread a fresh np.zeros buffer (calloc: zero pages from the OS, faulted in
        # as the scatter touches them) costs less than the kernel's memset of np.empty's
        # memory (2,000 x 96: 16 against 22 us). On two, the threads' page faults serialise
        # and it costs twice the memset (26 against 18 us; 83 against 40 at 2,000 x 300).
        shape = (int(lengths.sum()), dy.shape[1])
        zeroed = out is None and self._C.get_num_threads() == 1
        dx = out if out is not None else (np.zeros if zeroed else np.empty)(shape, dy.dtype)
        self._C.reduce_max_backward(dy, which, lengths, dx, zeroed)
        return dx

    def gather_add(self, table, indices, *, out=None):
        y = np.empty((indices.shape[0], table.shape[1]), table.dtype) if out is None else out
        self._C.gather_add(table, indices, y)
        return y
