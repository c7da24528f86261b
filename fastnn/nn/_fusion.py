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
layout the same) also fuses the forward: the convolution runs
:func:`fastnn.ops.conv2d_relu_max_pool2d` and hands the pooled output and argmax to the
pool through the link; its own output is never materialised (the backward does not need
it: the pool masks with its pooled output). The cpu backend computes that op in one pass
for short patches (the first layer); other backends and shapes compose the two ops.

Results equal the unfused layers' exactly, except the bias gradient's rounding. The
link lives for one forward/backward; layers used outside a Sequential never see one.
"""

from __future__ import annotations

from typing import Optional

from fastnn.nn._arrays import Array
from fastnn.nn.layer import Layer
from fastnn.nn.layers.activations import ReLU
from fastnn.nn.layers.conv import Conv2d
from fastnn.nn.layers.pool import MaxPool2d


class ReluPoolLink:
    """Shared by a ReLU producer and the max-pool after it for one forward/backward."""

    __slots__ = ("pooled_grad", "fuse_forward", "pooled")

    def __init__(self, fuse_forward: bool = False) -> None:
        self.pooled_grad: Optional[Array] = None  # the masked pooled gradient, set by the pool
        self.fuse_forward = fuse_forward          # the producer pools too (a Conv2d)
        # (y, argmax, conv output shape) from a fused producer, taken by the pool.
        self.pooled: Optional[tuple[Array, Array, tuple[int, ...]]] = None


def _is_relu_producer(layer: Layer) -> bool:
    if type(layer) is ReLU:
        return True
    return type(layer) is Conv2d and layer.activation == "relu"


def plan(layers: list[Layer]) -> dict[int, ReluPoolLink]:
    """Links for every (ReLU producer, MaxPool2d) pair of adjacent layers, by layer index."""
    links: dict[int, ReluPoolLink] = {}
    for i in range(len(layers) - 1):
        producer, pool = layers[i], layers[i + 1]
        if type(pool) is MaxPool2d and _is_relu_producer(producer):
            if getattr(producer, "layout", pool.layout) != pool.layout:
                continue
            fuse_forward = (type(producer) is Conv2d and pool.kernel == (2, 2)
                            and pool.stride == (2, 2) and pool.padding == (0, 0))
            links[i] = links[i + 1] = ReluPoolLink(fuse_forward)
    return links
