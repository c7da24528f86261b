"""Inverted dropout with the reference's counter-based mask, bit for bit.

Element ``i`` is kept when the top 24 bits of SplitMix64's finaliser of
``seed * golden + i`` fall below ``round(keep_prob * 2**24)``; the hash is evaluated per
element in parallel (uint64 arithmetic wraps, as NumPy's does), so the mask does not
depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastnn.backends.numba.common import PARALLEL, alloc, flat, sync_threads
from fastnn.backends.reference.dropout import _MIX1, _MIX2, GOLDEN, keep_threshold

_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


@njit(**PARALLEL)
def _dropout_kernel(x, y, mask, seed, threshold, scale, zero, one):
    base = seed * GOLDEN
    for i in prange(x.size):
        z = np.uint64(i) + base
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z ^= z >> _S31
        keep = (z >> _S40) < threshold
        mask[i] = keep
        y[i] = x[i] * (one if keep else zero) * scale  # x * mask * scale, as the reference


@njit(**PARALLEL)
def _dropout_backward_kernel(dy, mask, dx, scale, zero, one):
    for i in prange(dy.size):
        dx[i] = dy[i] * (one if mask[i] else zero) * scale


class DropoutOps:
    def dropout(self, x, *, keep_prob, seed, out=None):
        sync_threads()
        y = alloc(out, x.shape, x.dtype)
        mask = np.empty(x.shape, dtype=np.bool_)
        t = x.dtype.type
        _dropout_kernel(flat(x), flat(y), flat(mask), np.uint64(seed),
                        np.uint64(keep_threshold(keep_prob)), t(1.0 / keep_prob), t(0), t(1))
        return y, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        sync_threads()
        dx = alloc(out, dy.shape, dy.dtype)
        t = dy.dtype.type
        _dropout_backward_kernel(flat(dy), flat(mask), flat(dx), t(1.0 / keep_prob), t(0), t(1))
        return dx
