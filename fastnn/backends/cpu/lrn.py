"""Local response normalisation for the ``cpu`` backend (fastnn._C kernels, TF semantics).

The kernels normalise across the contiguous last axis (NHWC channels). NCHW input is
transposed to an NHWC copy and the results transposed back: the forward pays four extra
passes over the data (x in; y and scale out), the backward six (dy, x, y, scale in; dx
out), typically more than the LRN itself costs. Store NHWC where speed matters.
"""

from __future__ import annotations

import numpy as np

from fastnn.backends.cpu.common import in_layout, nhwc, store


class LrnOps:
    """LRN through ``self._C`` (set by the backend)."""

    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC", out=None):
        x_nhwc = nhwc(x, layout)
        if layout == "NHWC" and out is not None:
            self._C.local_response_norm(x_nhwc, out[0], out[1], depth_radius, bias, alpha, beta)
            return out
        y = np.empty_like(x_nhwc)
        scale = np.empty_like(x_nhwc)
        self._C.local_response_norm(x_nhwc, y, scale, depth_radius, bias, alpha, beta)
        y, scale = in_layout(y, layout), in_layout(scale, layout)
        return (y, scale) if out is None else (store(out[0], y), store(out[1], scale))

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        if layout == "NHWC":
            dx = np.empty_like(dy) if out is None else out
            self._C.local_response_norm_backward(dy, x, y, scale, dx, depth_radius, alpha, beta)
            return dx
        dy, x, y, scale = (nhwc(a, layout) for a in (dy, x, y, scale))
        dx = np.empty_like(dy)
        self._C.local_response_norm_backward(dy, x, y, scale, dx, depth_radius, alpha, beta)
        return store(out, in_layout(dx, layout))
