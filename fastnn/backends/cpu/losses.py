"""cpu-backend softmax cross-entropy and mean squared error (csrc/cpu/elementwise*.cpp)."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import empty


class LossOps:
    _C = None  # set by CpuBackend.__init__

    def softmax_cross_entropy(self, logits, labels):
        probs = np.empty_like(logits)
        loss = self._C.softmax_cross_entropy(logits, labels, probs)
        return np.asarray(loss, dtype=logits.dtype), probs

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        out = empty(out, probs.shape, probs.dtype)
        self._C.softmax_cross_entropy_backward(dloss, probs, labels, out)
        return out

    def mse_loss(self, prediction, target):
        grad = np.empty_like(prediction)
        loss = self._C.mse_loss(prediction, target, grad)
        return np.asarray(loss, dtype=prediction.dtype), grad
