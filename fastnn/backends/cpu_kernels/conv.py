"""cpu-backend conv2d forward and backward (csrc/cpu/conv2d.cpp: direct kernels for short
patches, indirect GEMM without im2col for 16+ channels, blocked im2col + GEMM otherwise), and
conv + relu + 2x2 max-pool fused for the direct kernels (csrc/cpu/conv2d_direct.cpp).

The kernels are NHWC/HWIO. ``layout="NCHW"`` (OIHW weights) is converted at this
boundary: one transposing copy of each image/weight tensor in and of the result out,
which the benchmarks price (about the cost of a memory pass over each tensor).
"""

from __future__ import annotations

import numpy as np

from fastnn._shapes import conv_output_size


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


def _result(out, layout, shape_nhwc, dtype):
    """Where the kernel writes: the caller's ``out`` when it is already NHWC, else new."""
    return out if (out is not None and layout == "NHWC") else np.empty(shape_nhwc, dtype)


class CpuConvOps:
    _C = None  # set by CpuBackend.__init__

    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        if layout == "NCHW":
            x, w = _nhwc(x), _hwio(w)
        n, h, wd, _ = x.shape
        kh, kw, _, c_out = w.shape
        ho = conv_output_size(h, kh, stride[0], *padding[0], dilation[0])
        wo = conv_output_size(wd, kw, stride[1], *padding[1], dilation[1])
        y = _result(out, layout, (n, ho, wo, c_out), x.dtype)
        self._C.conv2d(x, w, b, stride, padding, dilation, activation, y)
        return _finish(y, out, layout, lambda t: t.transpose(0, 3, 1, 2))

    def conv2d_relu_max_pool2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1,
                               layout="NHWC"):
        if layout == "NHWC":  # the fused kernel where the shape has one, else the composition
            n, h, wd, _ = x.shape
            kh, kw, _, c_out = w.shape
            ho = conv_output_size(h, kh, stride[0], *padding[0], dilation[0])
            wo = conv_output_size(wd, kw, stride[1], *padding[1], dilation[1])
            y = np.empty((n, ho // 2, wo // 2, c_out), x.dtype)
            argmax = np.empty(y.shape, np.int64)
            if self._C.conv2d_relu_max_pool2d(x, w, b, stride, padding, dilation, y, argmax):
                return y, argmax
        return super().conv2d_relu_max_pool2d(x, w, b, stride=stride, padding=padding,
                                              dilation=dilation, layout=layout)

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if layout == "NCHW":
            dy, w = _nhwc(dy), _hwio(w)
            n, c, h, wd = x_shape
            x_shape = (n, h, wd, c)
        dx = _result(out, layout, x_shape, dy.dtype)
        self._C.conv2d_backward_data(dy, w, stride, padding, dilation, dx)
        return _finish(dx, out, layout, lambda t: t.transpose(0, 3, 1, 2))

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        if layout == "NCHW":
            dy, x = _nhwc(dy), _nhwc(x)
            o, i, kh, kw = w_shape
            w_shape = (kh, kw, i, o)
        dw = _result(out, layout, w_shape, dy.dtype)
        self._C.conv2d_backward_weights(dy, x, stride, padding, dilation, dw)
        return _finish(dw, out, layout, lambda t: t.transpose(3, 2, 0, 1))
