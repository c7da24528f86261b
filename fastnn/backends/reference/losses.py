"""Softmax cross-entropy and mean squared error."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import empty


def _targets(labels, shape, dtype):
    """Labels as a float target matrix (one-hot for class indices)."""
    if labels.dtype.kind == "f":
        return labels
    onehot = np.zeros(shape, dtype=dtype)
    onehot[np.arange(shape[0]), labels] = 1
    return onehot


class LossOps:
    def softmax_cross_entropy(self, logits, labels):
        log_probs = self.log_softmax(logits)
        n = logits.shape[0]
        if labels.dtype.kind == "f":
            loss = -(labels * log_probs).sum() / n
        else:
            loss = -log_probs[np.arange(n), labels].sum() / n
        return np.asarray(loss, dtype=logits.dtype), np.exp(log_probs)

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        n = probs.shape[0]
        targets = _targets(labels, probs.shape, probs.dtype)
        result = empty(out, probs.shape, probs.dtype)
        np.multiply(probs, targets.sum(axis=1, keepdims=True), out=result)
        result -= targets
        result *= probs.dtype.type(dloss / n)
        return result

    def mse_loss(self, prediction, target):
        diff = prediction - target
        n = len(diff)
        loss = np.asarray(np.vdot(diff, diff) / n, dtype=prediction.dtype)
        return loss, diff * prediction.dtype.type(2.0 / n)
