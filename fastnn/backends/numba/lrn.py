"""Local response normalisation across channels (TensorFlow semantics), both layouts.

``scale[c] = bias + alpha * sum(x[c']**2 for |c' - c| <= depth_radius)``,
``y = x * scale**-beta``. The channel window sum slides over a zero-padded copy of one
pixel's squares (NHWC) or one image's squared planes (NCHW), ``2 * depth_radius + 1``
shifted adds whose innermost loop runs over contiguous memory: channels in NHWC, pixels
in NCHW. A running sum (add the entering channel, subtract the leaving one) would do fewer
adds but loses precision to cancellation; the shifted adds are exact to rounding and
vectorise. ``scale**-beta`` is a square-root chain for the common betas (0.5, 0.75, 1).
The backward reuses the same window sum on ``dy * y / scale``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastnn.backends.numba.common import JIT, PARALLEL, alloc, sync_threads


@njit(inline="always", **JIT)
def _power(s, beta, one):
    """``s ** -beta``, with the exponents TensorFlow's LRN is used with done by sqrt."""
    if beta == 0.75:
        r = math.sqrt(s)
        return one / (r * math.sqrt(r))
    if beta == 0.5:
        return one / math.sqrt(s)
    if beta == 1.0:
        return one / s
    return s ** -beta


@njit(inline="always", **JIT)
def _nhwc_buffers(x, radius):
    """A parallel block's buffers (NHWC): one pixel's zero-padded channel terms, and their
    window sums."""
    channels = x.shape[1]
    return np.zeros(channels + 2 * radius, dtype=x.dtype), np.empty(channels, dtype=x.dtype)


@njit(inline="always", **JIT)
def _add_channel_window(padded, radius, window):
    """NHWC: ``window[c] += padded[c + d]`` for the ``2 * radius + 1`` shifts ``d``."""
    for d in range(2 * radius + 1):
        for c in range(window.shape[0]):
            window[c] += padded[c + d]


@njit(inline="always", **JIT)
def _plane_window(padded, c, radius, window, zero):
    """NCHW: ``window[q]`` = the sum of ``padded[c + d, q]`` over the ``2 * radius + 1``
    shifts ``d``: plane ``c``'s window over the zero-padded planes."""
    window[:] = zero
    for d in range(2 * radius + 1):
        for q in range(window.shape[0]):
            window[q] += padded[c + d, q]


_BLOCK = 64  # pixels per parallel task: the window buffers are allocated once per block


@njit(**PARALLEL)
def _lrn_nhwc_kernel(x, y, scale, radius, bias, alpha, beta, zero, one):
    pixels, channels = x.shape
    for block in prange((pixels + _BLOCK - 1) // _BLOCK):
        padded, window = _nhwc_buffers(x, radius)
        for p in range(block * _BLOCK, min(pixels, (block + 1) * _BLOCK)):
            for c in range(channels):
                padded[radius + c] = x[p, c] * x[p, c]
                window[c] = zero
            _add_channel_window(padded, radius, window)
            for c in range(channels):
                s = bias + alpha * window[c]
                scale[p, c] = s
                y[p, c] = x[p, c] * _power(s, beta, one)


@njit(**PARALLEL)
def _lrn_backward_nhwc_kernel(dy, x, y, scale, dx, radius, alpha, beta, factor, zero, one):
    pixels, channels = x.shape
    for block in prange((pixels + _BLOCK - 1) // _BLOCK):
        padded, window = _nhwc_buffers(x, radius)
        for p in range(block * _BLOCK, min(pixels, (block + 1) * _BLOCK)):
            for c in range(channels):
                padded[radius + c] = dy[p, c] * y[p, c] / scale[p, c]
                window[c] = zero
            _add_channel_window(padded, radius, window)
            for c in range(channels):
                dx[p, c] = (dy[p, c] * _power(scale[p, c], beta, one)
                            - factor * x[p, c] * window[c])


@njit(**PARALLEL)
def _lrn_nchw_kernel(x, y, scale, radius, bias, alpha, beta, zero, one):
    batch, channels, pixels = x.shape
    for n in prange(batch):
        padded = np.zeros((channels + 2 * radius, pixels), dtype=x.dtype)
        for c in range(channels):
            for q in range(pixels):
                padded[radius + c, q] = x[n, c, q] * x[n, c, q]
        window = np.empty(pixels, dtype=x.dtype)
        for c in range(channels):
            _plane_window(padded, c, radius, window, zero)
            for q in range(pixels):
                s = bias + alpha * window[q]
                scale[n, c, q] = s
                y[n, c, q] = x[n, c, q] * _power(s, beta, one)


@njit(**PARALLEL)
def _lrn_backward_nchw_kernel(dy, x, y, scale, dx, radius, alpha, beta, factor, zero, one):
    batch, channels, pixels = x.shape
    for n in prange(batch):
        padded = np.zeros((channels + 2 * radius, pixels), dtype=x.dtype)
        for c in range(channels):
            for q in range(pixels):
                padded[radius + c, q] = dy[n, c, q] * y[n, c, q] / scale[n, c, q]
        window = np.empty(pixels, dtype=x.dtype)
        for c in range(channels):
            _plane_window(padded, c, radius, window, zero)
            for q in range(pixels):
                dx[n, c, q] = (dy[n, c, q] * _power(scale[n, c, q], beta, one)
                               - factor * x[n, c, q] * window[q])


def _views(layout, *arrays):
    """(pixels, channels) views for NHWC, (batch, channels, pixels) for NCHW."""
    if layout == "NHWC":
        return [a.reshape(-1, a.shape[3]) for a in arrays]
    return [a.reshape(a.shape[0], a.shape[1], -1) for a in arrays]


class LrnOps:
    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC", out=None):
        sync_threads()
        t = x.dtype.type
        y, scale = (np.empty_like(x), np.empty_like(x)) if out is None else out
        if x.size:
            kernel = _lrn_nhwc_kernel if layout == "NHWC" else _lrn_nchw_kernel
            kernel(*_views(layout, x, y, scale), depth_radius, t(bias), t(alpha), t(beta),
                   t(0), t(1))
        return y, scale

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        sync_threads()
        t = dy.dtype.type
        dx = alloc(out, dy.shape, dy.dtype)
        if dy.size:
            kernel = (_lrn_backward_nhwc_kernel if layout == "NHWC"
                      else _lrn_backward_nchw_kernel)
            kernel(*_views(layout, dy, x, y, scale, dx), depth_radius, t(alpha), t(beta),
                   t(2.0 * alpha * beta), t(0), t(1))
        return dx
