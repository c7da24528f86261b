"""Elementwise activation layers: ReLU, Sigmoid, Tanh, and Softmax over the last axis.

Each backward works from the forward's output (the op contract's ``*_backward(dy, y)``),
so no layer keeps its input alive.
"""

from __future__ import annotations

from typing import Callable

from fastnn import ops
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer

# Backward of each fused activation, from the activation's output.
ACTIVATION_BACKWARD: dict[str, Callable[..., Array]] = {
    "relu": ops.relu_backward,
    "sigmoid": ops.sigmoid_backward,
    "tanh": ops.tanh_backward,
}


class _Elementwise(Layer):
    _forward_op: Callable[..., Array]
    _backward_op: Callable[..., Array]

    def forward(self, X: Array) -> tuple[Array, Backward]:
        token = self._begin_forward()
        Y = type(self)._forward_op(X, out=self._buffer("y", X.shape, X))

        def backward(D: Array) -> Array:
            self._check(token)
            return type(self)._backward_op(D, Y, out=self._buffer("dx", D.shape, D))

        return Y, backward


class ReLU(_Elementwise):
    """``max(X, 0)``; backward passes ``D`` where the output is positive.

    Example
    -------
    >>> import numpy as np
    >>> ReLU()(np.array([[-1.0, 3.0]]))
    array([[0., 3.]])
    """

    _forward_op = staticmethod(ops.relu)
    _backward_op = staticmethod(ops.relu_backward)

    def forward_masked(self, X: Array) -> tuple[Array, Callable[[Array, Array], Array]]:
        """The forward before a max-pool that applies this ReLU's mask itself
        (:mod:`fastnn.nn._fusion`): the backward, ``backward(D, pooled)``, returns ``D``."""
        token = self._begin_forward()
        Y = ops.relu(X, out=self._buffer("y", X.shape, X))

        def backward(D: Array, pooled: Array) -> Array:
            self._check(token)
            return D

        return Y, backward


class Sigmoid(_Elementwise):
    """Logistic function; backward ``D * S * (1 - S)`` (:func:`ops.sigmoid_backward`).

    Example
    -------
    >>> import numpy as np
    >>> Sigmoid()(np.array([[0.0]]))
    array([[0.5]])
    """

    _forward_op = staticmethod(ops.sigmoid)
    _backward_op = staticmethod(ops.sigmoid_backward)


class Tanh(_Elementwise):
    """Hyperbolic tangent; backward ``D * (1 - T**2)``.

    Example
    -------
    >>> import numpy as np
    >>> Tanh()(np.array([[0.0]]))
    array([[0.]])
    """

    _forward_op = staticmethod(ops.tanh)
    _backward_op = staticmethod(ops.tanh_backward)


class Softmax(Layer):
    """Softmax over the last axis, for users who want probabilities out of a network.

    To train a classifier, end the network in logits and use
    :func:`fastnn.nn.softmax_cross_entropy` as the loss instead (fused and stable).
    The backward is :func:`fastnn.ops.softmax_backward`, ``S * (D - sum(D * S, axis=-1))``.

    Example
    -------
    >>> import numpy as np
    >>> Softmax()(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """

    def forward(self, X: Array) -> tuple[Array, Backward]:
        token = self._begin_forward()
        Y = ops.softmax(X, out=self._buffer("y", X.shape, X))

        def backward(D: Array) -> Array:
            self._check(token)
            return ops.softmax_backward(D, Y, out=self._buffer("dx", D.shape, D))

        return Y, backward
