"""Linear: the fully connected layer of the seed framework, with a fused activation."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from fastnn import ops
from fastnn.nn._arrays import Array, axpy
from fastnn.nn.layer import (
    Backward,
    L2Weights,
    Layer,
    Seed,
    check_activation,
    check_weight_decay,
    dtype_name,
)
from fastnn.nn.layers.activations import ACTIVATION_BACKWARD


class Linear(L2Weights, Layer):
    """``activation(X @ W + b)``: weights ``(inputs, outputs)``, as the seed's ``Linear``.

    Parameters
    ----------
    inputs, outputs : int
    bias : bool
        Whether the layer has a bias (zeros at start).
    activation : None, "relu", "sigmoid" or "tanh"
        Fused into the forward (:func:`ops.linear`); its backward runs first in backward.
    weight_decay : float
        L2 regularisation of the weights (TFLearn's semantics): backward adds
        ``weight_decay * W`` to the weight gradient, and :meth:`regularization_loss` is
        ``0.5 * weight_decay * sum(W**2)``. The bias is not regularised.
    rng : None, int or np.random.Generator
        Source of the initial weights ``randn(inputs, outputs) * sqrt(1 / inputs)``.
    dtype : float32 or float64

    Attributes
    ----------
    weights, bias : Parameter (``bias`` is None without a bias)

    Example
    -------
    >>> import numpy as np
    >>> layer = Linear(3, 2, rng=0, dtype=np.float64)
    >>> y, backward = layer.forward(np.ones((4, 3)))
    >>> dx = backward(np.ones((4, 2)))
    >>> y.shape, dx.shape, layer.bias.gradient
    ((4, 2), (4, 3), array([4., 4.]))
    """

    def __init__(self, inputs: int, outputs: int, bias: bool = True, *,
                 activation: Optional[str] = None, weight_decay: float = 0.0, rng: Seed = None,
                 dtype=np.float32) -> None:
        super().__init__()
        if int(inputs) < 1 or int(outputs) < 1:
            raise ValueError(f"Linear: inputs and outputs must be >= 1, got {inputs}, {outputs}")
        self.inputs, self.outputs = int(inputs), int(outputs)
        self.activation = check_activation("Linear", activation)
        self.weight_decay = check_weight_decay("Linear", weight_decay)
        self.dtype = np.dtype(dtype_name(dtype))
        generator = np.random.default_rng(rng)
        scale = np.sqrt(1.0 / self.inputs)
        weights = generator.standard_normal((self.inputs, self.outputs)) * scale
        self.weights = self.add_parameter("weights", weights.astype(self.dtype))
        self.bias = (self.add_parameter("bias", np.zeros(self.outputs, self.dtype))
                     if bias else None)

    def forward(self, X: Array) -> tuple[Array, Backward]:
        if X.ndim != 2 or X.shape[1] != self.inputs:
            raise ValueError(self._input_error(tuple(X.shape)))
        token = self._begin_forward()
        W = self.weights.tensor
        b = None if self.bias is None else self.bias.tensor
        Y = ops.linear(X, W, b, activation=self.activation,
                       out=self._buffer("y", (X.shape[0], self.outputs), X, W.dtype))

        def backward(D: Array) -> Array:
            self._check(token)
            dZ = D
            if self.activation is not None:
                dZ = ACTIVATION_BACKWARD[self.activation](D, Y,
                                                          out=self._buffer("dz", D.shape, D))
            ops.gemm(X, dZ, trans_a=True, beta=1.0, out=self.weights.gradient)
            self._add_weight_decay_gradient()
            if self.bias is not None:
                db = ops.bias_backward(dZ, out=self._buffer("db", (self.outputs,), dZ))
                axpy(1.0, db, self.bias.gradient)
            if not self.requires_input_grad:
                return None
            return ops.gemm(dZ, W, trans_b=True, out=self._buffer("dx", X.shape, dZ))

        return Y, backward

    def _input_error(self, shape: tuple[int, ...]) -> str:
        """What is wrong with an input of ``shape``, and the fix."""
        expected = f"x of shape (batch, {self.inputs})"
        if len(shape) == 2:
            return (f"Linear: expects {expected}, got {shape}: {shape[1]} features where the "
                    f"layer takes {self.inputs}; give it {self.inputs} features, or build "
                    f"it as Linear({shape[1]}, {self.outputs})")
        if len(shape) > 2 and int(np.prod(shape[1:])) == self.inputs:
            return (f"Linear: expects 2-D {expected}, got {shape}: flatten it first (an "
                    f"nn.Flatten() before this layer, or X.reshape(len(X), -1))")
        return f"Linear: expects 2-D {expected}, got shape {shape}"

    def config(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "bias": self.bias is not None,
                "activation": self.activation, "weight_decay": self.weight_decay,
                "dtype": self.dtype.name}
