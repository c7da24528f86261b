"""Local response normalisation across channels, TensorFlow semantics.

``scale[c] = bias + alpha * sum(x[c']**2 for |c' - c| <= depth_radius)`` and
``y = x * scale**-beta``. The window sum over channels is a padded sliding sum (a strided
view of ``2 * depth_radius + 1`` channels summed at once), which needs no loop over channels
and, unlike a difference of cumulative sums, loses no precision to cancellation.
"""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import store, store_pair


def _channel_axis(layout):
    return 3 if layout == "NHWC" else 1


def _window_sum(a, depth_radius, axis):
    """``sum(a[c'] for |c' - c| <= depth_radius)`` along ``axis``, zero beyond the edges."""
    channels = a.shape[axis]
    if depth_radius == 0 or channels == 0:
        return a.copy()
    depth_radius = min(depth_radius, channels)  # a wider window covers every channel too
    pad = [(0, 0)] * a.ndim
    pad[axis] = (depth_radius, depth_radius)
    padded = np.pad(a, pad)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * depth_radius + 1, axis=axis)
    return windows.sum(axis=-1)


class LrnOps:
    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC", out=None):
        t = x.dtype.type
        scale = _window_sum(x * x, depth_radius, _channel_axis(layout))
        scale *= t(alpha)
        scale += t(bias)
        y = x * np.power(scale, t(-beta))
        return store_pair(out, (y, scale))

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        t = dy.dtype.type
        spread = _window_sum(dy * y / scale, depth_radius, _channel_axis(layout))
        dx = dy * np.power(scale, t(-beta))
        dx -= t(2.0 * alpha * beta) * x * spread
        return store(out, dy.shape, dy.dtype, dx)
