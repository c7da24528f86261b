"""GEMM, the fused linear layer and the bias gradient.

The matrix product itself goes to the BLAS NumPy links (numba's own ``np.dot`` reaches the
same BLAS but needs SciPy, which fastnn does not require), single-threaded, split into row
or column blocks (``common.matmul``: a multi-threaded BLAS and numba's pool slow each
other): OpenBLAS's CBLAS called from numba's pool, with ``alpha`` and ``beta``, or else
NumPy's matmul over Python threads. Bias plus activation for ``linear`` runs in one numba
pass over the result. The bias gradient is a column sum split into per-thread partial sums,
reduced at the end.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from fastnn.backends.numba.activations import ACTIVATION_CODES, activate
from fastnn.backends.numba.common import PARALLEL, alloc, flat, matmul, sync_threads


@njit(**PARALLEL)
def _bias_activation_kernel(y, bias, has_bias, code, zero, one):
    """In place over ``y`` (rows, channels): ``activation(y + bias)``."""
    rows, channels = y.shape
    for r in prange(rows):
        for c in range(channels):
            v = y[r, c] + bias[c] if has_bias else y[r, c]
            y[r, c] = activate(v, code, zero, one)


@njit(**PARALLEL)
def _column_sum_kernel(a, out, chunks):
    """Sum ``a`` (rows, channels) over rows: ``chunks`` partial sums, then their total."""
    rows, channels = a.shape
    partial = np.zeros((chunks, channels), dtype=a.dtype)
    step = (rows + chunks - 1) // chunks
    for k in prange(chunks):
        for r in range(k * step, min(rows, (k + 1) * step)):
            for c in range(channels):
                partial[k, c] += a[r, c]
    for c in range(channels):
        out[c] = partial[0, c]
    for k in range(1, chunks):
        for c in range(channels):
            out[c] += partial[k, c]


@njit(**PARALLEL)
def _middle_axis_sum_kernel(a, out, zero):
    """Sum ``a`` (batch, channels, pixels) over batch and pixels (NCHW bias gradient)."""
    batch, channels, pixels = a.shape
    for c in prange(channels):
        total = zero
        for n in range(batch):
            for p in range(pixels):
                total += a[n, c, p]
        out[c] = total


class DenseOps:
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        sync_threads()
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if out is None or beta == 0.0:
            return matmul(a, b, out=out, alpha=alpha)
        if out.size:
            matmul(a, b, out=out, alpha=alpha, beta=beta)
        return out

    def linear(self, x, w, b=None, *, activation=None, out=None):
        sync_threads()
        y = matmul(x, w, out=alloc(out, (x.shape[0], w.shape[1]), x.dtype))
        if y.size and (b is not None or activation is not None):
            t = x.dtype.type
            _bias_activation_kernel(y, y[0] if b is None else b, b is not None,
                                    ACTIVATION_CODES[activation], t(0), t(1))
        return y

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        sync_threads()
        if layout == "NCHW" and dy.ndim == 4:
            channels = dy.shape[1]
            out = alloc(out, (channels,), dy.dtype)
            n, h, w = dy.shape[0], dy.shape[2], dy.shape[3]
            _middle_axis_sum_kernel(dy.reshape(n, channels, h * w), out, dy.dtype.type(0))
            return out
        channels = dy.shape[-1]
        out = alloc(out, (channels,), dy.dtype)
        rows = dy.size // channels if channels else 0
        if channels == 0:
            return out
        if rows == 0:
            out[...] = 0
            return out
        chunks = max(1, min(numba.get_num_threads(), rows))
        _column_sum_kernel(dy.reshape(rows, channels), out, chunks)
        return out
