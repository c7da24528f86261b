"""Convolutions beyond the seed network: a table of shapes from well-known networks, each
pass (forward, backward-data, backward-weights) timed on fastnn against PyTorch with
channels-last tensors (oneDNN), for ``benchmarks/bench_conv_shapes.py``.

Each :class:`ConvShape` is one layer as the network has it (input size, channels, kernel,
stride, dilation, padding) at a batch of 1 or 32, NHWC float32 in fastnn, channels-last
NCHW in PyTorch, from the same numbers. FLOPs are the direct method's ``2 * N * Ho * Wo *
C_out * kh * kw * C_in`` for every pass, so the rates of the passes compare.

Example
-------
>>> [s.name for s in SHAPES][:2]
['lenet5-c1', 'lenet5-c2']
>>> SHAPES[0].output_hw
(28, 28)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from fastnn import ops

__all__ = ["ConvShape", "SHAPES", "PASSES", "fastnn_pass", "torch_pass"]

PASSES = ("forward", "backward_data", "backward_weights")


@dataclasses.dataclass(frozen=True)
class ConvShape:
    name: str
    network: str
    batch: int
    hw: int
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = -1  # -1: "same" (kernel // 2 * dilation)

    @property
    def pad(self) -> int:
        return self.kernel // 2 * self.dilation if self.padding < 0 else self.padding

    @property
    def output_hw(self) -> tuple[int, int]:
        span = self.dilation * (self.kernel - 1) + 1
        size = (self.hw + 2 * self.pad - span) // self.stride + 1
        return size, size

    @property
    def flops(self) -> float:
        ho, wo = self.output_hw
        return 2.0 * self.batch * ho * wo * self.c_out * self.kernel ** 2 * self.c_in

    def describe(self) -> str:
        extra = "".join([f" s{self.stride}" if self.stride > 1 else "",
                         f" d{self.dilation}" if self.dilation > 1 else "",
                         " valid" if self.padding == 0 else ""])
        return (f"{self.kernel}x{self.kernel} {self.c_in}->{self.c_out} at {self.hw}x{self.hw}"
                f"{extra}, batch {self.batch}")


SHAPES = (
    ConvShape("lenet5-c1", "LeNet-5", 32, 32, 1, 6, 5, padding=0),
    ConvShape("lenet5-c2", "LeNet-5", 32, 14, 6, 16, 5, padding=0),
    ConvShape("seed-c2", "seed convnet", 64, 14, 32, 64, 3),
    ConvShape("cifar-c1", "CIFAR VGG-style", 32, 32, 3, 64, 3),
    ConvShape("cifar-3x3-64", "CIFAR VGG-style", 32, 32, 64, 64, 3),
    ConvShape("cifar-3x3-64-dil2", "dilated (DeepLab-style)", 32, 32, 64, 64, 3, dilation=2),
    ConvShape("resnet-stem", "ResNet-18/50", 1, 224, 3, 64, 7, stride=2),
    ConvShape("vgg16-c1_2", "VGG-16", 1, 224, 64, 64, 3),
    ConvShape("resnet18-c2", "ResNet-18", 1, 56, 64, 64, 3),
    ConvShape("resnet18-c3-s2", "ResNet-18", 1, 56, 64, 128, 3, stride=2),
    ConvShape("resnet18-c4", "ResNet-18", 1, 14, 256, 256, 3),
    ConvShape("resnet18-c5", "ResNet-18", 32, 7, 512, 512, 3),
    ConvShape("resnet50-1x1-reduce", "ResNet-50", 1, 56, 256, 64, 1),
    ConvShape("resnet50-1x1-expand", "ResNet-50", 32, 14, 256, 1024, 1),
    ConvShape("mobilenet-pw", "MobileNet", 32, 14, 512, 512, 1),
)


def _arrays(shape: ConvShape, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape.batch, shape.hw, shape.hw, shape.c_in)).astype(dtype)
    w = (rng.standard_normal((shape.kernel, shape.kernel, shape.c_in, shape.c_out))
         * np.sqrt(2.0 / (shape.kernel ** 2 * shape.c_in))).astype(dtype)
    dy = rng.standard_normal((shape.batch, *shape.output_hw, shape.c_out)).astype(dtype)
    return x, w, dy


def fastnn_pass(shape: ConvShape, which: str) -> Callable[[], object]:
    """A zero-argument callable running pass ``which`` of ``shape`` on fastnn (into a
    preallocated output, as the layers do)."""
    x, w, dy = _arrays(shape)
    geometry = dict(stride=shape.stride, padding=shape.pad, dilation=shape.dilation)
    if which == "forward":
        out = np.empty(dy.shape, np.float32)
        return lambda: ops.conv2d(x, w, None, **geometry, out=out)
    if which == "backward_data":
        out = np.empty(x.shape, np.float32)
        return lambda: ops.conv2d_backward_data(dy, w, x.shape, **geometry, out=out)
    out = np.empty(w.shape, np.float32)
    return lambda: ops.conv2d_backward_weights(dy, x, w.shape, **geometry, out=out)


def torch_pass(shape: ConvShape, which: str) -> Callable[[], object]:
    """The same pass in PyTorch, channels-last (its fastest CPU form)."""
    import torch

    x, w, dy = _arrays(shape)
    cl = torch.channels_last
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # a channels-last view of the NHWC array
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    dyt = torch.from_numpy(dy).permute(0, 3, 1, 2)
    stride, pad, dil = [shape.stride] * 2, [shape.pad] * 2, [shape.dilation] * 2
    if which == "forward":
        return lambda: torch.nn.functional.conv2d(xt, wt, None, stride, pad, dil)
    mask = [which == "backward_data", which == "backward_weights", False]
    return lambda: torch.ops.aten.convolution_backward(
        dyt, xt, wt, None, stride, pad, dil, False, [0, 0], 1, mask)


def torch_result(shape: ConvShape, which: str) -> np.ndarray:
    """Pass ``which``'s result from PyTorch, in fastnn's layout (for the correctness check)."""
    out = torch_pass(shape, which)()
    if which == "forward":
        return out.permute(0, 2, 3, 1).numpy()
    grads = out
    if which == "backward_data":
        return grads[0].permute(0, 2, 3, 1).numpy()
    return grads[1].permute(2, 3, 1, 0).numpy()
