"""cuda inverted dropout with the reference's counter-based mask (csrc/cuda)."""

from __future__ import annotations

from fastnn.backends.cuda.common import CudaOps
from fastnn.backends.reference.dropout import keep_threshold


class DropoutOps(CudaOps):
    def dropout(self, x, *, keep_prob, seed, out=None):
        y = self._empty(out, x.shape, x.dtype)
        mask = self.xp.empty(x.shape, dtype=self.xp.bool_)
        self._cuda.dropout(x, keep_threshold(keep_prob), 1.0 / keep_prob, int(seed), y, mask,
                           self._stream())
        return y, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.dropout_backward(dy, mask, 1.0 / keep_prob, dx, self._stream())
        return dx
