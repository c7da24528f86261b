"""cuda softmax cross-entropy (csrc/cuda) and mean squared error (CuPy). Losses come back
as 0-d CuPy arrays of the logits' dtype."""

from __future__ import annotations

from fastnn.backends.cuda.common import CudaOps


class LossOps(CudaOps):
    def softmax_cross_entropy(self, logits, labels):
        n = logits.shape[0]
        probs = self.xp.empty_like(logits)
        row_loss = self.xp.empty((n,), logits.dtype)
        self._cuda.softmax_cross_entropy(logits, labels, probs, row_loss, self._stream())
        return (row_loss.sum() / n).astype(logits.dtype, copy=False), probs

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        dx = self._empty(out, probs.shape, probs.dtype)
        self._cuda.softmax_cross_entropy_backward(float(dloss) / probs.shape[0], probs, labels,
                                                  dx, self._stream())
        return dx

    def mse_loss(self, prediction, target):
        diff = prediction - target
        n = len(diff)
        loss = (self.xp.vdot(diff, diff) / n).astype(prediction.dtype, copy=False)
        return loss, diff * prediction.dtype.type(2.0 / n)
