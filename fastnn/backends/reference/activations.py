"""Pointwise activations, softmax and log-softmax."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.common import empty


def apply_activation(y, activation):
    """Apply ``activation`` (None, "relu", "sigmoid", "tanh") to ``y`` in place."""
    if activation == "relu":
        # np.maximum propagates NaN, as the contract asks.
        np.maximum(y, 0, out=y)
    elif activation == "sigmoid":
        _sigmoid_inplace(y)
    elif activation == "tanh":
        np.tanh(y, out=y)
    return y


def _sigmoid_inplace(y):
    # exp of a non-positive number only, so neither branch overflows.
    e = np.exp(-np.abs(y))
    positive = y >= 0
    np.divide(np.where(positive, 1, e), 1 + e, out=y)
    return y


class ActivationOps:
    def relu(self, x, *, out=None):
        return np.maximum(x, 0, out=empty(out, x.shape, x.dtype))

    def relu_backward(self, dy, y, *, out=None):
        return np.multiply(dy, y > 0, out=empty(out, dy.shape, dy.dtype))

    def sigmoid(self, x, *, out=None):
        result = empty(out, x.shape, x.dtype)
        result[...] = x
        return _sigmoid_inplace(result)

    def sigmoid_backward(self, dy, y, *, out=None):
        return np.multiply(dy * y, 1 - y, out=empty(out, dy.shape, dy.dtype))

    def tanh(self, x, *, out=None):
        return np.tanh(x, out=empty(out, x.shape, x.dtype))

    def tanh_backward(self, dy, y, *, out=None):
        return np.multiply(dy, 1 - y * y, out=empty(out, dy.shape, dy.dtype))

    def softmax(self, x, *, out=None):
        result = empty(out, x.shape, x.dtype)
        np.subtract(x, x.max(axis=-1, keepdims=True) if x.size else 0, out=result)
        np.exp(result, out=result)
        result /= result.sum(axis=-1, keepdims=True)
        return result

    def softmax_backward(self, dy, y, *, out=None):
        result = np.multiply(dy, y, out=empty(out, dy.shape, dy.dtype))
        row_sums = result.sum(axis=-1, keepdims=True)
        np.subtract(dy, row_sums, out=result)
        result *= y
        return result

    def log_softmax(self, x, *, out=None):
        result = empty(out, x.shape, x.dtype)
        np.subtract(x, x.max(axis=-1, keepdims=True) if x.size else 0, out=result)
        result -= np.log(np.exp(result).sum(axis=-1, keepdims=True))
        return result
