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

from fastnn._shapes import nhwc_shape, pool_output_shape
from fastnn.backends.cpu.common import in_layout, nhwc, store


class PoolOps:
    """Pooling through ``self._C`` (set by the backend)."""

    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC", out=None):
        x_nhwc = nhwc(x, layout)
        if layout == "NHWC" and out is not None:
            self._C.max_pool2d(x_nhwc, out[0], out[1], kernel, stride, padding, False)
            return out
        y_shape = pool_output_shape(x_nhwc.shape, kernel, stride, padding, "NHWC")
        y = np.empty(y_shape, dtype=x.dtype)
        argmax = np.empty(y_shape, dtype=np.int64)
        self._C.max_pool2d(x_nhwc, y, argmax, kernel, stride, padding, layout == "NCHW")
        y, argmax = in_layout(y, layout), in_layout(argmax, layout)
        return (y, argmax) if out is None else (store(out[0], y), store(out[1], argmax))

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        dx = np.empty(tuple(x_shape), dtype=dy.dtype) if out is None else out
        self._C.max_pool2d_backward(dy, argmax, dx)
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        x_nhwc = nhwc(x, layout)
        y_shape = pool_output_shape(x_nhwc.shape, kernel, stride, padding, "NHWC")
        if layout == "NHWC" and out is not None:
            self._C.avg_pool2d(x_nhwc, out, kernel, stride, padding, bool(count_include_pad))
            return out
        y = np.empty(y_shape, dtype=x.dtype)
        self._C.avg_pool2d(x_nhwc, y, kernel, stride, padding, bool(count_include_pad))
        return store(out, in_layout(y, layout))

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0, layout="NHWC",
                            count_include_pad=True, out=None):
        dy_nhwc = nhwc(dy, layout)
        if layout == "NHWC" and out is not None:
            self._C.avg_pool2d_backward(dy_nhwc, out, kernel, stride, padding,
                                        bool(count_include_pad))
            return out
        dx = np.empty(nhwc_shape(x_shape, layout), dtype=dy.dtype)
        self._C.avg_pool2d_backward(dy_nhwc, dx, kernel, stride, padding, bool(count_include_pad))
        return store(out, in_layout(dx, layout))
