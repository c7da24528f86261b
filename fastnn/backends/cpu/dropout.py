"""cpu-backend inverted dropout with the reference's counter-based mask
(csrc/cpu/elementwise*.cpp)."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import empty
from fastnn.backends.reference.dropout import keep_threshold


class DropoutOps:
    _C = None  # set by CpuBackend.__init__

    def dropout(self, x, *, keep_prob, seed, out=None):
        out = empty(out, x.shape, x.dtype)
        mask = np.empty(x.shape, dtype=np.bool_)
        self._C.dropout(x, seed, keep_threshold(keep_prob), 1.0 / keep_prob, out, mask)
        return out, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        out = empty(out, dy.shape, dy.dtype)
        self._C.dropout_backward(dy, mask, 1.0 / keep_prob, out)
        return out
