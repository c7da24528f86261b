"""cpu-backend conv2d forward and backward (csrc/cpu/conv2d.cpp: direct kernels for short
patches, indirect GEMM without im2col for 16+ channels, blocked im2col + GEMM otherwise), and
conv + relu + 2x2 max-pool in one call (fused for the direct kernels, csrc/cpu/conv2d_direct.cpp;
otherwise the convolution's output stays in the native workspace, csrc/python/conv_cpu.cpp).

The kernels are NHWC/HWIO. ``layout="NCHW"`` (OIHW weights) is converted at this
boundary: one transposing copy of each image/weight tensor in and of the result out,
which the benchmarks price (about the cost of a memory pass over each tensor).
"""

from __future__ import annotations

import numpy as np

from fastnn._shapes import conv_output_shape, from_hwio, from_nhwc, hwio_shape, nhwc_shape
from fastnn.backends.cpu.common import hwio, nhwc, store


def _compute(kernel, out, layout, shape_nhwc, dtype, from_nhwc_order):
    """Run ``kernel(result)`` on an NHWC/HWIO result (the caller's ``out`` when it is
    NHWC already) and return it in the caller's layout, in ``out`` when one was given."""
    result = out if (out is not None and layout == "NHWC") else np.empty(shape_nhwc, dtype)
    kernel(result)
    if layout == "NHWC":
        return result
    converted = from_nhwc_order(result, layout)
    return np.ascontiguousarray(converted) if out is None else store(out, converted)


class ConvOps:
    _C = None  # set by CpuBackend.__init__

    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        if layout == "NCHW":
            x, w = nhwc(x, layout), hwio(w, layout)
        return _compute(lambda y: self._C.conv2d(x, w, b, stride, padding, dilation, activation,
                                                 y),
                        out, layout,
                        conv_output_shape(x.shape, w.shape, stride, padding, dilation, "NHWC"),
                        x.dtype, from_nhwc)

    def conv2d_relu_max_pool2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1,
                               layout="NHWC", out=None):
        if layout == "NHWC":  # native unless the 2x2 pool does not fit (then the error's path)
            if out is None:
                n, ho, wo, c_out = conv_output_shape(x.shape, w.shape, stride, padding,
                                                     dilation, "NHWC")
                y = np.empty((n, ho // 2, wo // 2, c_out), x.dtype)
                pair = y, np.empty(y.shape, np.int64)
            else:
                pair = out
            if self._C.conv2d_relu_max_pool2d(x, w, b, stride, padding, dilation, *pair):
                return pair
        return super().conv2d_relu_max_pool2d(x, w, b, stride=stride, padding=padding,
                                              dilation=dilation, layout=layout, out=out)

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if layout == "NCHW":
            dy, w = nhwc(dy, layout), hwio(w, layout)
        return _compute(lambda dx: self._C.conv2d_backward_data(dy, w, stride, padding,
                                                                dilation, dx),
                        out, layout, nhwc_shape(x_shape, layout), dy.dtype, from_nhwc)

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        if layout == "NCHW":
            dy, x = nhwc(dy, layout), nhwc(x, layout)
        return _compute(lambda dw: self._C.conv2d_backward_weights(dy, x, stride, padding,
                                                                   dilation, dw),
                        out, layout, hwio_shape(w_shape, layout), dy.dtype, from_hwio)
