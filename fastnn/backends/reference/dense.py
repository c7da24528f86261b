"""GEMM, the fused linear layer and the bias gradient."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.activations import apply_activation
from fastnn.backends.reference.common import empty


def accumulate(product, out, beta):
    """``beta * out + product`` in ``out`` (``product`` itself without one), as BLAS: with
    ``beta == 0`` the old contents of ``out`` (even NaN) are ignored."""
    if out is None:
        return product
    if beta == 0.0:
        out[...] = product
    else:
        out *= out.dtype.type(beta)
        out += product
    return out


class DenseOps:
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        product = a @ b
        if alpha != 1.0:
            product *= a.dtype.type(alpha)
        return accumulate(product, out, beta)

    def linear(self, x, w, b=None, *, activation=None, out=None):
        y = np.matmul(x, w, out=empty(out, (x.shape[0], w.shape[1]), x.dtype))
        if b is not None:
            y += b
        return apply_activation(y, activation)

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        axis = 1 if (layout == "NCHW" and dy.ndim == 4) else dy.ndim - 1
        reduce_axes = tuple(i for i in range(dy.ndim) if i != axis)
        channels = dy.shape[axis]
        return np.sum(dy, axis=reduce_axes, out=empty(out, (channels,), dy.dtype))
