"""Inverted dropout with a counter-based mask.

The mask bit of element ``i`` is a pure function of ``(seed, i)``: the SplitMix64 finaliser
of ``seed * golden + i``, whose top 24 bits are compared with ``keep_prob * 2**24``. Every
backend computes the same hash, so masks agree exactly across backends and thread counts.
"""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import empty

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def keep_threshold(keep_prob: float) -> int:
    """Elements whose 24-bit draw is below this are kept."""
    return int(round(keep_prob * (1 << 24)))


def dropout_mask(size: int, keep_prob: float, seed: int) -> np.ndarray:
    """The flat bool keep-mask of ``size`` elements for ``seed``."""
    with np.errstate(over="ignore"):
        z = np.arange(size, dtype=np.uint64) + np.uint64(seed) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)) < np.uint64(keep_threshold(keep_prob))


class DropoutOps:
    def dropout(self, x, *, keep_prob, seed, out=None):
        mask = dropout_mask(x.size, keep_prob, seed).reshape(x.shape)
        y = np.multiply(x, mask, out=empty(out, x.shape, x.dtype))
        y *= x.dtype.type(1.0 / keep_prob)
        return y, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        dx = np.multiply(dy, mask, out=empty(out, dy.shape, dy.dtype))
        dx *= dy.dtype.type(1.0 / keep_prob)
        return dx
