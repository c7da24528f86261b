"""Flatten: images to feature vectors, between the convolutional and dense parts."""

from __future__ import annotations

from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer


class Flatten(Layer):
    """Reshape ``(n, ...)`` to ``(n, prod(...))``; backward reshapes the gradient back.

    A view (no copy) for C-contiguous input. NHWC images flatten in (h, w, c) order, the
    order TFLearn's ``fully_connected`` uses on a conv output.

    Example
    -------
    >>> import numpy as np
    >>> Flatten()(np.zeros((2, 3, 3, 4))).shape
    (2, 36)
    """

    def forward(self, X: Array) -> tuple[Array, Backward]:
        if X.ndim < 1:
            raise ValueError(f"Flatten: X must have a batch axis, got shape {tuple(X.shape)}")
        shape = tuple(X.shape)
        Y = X.reshape(shape[0], -1)

        def backward(D: Array) -> Array:
            return D.reshape(shape)

        return Y, backward
