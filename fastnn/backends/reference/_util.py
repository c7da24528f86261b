"""Small helpers shared by the reference op families."""

from __future__ import annotations

import numpy as np


def empty(out, shape, dtype):
    """``out`` when the caller gave one, else a new uninitialised array."""
    return np.empty(shape, dtype=dtype) if out is None else out


def to_nhwc(x, layout):
    """A view of an NCHW array as NHWC (no copy); NHWC passes through."""
    return x if layout == "NHWC" else x.transpose(0, 2, 3, 1)


def from_nhwc(y, layout):
    """Inverse of :func:`to_nhwc` for results."""
    return y if layout == "NHWC" else y.transpose(0, 3, 1, 2)


def store(out, shape, dtype, value):
    """Write ``value`` into ``out`` (allocated if None) and return it."""
    result = empty(out, shape, dtype)
    result[...] = value
    return result
