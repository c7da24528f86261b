"""cuda max and average pooling, forward and backward, in either layout (csrc/cuda/pool.cu)."""

from __future__ import annotations

import math

from fastnn._shapes import pool_output_shape
from fastnn.backends.base import argmax_out_of_range
from fastnn.backends.cuda.common import CudaOps


class PoolOps(CudaOps):
    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC", out=None):
        if out is None:
            y_shape = pool_output_shape(x.shape, kernel, stride, padding, layout)
            y, argmax = self.xp.empty(y_shape, x.dtype), self.xp.empty(y_shape, self.xp.int64)
        else:
            y, argmax = out
        self._cuda.max_pool2d(x, kernel, stride, padding, layout == "NHWC", y, argmax,
                              self._stream())
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        size = math.prod(x_shape)
        if argmax.size and (int(argmax.min()) < 0 or int(argmax.max()) >= size):
            raise argmax_out_of_range(argmax, size)
        dx = self._empty(out, x_shape, dy.dtype)
        self._cuda.max_pool2d_backward(dy, argmax, dx, self._stream())
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        y = self._empty(out, pool_output_shape(x.shape, kernel, stride, padding, layout),
                        x.dtype)
        self._cuda.avg_pool2d(x, kernel, stride, padding, layout == "NHWC",
                              bool(count_include_pad), y, self._stream())
        return y

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0,
                            layout="NHWC", count_include_pad=True, out=None):
        dx = self._empty(out, x_shape, dy.dtype)
        self._cuda.avg_pool2d_backward(dy, kernel, stride, padding, layout == "NHWC",
                                       bool(count_include_pad), dx, self._stream())
        return dx
