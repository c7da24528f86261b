"""2-D convolution: forward (im2col + one matmul) and both backward passes.

NHWC images with HWIO weights are native; NCHW with OIHW weights is transposed to that at
the boundary. The forward gathers every receptive field with a strided view of the padded
input (no Python loop), copies it into an ``(n*ho*wo, kh*kw*c_in)`` matrix and multiplies by
the weights seen as ``(kh*kw*c_in, c_out)``. The weight gradient is that matrix transposed
times ``dy``; the data gradient multiplies ``dy`` by the weights transposed and scatter-adds
the columns back onto the padded input one kernel tap at a time (col2im), so the only Python
loop runs over the ``kh*kw`` taps, never over pixels.
"""

from __future__ import annotations

import numpy as np

from fastnn._shapes import (
    conv_output_shape,
    from_hwio,
    from_nhwc,
    hwio_shape,
    nhwc_shape,
    to_hwio,
    to_nhwc,
)
from fastnn.backends.reference.activations import apply_activation
from fastnn.backends.reference.common import store


def _pad_nhwc(x, padding):
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _columns(x_padded, kh, kw, ho, wo, stride, dilation):
    """The ``(n, ho, wo, kh, kw, c)`` read-only view of every receptive field."""
    s_n, s_h, s_w, s_c = x_padded.strides
    n, c = x_padded.shape[0], x_padded.shape[3]
    return np.lib.stride_tricks.as_strided(
        x_padded,
        shape=(n, ho, wo, kh, kw, c),
        strides=(s_n, s_h * stride[0], s_w * stride[1], s_h * dilation[0], s_w * dilation[1],
                 s_c),
        writeable=False,
    )


def _tap_slice(tap, dilation, stride, count):
    """Rows (or columns) of the padded input that kernel tap ``tap`` reads, one per output."""
    start = tap * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


class ConvOps:
    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        x_nhwc = to_nhwc(x, layout)
        w_hwio = to_hwio(w, layout)
        n, h, width, c_in = x_nhwc.shape
        kh, kw, _, c_out = w_hwio.shape
        _, ho, wo, _ = conv_output_shape(x_nhwc.shape, w_hwio.shape, stride, padding,
                                         dilation, "NHWC")
        cols = _columns(_pad_nhwc(x_nhwc, padding), kh, kw, ho, wo, stride, dilation)
        y = cols.reshape(n * ho * wo, kh * kw * c_in) @ w_hwio.reshape(kh * kw * c_in, c_out)
        if b is not None:
            y += b
        apply_activation(y, activation)
        y = from_nhwc(y.reshape(n, ho, wo, c_out), layout)
        return store(out, y.shape, x.dtype, y)

    def conv2d_relu_max_pool2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1,
                               layout="NHWC", out=None):
        # The composition, on whichever backend inherits this (each one's own kernels).
        y = self.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                        layout=layout, activation="relu")
        return self.max_pool2d(y, kernel=(2, 2), stride=(2, 2), padding=(0, 0), layout=layout,
                               out=out)

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        dy_nhwc = to_nhwc(dy, layout)
        w_hwio = to_hwio(w, layout)
        n, h, width, c_in = nhwc_shape(x_shape, layout)
        kh, kw, _, c_out = w_hwio.shape
        _, ho, wo, _ = dy_nhwc.shape
        (top, bottom), (left, right) = padding
        # One row of dcols per output pixel: what each of its kh*kw*c_in inputs receives.
        dcols = (dy_nhwc.reshape(n * ho * wo, c_out)
                 @ w_hwio.reshape(kh * kw * c_in, c_out).T).reshape(n, ho, wo, kh, kw, c_in)
        dx_padded = np.zeros((n, h + top + bottom, width + left + right, c_in), dtype=dy.dtype)
        for i in range(kh):
            rows = _tap_slice(i, dilation[0], stride[0], ho)
            for j in range(kw):
                columns = _tap_slice(j, dilation[1], stride[1], wo)
                dx_padded[:, rows, columns, :] += dcols[:, :, :, i, j, :]
        dx = from_nhwc(dx_padded[:, top:top + h, left:left + width, :], layout)
        return store(out, tuple(x_shape), dy.dtype, dx)

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        dy_nhwc = to_nhwc(dy, layout)
        x_nhwc = to_nhwc(x, layout)
        kh, kw, _, _ = hwio_shape(w_shape, layout)
        n, _, _, c_in = x_nhwc.shape
        _, ho, wo, c_out = dy_nhwc.shape
        cols = _columns(_pad_nhwc(x_nhwc, padding), kh, kw, ho, wo, stride, dilation)
        dw = (cols.reshape(n * ho * wo, kh * kw * c_in).T
              @ dy_nhwc.reshape(n * ho * wo, c_out)).reshape(kh, kw, c_in, c_out)
        return store(out, tuple(w_shape), dy.dtype, from_hwio(dw, layout))
