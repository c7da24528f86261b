"""cuda GEMM (cuBLAS through CuPy), the linear layer's bias + activation epilogue and the
bias gradient (csrc/cuda)."""

from __future__ import annotations

import math

from fastnn.backends.cuda.common import ACTIVATION, CudaOps
from fastnn.backends.reference.dense import accumulate


class DenseOps(CudaOps):
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        cp = self.xp
        m, k = a.shape[::-1] if trans_a else a.shape
        n = b.shape[0] if trans_b else b.shape[1]
        if out is not None and m and n and k:
            # One cuBLAS call with alpha and beta (the layers' accumulate, y += alpha * x,
            # is this), reading a and b in place through the transpose flags.
            from cupy import cublas

            return cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", a, b,
                               out=out, alpha=alpha, beta=beta)
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if k == 0:  # an empty sum: alpha * 0 + beta * out
            product = cp.zeros((m, n), a.dtype)
        else:
            product = cp.matmul(a, b)
            if alpha != 1.0:
                product *= a.dtype.type(alpha)
        return accumulate(product, out, beta)

    def linear(self, x, w, b=None, *, activation=None, out=None):
        y = self._empty(out, (x.shape[0], w.shape[1]), x.dtype)
        if x.shape[1] == 0:
            y.fill(0)
        else:
            self.xp.matmul(x, w, out=y)
        if b is not None or activation is not None:
            self._cuda.bias_activation(y, b, ACTIVATION[activation], self._stream())
        return y

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        if layout == "NCHW" and dy.ndim == 4:
            outer, channels, inner = dy.shape[0], dy.shape[1], dy.shape[2] * dy.shape[3]
        else:
            outer, channels, inner = math.prod(dy.shape[:-1]), dy.shape[-1], 1
        db = self._empty(out, (channels,), dy.dtype)
        if channels == 0:
            return db
        chunks = self._cuda.bias_backward_chunks(outer * inner, channels)
        workspace = self.xp.empty((chunks, channels), dy.dtype)
        self._cuda.bias_backward(dy, outer, channels, inner, workspace, db, self._stream())
        return db
