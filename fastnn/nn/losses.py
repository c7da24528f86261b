"""Losses: ``loss(prediction, target) -> (loss, gradient with respect to prediction)``."""

from __future__ import annotations

from fastnn import ops
from fastnn.nn._arrays import Array


def mse_loss(prediction: Array, target: Array) -> tuple[float, Array]:
    """Squared error, summed over features and averaged over the batch (the seed's loss).

    The gradient is ``2 * (prediction - target) / len(prediction)``, as in the seed
    framework (see :func:`fastnn.ops.mse_loss`).

    Example
    -------
    >>> import numpy as np
    >>> loss, grad = mse_loss(np.array([[1.0], [3.0]]), np.zeros((2, 1)))
    >>> loss, grad.ravel()
    (5.0, array([1., 3.]))
    """
    loss, gradient = ops.mse_loss(prediction, target)
    return float(loss), gradient


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean categorical cross-entropy of ``softmax(logits)``; gradient w.r.t. the logits.

    The seed network's "dense 10 softmax + categorical cross-entropy": the network ends in
    logits and this loss applies the softmax, fused and numerically stable.

    Parameters
    ----------
    logits : (n, classes) float array
    labels : (n,) integer class ids, or (n, classes) one-hot (or soft) float targets

    Example
    -------
    >>> import numpy as np
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 2)), np.array([0, 1]))
    >>> round(loss, 4), grad
    (0.6931, array([[-0.25,  0.25],
           [ 0.25, -0.25]]))
    """
    loss, probs = ops.softmax_cross_entropy(logits, labels)
    return float(loss), ops.softmax_cross_entropy_backward(1.0, probs, labels)
