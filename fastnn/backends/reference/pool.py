"""Max and average pooling, forward and backward.

Both work on an NHWC view (NCHW is transposed at the boundary) and gather every window with
a strided view of the padded input, so no Python loop runs over pixels. Max pooling pads
with -inf and reduces each window with ``argmax`` (first maximum in row-major window order,
and the first NaN wins, as ``np.argmax``); the winner is returned as a flat index into
``x.reshape(-1)`` in x's own layout, so the backward is one scatter-add that does not need
to know the layout. Average pooling sums the windows and divides by the window size or by
the number of real (unpadded) pixels; its backward adds ``dy / divisor`` back one kernel
tap at a time.
"""

from __future__ import annotations

import numpy as np

from fastnn._shapes import from_nhwc, nhwc_shape, pool_output_shape, to_nhwc
from fastnn.backends.base import argmax_out_of_range
from fastnn.backends.reference.common import store, store_pair


def _windows(x_padded, kernel, stride, ho, wo):
    """The ``(n, ho, wo, kh, kw, c)`` read-only view of every pooling window."""
    s_n, s_h, s_w, s_c = x_padded.strides
    n, c = x_padded.shape[0], x_padded.shape[3]
    return np.lib.stride_tricks.as_strided(
        x_padded,
        shape=(n, ho, wo, kernel[0], kernel[1], c),
        strides=(s_n, s_h * stride[0], s_w * stride[1], s_h, s_w, s_c),
        writeable=False,
    )


def _pad(x_nhwc, padding, value):
    ph, pw = padding
    if ph == pw == 0:
        return x_nhwc
    return np.pad(x_nhwc, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=value)


def _real_pixels(h, w, kernel, stride, padding, ho, wo):
    """``(ho, wo)`` count of unpadded pixels in each window."""
    ones = _pad(np.ones((1, h, w, 1)), padding, 0.0)
    return _windows(ones, kernel, stride, ho, wo).sum(axis=(3, 4, 5))[0]


def _divisor(h, w, kernel, stride, padding, count_include_pad, ho, wo, dtype):
    if count_include_pad:
        return dtype.type(kernel[0] * kernel[1])
    return _real_pixels(h, w, kernel, stride, padding, ho, wo).astype(dtype)[:, :, None]


def _tap_slice(tap, stride, count):
    return slice(tap, tap + stride * (count - 1) + 1, stride)


class PoolOps:
    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC", out=None):
        x_nhwc = to_nhwc(x, layout)
        n, h, w, c = x_nhwc.shape
        kh, kw = kernel
        _, ho, wo, _ = pool_output_shape(x_nhwc.shape, kernel, stride, padding, "NHWC")
        windows = _windows(_pad(x_nhwc, padding, -np.inf), kernel, stride, ho, wo)
        flat = windows.reshape(n, ho, wo, kh * kw, c)
        tap = np.argmax(flat, axis=3)
        y = np.take_along_axis(flat, tap[:, :, :, None, :], axis=3)[:, :, :, 0, :]

        # A padded cell can only tie with real cells that are -inf; give those to the first
        # real cell of the window, so argmax always points into x.
        real = _windows(_pad(np.ones((1, h, w, 1), dtype=bool), padding, False), kernel,
                        stride, ho, wo).reshape(ho, wo, kh * kw)
        first_real = np.argmax(real, axis=2)
        rows_out = np.arange(ho)[:, None, None]
        cols_out = np.arange(wo)[None, :, None]
        tap = np.where(real[rows_out, cols_out, tap], tap, first_real[:, :, None])

        row = rows_out * stride[0] + tap // kw - padding[0]
        col = cols_out * stride[1] + tap % kw - padding[1]
        batch = np.arange(n, dtype=np.int64)[:, None, None, None]
        channel = np.arange(c, dtype=np.int64)
        if layout == "NHWC":
            index = ((batch * h + row) * w + col) * c + channel
        else:
            index = ((batch * c + channel) * h + row) * w + col
        y = from_nhwc(y, layout)
        index = from_nhwc(index.astype(np.int64, copy=False), layout)
        return store_pair(out, (np.ascontiguousarray(y), np.ascontiguousarray(index)))

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        size = int(np.prod(x_shape))
        if argmax.size and (argmax.min() < 0 or argmax.max() >= size):
            raise argmax_out_of_range(argmax, size)  # never wrap -1 to the last element
        dx = store(out, tuple(x_shape), dy.dtype, 0)
        # np.add.at accumulates repeated indices (overlapping windows), unlike dx[idx] += dy.
        np.add.at(dx.reshape(-1), argmax.reshape(-1), dy.reshape(-1))
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        x_nhwc = to_nhwc(x, layout)
        n, h, w, c = x_nhwc.shape
        _, ho, wo, _ = pool_output_shape(x_nhwc.shape, kernel, stride, padding, "NHWC")
        windows = _windows(_pad(x_nhwc, padding, 0), kernel, stride, ho, wo)
        y = windows.sum(axis=(3, 4))
        y /= _divisor(h, w, kernel, stride, padding, count_include_pad, ho, wo, x.dtype)
        y = from_nhwc(y, layout)
        return store(out, y.shape, x.dtype, y)

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0,
                            layout="NHWC", count_include_pad=True, out=None):
        n, h, w, c = nhwc_shape(x_shape, layout)
        dy_nhwc = to_nhwc(dy, layout)
        ho, wo = dy_nhwc.shape[1:3]
        share = dy_nhwc / _divisor(h, w, kernel, stride, padding, count_include_pad, ho, wo,
                                   dy.dtype)
        ph, pw = padding
        dx_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=dy.dtype)
        for i in range(kernel[0]):
            rows = _tap_slice(i, stride[0], ho)
            for j in range(kernel[1]):
                dx_padded[:, rows, _tap_slice(j, stride[1], wo), :] += share
        dx = from_nhwc(dx_padded[:, ph:ph + h, pw:pw + w, :], layout)
        return store(out, tuple(x_shape), dy.dtype, dx)
