"""cpu-backend conv2d forward and backward (csrc/cpu/conv2d.cpp: blocked im2col + GEMM).

The kernels are NHWC/HWIO. ``layout="NCHW"`` (OIHW weights) is converted at this
boundary: one transposing copy of each image/weight tensor in and of the result out,
which the benchmarks price (about the cost of a memory pass over each tensor).
"""

from __future__ import annotations

import numpy as np


def _nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _hwio(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _finish(result_nhwc, out, layout, to_layout):
    """Return the NHWC result in the caller's layout, in ``out`` when one was given."""
    if layout == "NHWC":
        return result_nhwc
    converted = to_layout(result_nhwc)
    if out is None:
        return np.ascontiguousarray(converted)
    out[...] = converted
    return out


def _top_left(padding):
    return (padding[0][0], padding[1][0])


class CpuConvOps:
    _C = None  # set by CpuBackend.__init__

    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        if layout == "NCHW":
            x, w = _nhwc(x), _hwio(w)
        n, h, wd, _ = x.shape
        kh, kw, _, c_out = w.shape
        ho = (h + sum(padding[0]) - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (wd + sum(padding[1]) - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        y = out if (out is not None and layout == "NHWC") else np.empty((n, ho, wo, c_out), x.dtype)
        self._C.conv2d(x, w, b, stride, _top_left(padding), dilation, activation, y)
        return _finish(y, out, layout, lambda t: t.transpose(0, 3, 1, 2))

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if layout == "NCHW":
            dy, w = _nhwc(dy), _hwio(w)
            n, c, h, wd = x_shape
            x_shape = (n, h, wd, c)
        dx = out if (out is not None and layout == "NHWC") else np.empty(x_shape, dy.dtype)
        self._C.conv2d_backward_data(dy, w, stride, _top_left(padding), dilation, dx)
        return _finish(dx, out, layout, lambda t: t.transpose(0, 3, 1, 2))

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        if layout == "NCHW":
            dy, x = _nhwc(dy), _nhwc(x)
            o, i, kh, kw = w_shape
            w_shape = (kh, kw, i, o)
        dw = out if (out is not None and layout == "NHWC") else np.empty(w_shape, dy.dtype)
        self._C.conv2d_backward_weights(dy, x, stride, _top_left(padding), dilation, dw)
        return _finish(dw, out, layout, lambda t: t.transpose(3, 2, 0, 1))
