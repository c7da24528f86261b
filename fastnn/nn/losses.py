"""Losses: ``loss(prediction, target) -> (loss, gradient with respect to prediction)``."""

from __future__ import annotations

from typing import Optional

from fastnn import ops
from fastnn.nn._arrays import Array, to_numpy


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
    try:
        loss, probs = ops.softmax_cross_entropy(logits, labels)
    except ValueError as exc:
        hint = _labels_hint(logits, labels)
        if hint is None:
            raise
        raise ValueError(f"softmax_cross_entropy: {hint}") from exc
    return float(loss), ops.softmax_cross_entropy_backward(1.0, probs, labels)


def _labels_hint(logits: Array, labels: Array) -> Optional[str]:
    """Why ``labels`` do not fit ``logits``, in the user's terms; None to keep the op's
    message. Runs only after the op refused them."""
    shape, kind = getattr(labels, "shape", None), getattr(getattr(labels, "dtype", None),
                                                           "kind", None)
    if shape is None or getattr(logits, "ndim", 0) != 2:
        return None
    n, classes = logits.shape
    if kind == "f" and len(shape) == 1 and shape[0] == n:
        return (f"labels are floats of shape {tuple(shape)}: float labels are one-hot (or "
                f"soft) rows of shape ({n}, {classes}); class ids must be integers, "
                f"labels.astype(np.int64)")
    if kind in ("i", "u") and tuple(shape) == (n,) and n:
        high = int(to_numpy(labels).max())
        if high >= classes:
            return (f"labels go up to {high} but the model has {classes} outputs (logits of "
                    f"shape {tuple(logits.shape)}): end the model in a layer with "
                    f"{high + 1} outputs for classes 0-{high}")
    return None
