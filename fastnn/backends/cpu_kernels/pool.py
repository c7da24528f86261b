"""Max and average pooling for the ``cpu`` backend (fastnn._C kernels, NHWC native).

The kernels reduce whole channel vectors per window tap, which needs the channel axis
contiguous. NCHW input is therefore transposed to an NHWC copy on the way in and the
result transposed back on the way out: two extra passes over the data (about the cost of
the pooling itself for kernel 2), plus one for ``out=``. Max pooling still reports argmax
in the caller's layout (flat indices into ``x.reshape(-1)``), so its backward is a layout
free scatter-add.
"""

from __future__ import annotations

import numpy as np

from fastnn._shapes import conv_output_size


def _to_nhwc(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _from_nhwc(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _nhwc_shape(shape, layout):
    return tuple(shape) if layout == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def _window_args(kernel, stride, padding):
    kernel = tuple(kernel)
    stride = kernel if stride is None else tuple(stride)
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return kernel, stride, padding


def _output_nhwc(shape_nhwc, kernel, stride, padding):
    n, h, w, c = shape_nhwc
    return (n, conv_output_size(h, kernel[0], stride[0], padding[0], padding[0]),
            conv_output_size(w, kernel[1], stride[1], padding[1], padding[1]), c)


def _store(out, value):
    if out is None:
        return value
    out[...] = value
    return out


class CpuPoolOps:
    """Pooling through ``self._C`` (set by the backend)."""

    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC"):
        kernel, stride, padding = _window_args(kernel, stride, padding)
        x_nhwc = _to_nhwc(x, layout)
        y_shape = _output_nhwc(x_nhwc.shape, kernel, stride, padding)
        y = np.empty(y_shape, dtype=x.dtype)
        argmax = np.empty(y_shape, dtype=np.int64)
        self._C.max_pool2d(x_nhwc, y, argmax, kernel, stride, padding, layout == "NCHW")
        return _from_nhwc(y, layout), _from_nhwc(argmax, layout)

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        dx = np.empty(tuple(x_shape), dtype=dy.dtype) if out is None else out
        self._C.max_pool2d_backward(dy, argmax, dx)
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        kernel, stride, padding = _window_args(kernel, stride, padding)
        x_nhwc = _to_nhwc(x, layout)
        y_shape = _output_nhwc(x_nhwc.shape, kernel, stride, padding)
        if layout == "NHWC" and out is not None:
            self._C.avg_pool2d(x_nhwc, out, kernel, stride, padding, bool(count_include_pad))
            return out
        y = np.empty(y_shape, dtype=x.dtype)
        self._C.avg_pool2d(x_nhwc, y, kernel, stride, padding, bool(count_include_pad))
        return _store(out, _from_nhwc(y, layout))

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0, layout="NHWC",
                            count_include_pad=True, out=None):
        kernel, stride, padding = _window_args(kernel, stride, padding)
        dy_nhwc = _to_nhwc(dy, layout)
        if layout == "NHWC" and out is not None:
            self._C.avg_pool2d_backward(dy_nhwc, out, kernel, stride, padding,
                                        bool(count_include_pad))
            return out
        dx = np.empty(_nhwc_shape(x_shape, layout), dtype=dy.dtype)
        self._C.avg_pool2d_backward(dy_nhwc, dx, kernel, stride, padding, bool(count_include_pad))
        return _store(out, _from_nhwc(dx, layout))
