"""Small helpers shared by the reference op families."""

from __future__ import annotations

import numpy as np


def empty(out, shape, dtype):
    """``out`` when the caller gave one, else a new uninitialised array."""
    return np.empty(shape, dtype=dtype) if out is None else out


def store(out, shape, dtype, value):
    """Write ``value`` into ``out`` (allocated if None) and return it."""
    result = empty(out, shape, dtype)
    result[...] = value
    return result


def store_pair(out, pair):
    """An op's ``(y, aux)`` result written into the caller's ``out`` pair (if given)."""
    if out is None:
        return pair
    out[0][...] = pair[0]
    out[1][...] = pair[1]
    return out
