"""Local response normalisation for the ``cpu`` backend (fastnn._C kernels, TF semantics).

The kernels normalise across the contiguous last axis (NHWC channels). NCHW input is
transposed to an NHWC copy and the results transposed back: the forward pays four extra
passes over the data (x in; y and scale out), the backward six (dy, x, y, scale in; dx
out), typically more than the LRN itself costs. Store NHWC where speed matters.
"""

from __future__ import annotations

import numpy as np


def _to_nhwc(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _from_nhwc(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


class CpuLrnOps:
    """LRN through ``self._C`` (set by the backend)."""

    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC"):
        x_nhwc = _to_nhwc(x, layout)
        y = np.empty_like(x_nhwc)
        scale = np.empty_like(x_nhwc)
        self._C.local_response_norm(x_nhwc, y, scale, depth_radius, bias, alpha, beta)
        return _from_nhwc(y, layout), _from_nhwc(scale, layout)

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        if layout == "NHWC":
            dx = np.empty_like(dy) if out is None else out
            self._C.local_response_norm_backward(dy, x, y, scale, dx, depth_radius, alpha, beta)
            return dx
        dy, x, y, scale = (_to_nhwc(a, layout) for a in (dy, x, y, scale))
        dx = np.empty_like(dy)
        self._C.local_response_norm_backward(dy, x, y, scale, dx, depth_radius, alpha, beta)
        dx = _from_nhwc(dx, layout)
        if out is None:
            return dx
        out[...] = dx
        return out
