"""Helpers shared by the cpu op families: the kernels are NHWC (HWIO weights), so NCHW
arrays are copied to that order on the way in and back on the way out."""

from __future__ import annotations

import numpy as np

from fastnn._shapes import from_nhwc, to_hwio, to_nhwc


def nhwc(a, layout):
    """A C-contiguous NHWC copy of an image batch (``a`` itself when it is NHWC already)."""
    return a if layout == "NHWC" else np.ascontiguousarray(to_nhwc(a, layout))


def hwio(w, layout):
    """A C-contiguous HWIO copy of conv weights (``w`` itself when it is HWIO already)."""
    return w if layout == "NHWC" else np.ascontiguousarray(to_hwio(w, layout))


def in_layout(a, layout):
    """A C-contiguous copy in ``layout`` of an NHWC result (``a`` itself for NHWC)."""
    return a if layout == "NHWC" else np.ascontiguousarray(from_nhwc(a, layout))


def store(out, value):
    """``value`` in ``out`` when the caller gave one, else ``value`` itself."""
    if out is None:
        return value
    out[...] = value
    return out
