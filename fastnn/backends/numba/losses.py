"""Softmax cross-entropy (forward and backward) and mean squared error.

The cross-entropy works row by row: max, log of the sum of exponentials, then the
probabilities ``exp(x - max - logsum)`` and the row's share of the loss in the same pass.
Per-row losses are summed in order at the end, so the result does not depend on the
thread count. Labels come as int64 class indices or as float targets.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastnn.backends.numba.common import JIT, PARALLEL, alloc, flat, sync_threads


@njit(inline="always", **JIT)
def _row_log_softmax(x, r, probs, zero):
    """Write ``log_softmax(x[r])`` into ``probs[r]`` (exponentiated later)."""
    cols = x.shape[1]
    top = x[r, 0]
    for c in range(1, cols):
        v = x[r, c]
        if v > top or v != v:
            top = v
    total = zero
    for c in range(cols):
        total += math.exp(x[r, c] - top)
    log_total = math.log(total)
    for c in range(cols):
        probs[r, c] = x[r, c] - top - log_total


@njit(**PARALLEL)
def _cross_entropy_index_kernel(logits, labels, probs, row_loss, zero):
    rows = logits.shape[0]
    for r in prange(rows):
        _row_log_softmax(logits, r, probs, zero)
        row_loss[r] = -probs[r, labels[r]]
        for c in range(logits.shape[1]):
            probs[r, c] = math.exp(probs[r, c])


@njit(**PARALLEL)
def _cross_entropy_target_kernel(logits, targets, probs, row_loss, zero):
    rows, cols = logits.shape
    for r in prange(rows):
        _row_log_softmax(logits, r, probs, zero)
        total = zero
        for c in range(cols):
            total += targets[r, c] * probs[r, c]
            probs[r, c] = math.exp(probs[r, c])
        row_loss[r] = -total


@njit(**PARALLEL)
def _cross_entropy_backward_index_kernel(probs, labels, dx, scale, one):
    rows, cols = probs.shape
    for r in prange(rows):
        for c in range(cols):
            dx[r, c] = probs[r, c] * scale
        dx[r, labels[r]] = (probs[r, labels[r]] - one) * scale


@njit(**PARALLEL)
def _cross_entropy_backward_target_kernel(probs, targets, dx, scale, zero):
    rows, cols = probs.shape
    for r in prange(rows):
        mass = zero
        for c in range(cols):
            mass += targets[r, c]
        for c in range(cols):
            dx[r, c] = (probs[r, c] * mass - targets[r, c]) * scale


@njit(**PARALLEL)
def _squared_error_kernel(prediction, target, gradient, scale, row_loss):
    """``gradient = scale * diff``; per-row sums of ``diff**2`` in ``row_loss``."""
    rows = row_loss.size
    width = prediction.size // rows
    for r in prange(rows):
        total = 0.0  # float64 accumulator: the loss is one number, precision is cheap
        for i in range(r * width, (r + 1) * width):
            d = prediction[i] - target[i]
            total += d * d
            gradient[i] = d * scale
        row_loss[r] = total


class LossOps:
    def softmax_cross_entropy(self, logits, labels):
        sync_threads()
        n = logits.shape[0]
        t = logits.dtype.type
        probs = np.empty_like(logits)
        row_loss = np.empty(n, dtype=logits.dtype)
        if labels.dtype.kind == "f":
            _cross_entropy_target_kernel(logits, labels, probs, row_loss, t(0))
        else:
            _cross_entropy_index_kernel(logits, labels, probs, row_loss, t(0))
        return np.asarray(row_loss.sum() / n, dtype=logits.dtype), probs

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        sync_threads()
        t = probs.dtype.type
        dx = alloc(out, probs.shape, probs.dtype)
        scale = t(dloss / probs.shape[0])
        if labels.dtype.kind == "f":
            _cross_entropy_backward_target_kernel(probs, labels, dx, scale, t(0))
        else:
            _cross_entropy_backward_index_kernel(probs, labels, dx, scale, t(1))
        return dx

    def mse_loss(self, prediction, target):
        sync_threads()
        n = prediction.shape[0]
        gradient = np.empty_like(prediction)
        row_loss = np.empty(n, dtype=np.float64)
        _squared_error_kernel(flat(prediction), flat(target), flat(gradient),
                              prediction.dtype.type(2.0 / n), row_loss)
        return np.asarray(row_loss.sum() / n, dtype=prediction.dtype), gradient
