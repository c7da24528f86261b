"""MaxPool2d and AvgPool2d."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from fastnn import ops
from fastnn._shapes import nhwc_shape, pool_options, pool_output_shape
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer
from fastnn.nn.layers.conv import freeze

IntOrPair = Union[int, tuple[int, int]]


class _Pool2d(Layer):
    def __init__(self, kernel: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, *, layout: str = "NHWC") -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel, self.stride, self.padding = pool_options(name, freeze(kernel), freeze(stride),
                                                              freeze(padding))
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"{name}: layout must be 'NHWC' or 'NCHW', got {layout!r}")
        self.layout = layout

    def _options(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "layout": self.layout}

    def _check_input(self, X: Array) -> None:
        if X.ndim != 4:
            raise ValueError(f"{type(self).__name__}: X must be 4-D {self.layout}, got shape "
                             f"{tuple(X.shape)}")

    def _output_shape(self, x_shape: tuple[int, ...]) -> Optional[tuple[int, ...]]:
        y_shape = pool_output_shape(x_shape, self.kernel, self.stride, self.padding, self.layout)
        return y_shape if min(nhwc_shape(y_shape, self.layout)[1:3]) >= 1 else None

    def config(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "layout": self.layout}

    def _brief_config(self) -> dict[str, Any]:
        config = self.config()
        if config["stride"] == config["kernel"]:
            del config["stride"]
        return config


class MaxPool2d(_Pool2d):
    """Max pooling over ``kernel`` windows (``stride`` defaults to ``kernel``).

    The forward keeps the argmax indices; backward scatters ``D`` to them. Padding (at most
    half the kernel) never wins.

    Example
    -------
    >>> import numpy as np
    >>> MaxPool2d(2)(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def forward(self, X: Array) -> tuple[Array, Backward]:
        Y, argmax, token = self.pool(X)
        x_shape = tuple(X.shape)

        def backward(D: Array) -> Array:
            self._check(token)
            return ops.max_pool2d_backward(D, argmax, x_shape,
                                           out=self._buffer("dx", x_shape, D))

        return Y, backward

    def pool(self, X: Array) -> tuple[Array, Array, int]:
        """The forward's computation: ``(Y, argmax, token)``, the token for :meth:`_check`
        (also used by :mod:`fastnn.nn._fusion`, whose backward masks before the scatter)."""
        self._check_input(X)
        token = self._begin_forward()
        y_shape = self._output_shape(tuple(X.shape))
        out = None if y_shape is None else (self._buffer("y", y_shape, X),
                                            self._buffer("argmax", y_shape, X, np.int64))
        Y, argmax = ops.max_pool2d(X, **self._options(), out=out)
        return Y, argmax, token


class AvgPool2d(_Pool2d):
    """Average pooling over ``kernel`` windows (``stride`` defaults to ``kernel``).

    ``count_include_pad`` (default True, as PyTorch) counts padded zeros in the divisor.

    Example
    -------
    >>> import numpy as np
    >>> AvgPool2d(2)(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(self, kernel: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, *, count_include_pad: bool = True,
                 layout: str = "NHWC") -> None:
        super().__init__(kernel, stride, padding, layout=layout)
        self.count_include_pad = bool(count_include_pad)

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "count_include_pad": self.count_include_pad}

    def forward(self, X: Array) -> tuple[Array, Backward]:
        self._check_input(X)
        token = self._begin_forward()
        y_shape = self._output_shape(tuple(X.shape))
        Y = ops.avg_pool2d(X, **self._options(),
                           out=None if y_shape is None else self._buffer("y", y_shape, X))
        x_shape = tuple(X.shape)

        def backward(D: Array) -> Array:
            self._check(token)
            return ops.avg_pool2d_backward(D, x_shape, **self._options(),
                                           out=self._buffer("dx", x_shape, D))

        return Y, backward

    def config(self) -> dict[str, Any]:
        return {**super().config(), "count_include_pad": self.count_include_pad}
