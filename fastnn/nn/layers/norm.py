"""LocalResponseNorm: across-channel normalisation, TensorFlow's semantics and defaults."""

from __future__ import annotations

from typing import Any

from fastnn import ops
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer


class LocalResponseNorm(Layer):
    """``y = x / (bias + alpha * sum(x[c']**2 for |c' - c| <= depth_radius)) ** beta``.

    The defaults are TensorFlow's (and hence TFLearn's ``local_response_normalization``):
    ``depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75``; ``alpha`` is not divided by the
    window size (unlike PyTorch's ``LocalResponseNorm``).

    Example
    -------
    >>> import numpy as np
    >>> lrn = LocalResponseNorm(depth_radius=1, alpha=1.0, beta=1.0)
    >>> lrn(np.ones((1, 1, 1, 3))).ravel()
    array([0.33333333, 0.25      , 0.33333333])
    """

    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1e-4,
                 beta: float = 0.75, *, layout: str = "NHWC") -> None:
        super().__init__()
        if not isinstance(depth_radius, int) or isinstance(depth_radius, bool) or depth_radius < 0:
            raise ValueError(f"LocalResponseNorm: depth_radius must be a non-negative int, got "
                             f"{depth_radius!r}")
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"LocalResponseNorm: layout must be 'NHWC' or 'NCHW', got "
                             f"{layout!r}")
        self.depth_radius = depth_radius
        self.bias, self.alpha, self.beta = float(bias), float(alpha), float(beta)
        self.layout = layout

    def _options(self) -> dict[str, Any]:
        return {"depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha,
                "beta": self.beta, "layout": self.layout}

    def forward(self, X: Array) -> tuple[Array, Backward]:
        token = self._begin_forward()
        Y, scale = ops.local_response_norm(
            X, **self._options(),
            out=(self._buffer("y", X.shape, X), self._buffer("scale", X.shape, X)))

        def backward(D: Array) -> Array:
            self._check(token)
            return ops.local_response_norm_backward(D, X, Y, scale, **self._options(),
                                                    out=self._buffer("dx", D.shape, D))

        return Y, backward

    def config(self) -> dict[str, Any]:
        return self._options()
