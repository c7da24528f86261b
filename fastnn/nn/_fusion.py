"""Cross-layer fusion inside :class:`~fastnn.nn.Sequential`: a ReLU feeding a max-pool.

A max-pool's gradient lands only on its windows' maxima, and the maximum of a window is
the ReLU's output at that position. So the ReLU's mask can be applied to the pooled
gradient, before the scatter (a quarter of the elements for 2×2 pools), and the ReLU's
own backward pass over the full-size gradient is skipped: the scattered gradient is
already zero wherever the ReLU's output is not positive. A :class:`~fastnn.nn.Conv2d`
with ``activation="relu"`` also takes its bias gradient from the masked pooled gradient:
every pooled element lands in exactly one input position, so the two sums agree (up to
the order of the additions).

A ``Conv2d(activation="relu")`` followed by a 2x2, stride-2, unpadded ``MaxPool2d`` (the
layout the same) also fuses the forward: one :func:`fastnn.ops.conv2d_relu_max_pool2d`
computes the pooled output and argmax, and the convolution's full-size output is never
materialised (the backward does not need it: the mask comes from the pooled output). The
cpu backend computes that op in one pass for short patches (the first layer); other
backends and shapes compose the two ops.

:func:`plan` finds the pairs; :class:`Sequential` runs each pair as one
:class:`ReluMaxPool` step, a layer-like object whose ``forward(X)`` returns the pool's
output and one ``backward`` for both layers. The two layers keep their parameters, buffers
and configuration (a saved model or a summary sees them as they are) and, used on their
own, their ordinary forward and backward. Results equal the unfused layers' exactly,
except the bias gradient's rounding.
"""

from __future__ import annotations

from fastnn import ops
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer
from fastnn.nn.layers.activations import ReLU
from fastnn.nn.layers.conv import Conv2d
from fastnn.nn.layers.pool import MaxPool2d


class ReluMaxPool:
    """A ReLU producer (``ReLU``, or ``Conv2d(activation="relu")``) and the ``MaxPool2d``
    after it, as one step of a :class:`~fastnn.nn.Sequential`.

    ``stage`` says which of the two layers runs (0: the producer, 1: the pool), so that an
    error is reported against the right layer; ``pool_input_shape`` is the producer's
    output shape once it has run.
    """

    __slots__ = ("producer", "pool", "fuse_forward", "stage", "pool_input_shape")

    def __init__(self, producer: Layer, pool: MaxPool2d) -> None:
        self.producer, self.pool = producer, pool
        self.fuse_forward = (type(producer) is Conv2d and pool.kernel == (2, 2)
                             and pool.stride == (2, 2) and pool.padding == (0, 0))
        self.stage = 0
        self.pool_input_shape = None

    def forward(self, X: Array) -> tuple[Array, Backward]:
        producer, pool = self.producer, self.pool
        self.stage = 0
        if self.fuse_forward:
            Y, argmax, x_shape, producer_backward = producer.forward_relu_max_pool2d(X)
            self.stage, self.pool_input_shape = 1, x_shape
            token = pool._begin_forward()
        else:
            H, producer_backward = producer.forward_masked(X)
            self.stage, self.pool_input_shape = 1, tuple(H.shape)
            Y, argmax, token = pool.pool(H)
            x_shape = self.pool_input_shape

        def backward(D: Array) -> Array:
            self.stage = 1
            pool._check(token)
            # The relu's mask, on the pooled gradient; the scatter then leaves zeros wherever
            # the relu was inactive, so the producer's backward takes the result as it is.
            masked = ops.relu_backward(D, Y, out=pool._buffer("dmask", D.shape, D))
            dH = ops.max_pool2d_backward(masked, argmax, x_shape,
                                         out=pool._buffer("dx", x_shape, masked))
            self.stage = 0
            return producer_backward(dH, masked)

        return Y, backward


def _is_relu_producer(layer: Layer) -> bool:
    if type(layer) is ReLU:
        return True
    return type(layer) is Conv2d and layer.activation == "relu"


def plan(layers: list[Layer]) -> dict[int, ReluMaxPool]:
    """A :class:`ReluMaxPool` for every (ReLU producer, MaxPool2d) pair of adjacent layers,
    under the index of each of its two layers."""
    steps: dict[int, ReluMaxPool] = {}
    for i in range(len(layers) - 1):
        producer, pool = layers[i], layers[i + 1]
        if type(pool) is MaxPool2d and _is_relu_producer(producer):
            if getattr(producer, "layout", pool.layout) != pool.layout:
                continue
            steps[i] = steps[i + 1] = ReluMaxPool(producer, pool)
    return steps
