"""Conv2d: 2-D convolution with a fused bias and activation, NHWC/HWIO by default."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from fastnn import ops
from fastnn._shapes import conv_output_shape, from_hwio, nhwc_shape, pair, resolve_padding
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

IntOrPair = Union[int, tuple[int, int]]


def freeze(value: Any) -> Any:
    """Lists (as JSON gives them back) to tuples, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


class Conv2d(L2Weights, Layer):
    """2-D convolution ``activation(conv2d(X, W) + b)`` (cross-correlation, as TFLearn's).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (kh, kw)
    stride, dilation : int or (h, w)
    padding : "same" (default, TensorFlow's rule), "valid", int, (h, w) or
        ((top, bottom), (left, right))
    activation : None, "relu", "sigmoid" or "tanh", fused into the forward
    weight_decay : float
        L2 regularisation of the weights, as :class:`Linear` (TFLearn's semantics).
    bias : bool
    layout : "NHWC" (weights HWIO, ``(kh, kw, c_in, c_out)``) or "NCHW" (weights OIHW)
    rng : None, int or np.random.Generator
    dtype : float32 or float64

    Notes
    -----
    Weights start He-normal: ``randn * sqrt(2 / fan_in)`` with ``fan_in = kh * kw * c_in``
    (suited to the ReLU convolutions of the seed network), drawn in HWIO order whatever the
    layout, so the same ``rng`` gives the same filters in both layouts. The bias starts at 0.

    Example
    -------
    >>> import numpy as np
    >>> conv = Conv2d(1, 4, 3, activation="relu", rng=0)
    >>> conv.weights.shape, conv(np.ones((2, 28, 28, 1), np.float32)).shape
    ((3, 3, 1, 4), (2, 28, 28, 4))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, *,
                 stride: IntOrPair = 1, padding: Any = "same", dilation: IntOrPair = 1,
                 activation: Optional[str] = None, weight_decay: float = 0.0, bias: bool = True,
                 layout: str = "NHWC", rng: Seed = None, dtype=np.float32) -> None:
        super().__init__()
        name = "Conv2d"
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"{name}: channels must be >= 1, got {in_channels}, {out_channels}")
        self.kernel_size = pair(name, "kernel_size", freeze(kernel_size), minimum=1)
        self.stride = pair(name, "stride", freeze(stride), minimum=1)
        self.dilation = pair(name, "dilation", freeze(dilation), minimum=1)
        self.padding = freeze(padding)
        resolve_padding(name, self.padding, (1, 1), self.kernel_size, self.stride, self.dilation)
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"{name}: layout must be 'NHWC' or 'NCHW', got {layout!r}")
        self.layout = layout
        self.activation = check_activation(name, activation)
        self.weight_decay = check_weight_decay(name, weight_decay)
        self.dtype = np.dtype(dtype_name(dtype))

        kh, kw = self.kernel_size
        fan_in = kh * kw * self.in_channels
        generator = np.random.default_rng(rng)
        hwio = generator.standard_normal((kh, kw, self.in_channels, self.out_channels))
        hwio *= np.sqrt(2.0 / fan_in)
        self.weights = self.add_parameter(
            "weights", np.ascontiguousarray(from_hwio(hwio, layout), self.dtype))
        self.bias = (self.add_parameter("bias", np.zeros(self.out_channels, self.dtype))
                     if bias else None)

    def _output_shape(self, x_shape: tuple[int, ...]) -> Optional[tuple[int, ...]]:
        """The output shape, or None when it does not fit (the op then raises its error)."""
        _, h, w, _ = nhwc_shape(x_shape, self.layout)
        padding = resolve_padding("Conv2d", self.padding, (h, w), self.kernel_size, self.stride,
                                  self.dilation)
        y_shape = conv_output_shape(x_shape, self.weights.tensor.shape, self.stride, padding,
                                    self.dilation, self.layout)
        return y_shape if min(nhwc_shape(y_shape, self.layout)[1:3]) >= 1 else None

    def forward(self, X: Array) -> tuple[Array, Backward]:
        token, W, b, geometry, y_shape = self._begin(X)
        Y = ops.conv2d(X, W, b, activation=self.activation, **geometry,
                       out=None if y_shape is None else self._buffer("y", y_shape, X, W.dtype))
        backward = self._backward(token, X, W, geometry, None if self.activation is None else Y)
        return Y, backward

    def forward_masked(self, X: Array) -> tuple[Array, Callable[[Array, Array], Array]]:
        """The forward of a relu convolution before a max-pool that applies the relu's mask
        itself (:mod:`fastnn.nn._fusion`): the backward, ``backward(dZ, pooled)``, takes the
        masked gradient and the masked pooled gradient (whose sum is the bias gradient)."""
        token, W, b, geometry, y_shape = self._begin(X)
        Y = ops.conv2d(X, W, b, activation=self.activation, **geometry,
                       out=None if y_shape is None else self._buffer("y", y_shape, X, W.dtype))
        return Y, self._backward(token, X, W, geometry, None)

    def forward_relu_max_pool2d(self, X: Array):
        """:meth:`forward_masked` with the 2x2 max-pool after it computed here too, by
        :func:`fastnn.ops.conv2d_relu_max_pool2d`: ``(pooled, argmax, conv output shape,
        backward)``; the full-size output is never made."""
        token, W, b, geometry, y_shape = self._begin(X)
        out = None
        if y_shape is not None and min(nhwc_shape(y_shape, self.layout)[1:3]) >= 2:
            n, h, w, c = nhwc_shape(y_shape, self.layout)
            shape = (n, h // 2, w // 2, c) if self.layout == "NHWC" else (n, c, h // 2, w // 2)
            out = (self._buffer("pooled", shape, X, W.dtype),
                   self._buffer("argmax", shape, X, np.int64))
        pooled, argmax = ops.conv2d_relu_max_pool2d(X, W, b, **geometry, out=out)
        return pooled, argmax, y_shape, self._backward(token, X, W, geometry, None)

    def _begin(self, X: Array):
        if X.ndim != 4 or X.shape[3 if self.layout == "NHWC" else 1] != self.in_channels:
            raise ValueError(self._input_error(tuple(X.shape)))
        token = self._begin_forward()
        W = self.weights.tensor
        b = None if self.bias is None else self.bias.tensor
        geometry = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                    "layout": self.layout}
        return token, W, b, geometry, self._output_shape(tuple(X.shape))

    def _backward(self, token: int, X: Array, W: Array, geometry: dict, Y: Optional[Array]):
        """The backward of one forward: ``backward(D, pooled=None)``. With ``Y`` (the
        output of the fused activation) ``D`` goes through the activation's backward first;
        without, ``D`` is that gradient already. ``pooled`` given, the bias gradient is its
        sum (it sums to the same as ``D``)."""
        x_shape = tuple(X.shape)

        def backward(D: Array, pooled: Optional[Array] = None) -> Array:
            self._check(token)
            dZ = D
            if Y is not None:
                dZ = ACTIVATION_BACKWARD[self.activation](D, Y,
                                                          out=self._buffer("dz", D.shape, D))
            dW = ops.conv2d_backward_weights(dZ, X, W.shape, **geometry,
                                             out=self._buffer("dw", W.shape, dZ))
            axpy(1.0, dW, self.weights.gradient)
            self._add_weight_decay_gradient()
            if self.bias is not None:
                db = ops.bias_backward(dZ if pooled is None else pooled, layout=self.layout,
                                       out=self._buffer("db", (self.out_channels,), dZ))
                axpy(1.0, db, self.bias.gradient)
            if not self.requires_input_grad:
                return None
            return ops.conv2d_backward_data(dZ, W, x_shape, **geometry,
                                            out=self._buffer("dx", x_shape, dZ))

        return backward

    def _input_error(self, shape: tuple[int, ...]) -> str:
        """What is wrong with an input of ``shape``, and the fix."""
        c, layout = self.in_channels, self.layout
        axes = "(batch, height, width, channels)" if layout == "NHWC" else \
            "(batch, channels, height, width)"
        expected = f"Conv2d: expects 4-D {layout} x {axes} with {c} channel{'s' * (c != 1)}"
        if len(shape) == 3 and c == 1:
            fix = "X[..., None]" if layout == "NHWC" else "X[:, None]"
            return f"{expected}, got {shape}: add the channel axis, {fix}"
        if len(shape) != 4:
            return f"{expected}, got shape {shape}"
        if layout == "NHWC":
            if shape[1] == c:
                return (f"x looks NCHW ({c} channel{'s' * (c != 1)} first, {shape[3]} last) "
                        f"but the layer is NHWC: X.transpose(0, 2, 3, 1), or build the model "
                        f"with layout='NCHW'")
            got = shape[3]
        else:
            if shape[3] == c:
                return (f"x looks NHWC ({c} channel{'s' * (c != 1)} last, {shape[1]} first) "
                        f"but the layer is NCHW: X.transpose(0, 3, 1, 2), or build the model "
                        f"with layout='NHWC'")
            got = shape[1]
        return (f"{expected}, got {shape}: {got} channels where the layer takes {c} "
                f"(in_channels={c})")

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "dilation": self.dilation, "activation": self.activation,
                "weight_decay": self.weight_decay, "bias": self.bias is not None,
                "layout": self.layout, "dtype": self.dtype.name}
