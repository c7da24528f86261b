"""Every op of every accelerated backend against the NumPy reference, forward and backward.

Cases are built once per (op, configuration, dtype) from a seeded generator, run through
``fastnn.ops`` under ``backends.use(name)`` and under ``backends.use("reference")``, and
compared with the per-dtype tolerance from conftest. Only ops a backend implements itself
are collected for it (an inherited reference method would be compared with itself), so the
test ids list exactly what each backend accelerates.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import BACKEND_PARAMS, assert_close, native_module, overrides, to_backend, to_numpy

import fastnn
from fastnn import backends, ops


class Case(NamedTuple):
    id: str
    op: str
    build: Callable  # (rng, dtype) -> (args, kwargs)
    inplace: bool = False  # compare the (mutated) arguments instead of the result


CASES: list[Case] = []


def case(id, op, inplace=False):
    def register(build):
        CASES.append(Case(f"{op}-{id}", op, build, inplace))
        return build
    return register


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ GEMM and linear

GEMM_SHAPES = [(1, 1, 1), (7, 5, 3), (17, 33, 9), (64, 10, 256), (3, 1, 40), (0, 4, 3),
               (4, 3, 0)]
for (m, n, k), trans_a, trans_b in itertools.product(GEMM_SHAPES, (False, True), (False, True)):
    def build(rng, dtype, m=m, n=n, k=k, ta=trans_a, tb=trans_b):
        a = randn(rng, (k, m) if ta else (m, k), dtype)
        b = randn(rng, (n, k) if tb else (k, n), dtype)
        return (a, b), dict(trans_a=ta, trans_b=tb)
    case(f"{m}x{n}x{k}-{'T' if trans_a else 'N'}{'T' if trans_b else 'N'}", "gemm")(build)


@case("alpha-beta", "gemm")
def _(rng, dtype):
    return (randn(rng, (9, 11), dtype), randn(rng, (11, 13), dtype)), dict(
        alpha=0.5, beta=-2.0, out=randn(rng, (9, 13), dtype))


@case("beta0-ignores-nan-out", "gemm")
def _(rng, dtype):
    return (randn(rng, (5, 6), dtype), randn(rng, (6, 4), dtype)), dict(
        out=np.full((5, 4), np.nan, dtype))


for activation, bias in itertools.product(ops.ACTIVATIONS, (True, False)):
    @case(f"{activation}-{'bias' if bias else 'nobias'}", "linear")
    def _(rng, dtype, activation=activation, bias=bias):
        x, w = randn(rng, (13, 31), dtype), randn(rng, (31, 19), dtype)
        b = randn(rng, (19,), dtype) if bias else None
        return (x, w, b), dict(activation=activation)


# ------------------------------------------------------------------ convolution

# (n, h, w, c_in, c_out, kh, kw, stride, padding, dilation)
CONV_CONFIGS = [
    (2, 7, 9, 3, 4, 3, 3, 1, "same", 1),
    (1, 1, 1, 2, 3, 1, 1, 1, 0, 1),                 # 1x1 image, 1x1 kernel
    (3, 8, 6, 1, 5, 3, 3, 2, 1, 1),                 # one input channel, stride 2
    (2, 9, 7, 4, 3, 2, 3, (2, 1), "valid", 1),      # non-square kernel and stride
    (1, 10, 11, 3, 2, 3, 3, 1, "same", 2),          # dilation
    (2, 5, 5, 2, 2, 5, 5, 3, ((1, 2), (0, 1)), 1),  # kernel larger than stride, asymmetric pad
    (2, 28, 28, 1, 8, 3, 3, 1, "same", 1),          # the seed's first layer, fewer filters
    (1, 6, 6, 17, 7, 3, 3, 1, "same", 1),           # odd channel counts
    (2, 4, 4, 3, 2, 3, 3, 2, "same", 1),            # "same" with stride: uneven padding
    # Few input channels: the direct path (kh*kw*c_in <= 72), odd out_c around its
    # 32-float channel blocks, rows past its 8-pixel tiles.
    (2, 9, 8, 1, 1, 3, 3, 1, "same", 1),            # one output channel
    (1, 7, 10, 2, 7, 3, 3, 2, "same", 1),           # stride 2
    (2, 11, 9, 3, 17, 3, 3, 1, "valid", 2),         # dilation 2, "valid"
    (1, 6, 13, 1, 33, 3, 2, (1, 2), ((2, 0), (1, 3)), 1),  # asymmetric padding
    (1, 5, 5, 2, 65, 3, 3, 1, ((0, 2), (2, 0)), (1, 2)),   # three channel blocks
    (1, 1, 1, 3, 33, 3, 3, 1, "same", 1),           # 1x1 image: every tap but one is padding
    (3, 20, 30, 1, 32, 5, 5, 1, "same", 1),         # 30 wide: tiles of 8, 4 and 1; 25 taps
    (2, 6, 6, 8, 16, 3, 3, 1, "same", 1),           # 72 taps: the largest direct patch
    (2, 7, 15, 3, 70, 3, 3, 1, "same", 1),          # AVX-512: pairs of blocks, 6-pixel tiles, tails
    (1, 9, 20, 2, 64, 3, 3, 2, 1, 1),               # pairs at stride 2, 10 columns
    # Narrow outputs (out_c <= 16 float32 / 8 float64 at stride_w 1): pixels in the lanes,
    # channel-planar copies; groups of up to 8 channels, rows in vector pairs and singles.
    (2, 28, 28, 1, 6, 5, 5, 1, "same", 1),          # LeNet-5's first layer
    (1, 9, 37, 2, 12, 3, 3, (2, 1), "same", 1),     # 12 = 6 + 6; 37 = 32 + 5 columns
    (2, 6, 17, 3, 16, 3, 1, 1, "valid", (2, 1)),    # two groups of 8; one vector and a lane
    (1, 5, 40, 4, 3, 3, 3, 1, ((2, 0), (0, 3)), (1, 2)),  # dilated columns, uneven padding
    (1, 4, 3000, 8, 5, 3, 3, 1, "same", 1),         # wider than a tile: column tiles
    # Fewer than 16 input channels, patches over 72: the indirect kernels over kernel
    # rows (kernel_w * c_in values a run), w padding copied in, h padding the zero run.
    (2, 14, 14, 6, 16, 5, 5, 1, "valid", 1),        # LeNet-5's second layer: no copy
    (1, 23, 21, 3, 20, 7, 7, (2, 1), "same", 1),    # 7x7 over 3 channels, h stride 2
    (2, 9, 12, 5, 33, 5, 4, (2, 1), ((2, 1), (3, 0)), (2, 1)),  # uneven padding, h dilation
    (1, 8, 8, 3, 24, 7, 7, 2, "same", 1),           # stride_w 2: row runs forward, im2col weights
    (2, 17, 19, 3, 64, 7, 7, 2, 3, 1),              # ResNet's stem: chunks across two images
    (1, 13, 16, 4, 20, 5, 5, (2, 3), ((1, 2), (2, 1)), 1),  # stride_w 3, uneven padding
    (1, 3, 30, 4, 7, 3, 7, 1, ((0, 0), (6, 6)), 1),  # padding as wide as the window
    (2, 9, 10, 3, 20, 5, 5, 1, "same", 1),          # runs of 15: rows, the outputs not narrow
    (1, 12, 11, 1, 24, 9, 9, 1, "same", 1),         # runs of 9 over one channel
    (1, 10, 9, 2, 12, 7, 7, 1, "same", 1),          # runs of 14, narrow outputs: direct
    # Backward-weights' gather tiles take the row count that pads a run the fewest.
    (2, 9, 9, 8, 16, 5, 5, 1, "same", 1),           # runs of 40: 10-row tiles
    (1, 10, 11, 9, 10, 5, 5, 1, "same", 1),         # runs of 45: 15-row tiles, 10 columns
    # Sixteen or more input channels: the indirect (pointer-table) kernels, whose
    # tiles are 4-14 rows by 16-64 columns; channel counts around those sizes.
    (2, 14, 14, 32, 64, 3, 3, 1, "same", 1),        # the seed's second layer at batch 2
    (1, 9, 7, 24, 70, 3, 3, 1, "same", 1),          # two column panels, the second partial
    (2, 8, 9, 18, 33, 3, 2, 2, ((1, 0), (2, 1)), 1),  # stride 2: backward-data on im2col
    (1, 11, 10, 20, 16, 3, 3, 1, "same", 2),        # dilation; 20-wide backward-data output
    (3, 5, 6, 16, 40, 5, 3, 1, "valid", 1),         # 15 taps, 40 columns
    (1, 1, 1, 16, 20, 3, 3, 1, "same", 1),          # 1x1 image: all but one tap is padding
    (2, 7, 7, 16, 24, 1, 1, 2, 0, 1),               # 1x1 kernel with stride: not a plain GEMM
    (1, 8, 9, 24, 13, 3, 3, 2, 1, 1),               # 24 channels: 12-row gather tiles, 13 columns
    (2, 7, 8, 28, 30, 3, 3, 2, "same", 1),          # 28 channels: 14 x 32 gather tiles, 30 columns
    (2, 7, 9, 32, 12, 3, 3, 2, "same", 1),          # 32 channels: 16 x 16 gather tiles
    (1, 9, 8, 16, 32, 3, 3, 2, 1, 1),               # 16 channels: 8 x 32 gather tiles
    (1, 60, 59, 16, 136, 3, 3, 2, "same", 1),       # 900 rows, 3 panels: threads share the setup
    (1, 9, 9, 64, 70, 3, 3, 2, 1, 1),               # 64 channels: 6 x 64 gather tiles, 4-row tail
    (1, 9, 9, 32, 64, 3, 3, 2, 1, 1),               # 32 channels: 4 x 64 gather tiles
    # 3x3 stride 1, >= 16 channels each way: Winograd F(2x2, 3x3) forward and backward-data;
    # odd outputs (half-empty tiles), "valid", padding up to the window on one side.
    (2, 9, 11, 16, 16, 3, 3, 1, "valid", 1),
    (1, 7, 6, 17, 33, 3, 3, 1, ((2, 0), (0, 2)), 1),
    (3, 5, 5, 40, 20, 3, 3, 1, ((0, 1), (1, 0)), 1),
    (1, 1, 3, 16, 16, 3, 3, 1, "same", 1),          # one row: every tile mostly padding
    (1, 4, 6, 128, 256, 3, 3, 1, "same", 1),        # U of 2 MiB: Winograd where L2 holds it
    (1, 4, 5, 800, 16, 3, 3, 1, "same", 1),         # 800 channels: U packed once, two K blocks
    # F(4x4, 3x3): 48 tiles of 4x4 outputs or more; partial tiles, uneven padding, "valid".
    (4, 16, 16, 16, 24, 3, 3, 1, "same", 1),
    (3, 13, 18, 17, 20, 3, 3, 1, ((2, 0), (0, 2)), 1),
    (1, 30, 30, 16, 16, 3, 3, 1, "valid", 1),
    (48, 1, 2, 16, 16, 3, 3, 1, "same", 1),         # a tile per image, mostly padding
    # Input channels a multiple of 4 but not of 6 (backward-weights' 4-row gather tiles)
    # with more than 48 output channels and a partial last column panel.
    (1, 6, 7, 20, 70, 3, 3, 1, "same", 1),
    (2, 5, 6, 28, 50, 3, 3, 1, "same", 1),
    # Weight gradients of over 4 MiB (float32), more than a core's L2 on any machine seen:
    # backward-weights as a GEMM the threads share, patches gathered (padding, stride,
    # dilation) or, for a pointwise convolution, x itself.
    (1, 5, 6, 384, 384, 3, 3, 1, "same", 1),
    (2, 7, 5, 264, 520, 3, 3, 2, ((1, 0), (2, 1)), 1),
    (1, 6, 7, 300, 480, 3, 3, 1, "same", (2, 1)),
    (2, 3, 4, 1100, 1040, 1, 1, 1, 0, 1),
    # Dilation at stride 1 where the sizes and padding divide by it: the d_h x d_w phases
    # of every image as one batch of an undilated convolution (Winograd).
    (2, 12, 14, 16, 20, 3, 3, 1, "same", 2),        # F(2x2, 3x3) over 8 phase images
    (3, 16, 16, 16, 16, 3, 3, 1, "same", 2),        # F(4x4, 3x3): 48 tiles of the phases
    (2, 12, 14, 16, 20, 3, 3, 1, "valid", 2),
    (1, 10, 10, 16, 17, 3, 3, 1, ((2, 0), (0, 2)), 2),  # padding on one side of each axis
    (1, 9, 9, 16, 16, 3, 3, 1, "same", 3),          # dilation 3: nine phases
    (2, 8, 7, 16, 16, 3, 3, 1, "same", (2, 1)),     # dilated rows only, 7 columns
]


def _conv_inputs(rng, dtype, config, layout):
    n, h, w, cin, cout, kh, kw, stride, padding, dilation = config
    x = randn(rng, (n, h, w, cin) if layout == "NHWC" else (n, cin, h, w), dtype)
    wt = randn(rng, (kh, kw, cin, cout) if layout == "NHWC" else (cout, cin, kh, kw), dtype)
    options = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    return x, wt, options


for index, config in enumerate(CONV_CONFIGS):
    for layout in ("NHWC", "NCHW"):
        tag = f"{index}-{layout}"

        @case(tag, "conv2d")
        def _(rng, dtype, config=config, layout=layout):
            x, w, options = _conv_inputs(rng, dtype, config, layout)
            return (x, w, randn(rng, (config[4],), dtype)), options

        @case(tag, "conv2d_backward_data")
        def _(rng, dtype, config=config, layout=layout):
            x, w, options = _conv_inputs(rng, dtype, config, layout)
            with backends.use("reference"):
                y = ops.conv2d(x, w, **options)
            return (randn(rng, y.shape, dtype), w, x.shape), options

        @case(tag, "conv2d_backward_weights")
        def _(rng, dtype, config=config, layout=layout):
            x, w, options = _conv_inputs(rng, dtype, config, layout)
            with backends.use("reference"):
                y = ops.conv2d(x, w, **options)
            return (randn(rng, y.shape, dtype), x, w.shape), options

PAIRED_DIRECT = (2, 7, 15, 3, 70, 3, 3, 1, "same", 1)  # direct kernels over pairs of blocks

for activation in ("relu", "sigmoid", "tanh"):
    for name, config in (("", CONV_CONFIGS[0]), ("-paired", PAIRED_DIRECT)):
        @case(f"fused-{activation}{name}", "conv2d")
        def _(rng, dtype, activation=activation, config=config):
            x, w, options = _conv_inputs(rng, dtype, config, "NHWC")
            return (x, w, randn(rng, (config[4],), dtype)), dict(options, activation=activation)


# conv2d_relu_max_pool2d: the cpu backend's fused kernel needs a direct-path patch (first
# layers) and channels filling 64-byte blocks (16 float32, 8 float64); the rest compose, the
# convolution's output in the native workspace (any algorithm: Winograd, indirect, im2col).
FUSED_POOL_CONFIGS = [
    (2, 28, 28, 1, 32, 3, 3, 1, "same", 1),   # the seed's first layer
    (3, 7, 9, 1, 16, 3, 3, 1, "same", 1),     # odd output: the last row and column unpooled
    (1, 9, 8, 3, 48, 5, 3, 1, 1, 1),          # three channel vectors, 5x3 kernel
    (2, 11, 10, 2, 16, 3, 3, 2, "valid", 1),  # stride 2
    (1, 10, 10, 1, 24, 3, 3, 1, "same", 2),   # dilation; 24 channels: composed in float32
    (2, 6, 6, 1, 8, 3, 3, 1, "same", 1),      # 8 channels: fused in float64 only
    (2, 8, 8, 16, 32, 3, 3, 1, "same", 1),    # 144 taps: not the direct path, composed
    (2, 14, 14, 32, 64, 3, 3, 1, "same", 1),  # the seed's second layer (Winograd), composed
    (4, 15, 16, 16, 32, 3, 3, 1, "same", 1),  # composed, F(4x4, 3x3) Winograd, odd rows
    (1, 7, 9, 16, 24, 3, 3, 1, "same", 1),    # composed, odd output: last row and column unpooled
    (2, 9, 9, 20, 8, 5, 5, 2, 1, 1),          # composed, stride 2 (im2col), a 2x2 pool of 5x5
]
for index, config in enumerate(FUSED_POOL_CONFIGS):
    for layout in ("NHWC", "NCHW"):
        for with_bias in (True, False):
            @case(f"{index}-{layout}-{'bias' if with_bias else 'nobias'}",
                  "conv2d_relu_max_pool2d")
            def _(rng, dtype, config=config, layout=layout, with_bias=with_bias):
                x, w, options = _conv_inputs(rng, dtype, config, layout)
                b = randn(rng, (config[4],), dtype) if with_bias else None
                return (x, w, b), options


@case("ties-and-zeros", "conv2d_relu_max_pool2d")
def _(rng, dtype):
    # Small integers: equal maxima (the first in window order wins) and relu's zeros.
    x = rng.integers(-2, 3, (2, 8, 6, 1)).astype(dtype)
    w = rng.integers(-1, 2, (3, 3, 1, 32)).astype(dtype)
    return (x, w), dict(padding="same")


@case("empty-batch", "conv2d")
def _(rng, dtype):
    return (np.zeros((0, 5, 5, 2), dtype), randn(rng, (3, 3, 2, 4), dtype)), dict(padding=1)


for shape, layout in [((4, 7), "NHWC"), ((2, 5, 6, 3), "NHWC"), ((2, 5, 6, 3), "NCHW"),
                      ((1, 1, 1, 1), "NHWC"), ((3,), "NHWC")]:
    @case(f"{'x'.join(map(str, shape))}-{layout}", "bias_backward")
    def _(rng, dtype, shape=shape, layout=layout):
        return (randn(rng, shape, dtype),), dict(layout=layout)


# ------------------------------------------------------------------ pooling

# (n, h, w, c, kernel, stride, padding)
POOL_CONFIGS = [
    (2, 6, 6, 3, 2, None, 0),
    (1, 7, 5, 2, 3, 2, 1),           # overlapping windows, padding
    (2, 1, 1, 4, 1, None, 0),        # 1x1 image
    (1, 9, 8, 5, (3, 2), (2, 1), (1, 0)),
    (3, 28, 28, 8, 2, None, 0),      # the seed's pool shape, fewer channels
    (2, 5, 5, 17, 3, 1, 1),          # channels past one vector, overlapping windows
    (1, 4, 6, 33, 2, 1, 1),
    (1, 3, 3, 64, 2, 1, 0),
    # 2x2 / stride 2 / unpadded on whole channel vectors (the unrolled kernel; 16 floats on
    # AVX-512, 8 on AVX2, 4 on SSE2):
    (2, 28, 28, 32, 2, None, 0),     # the seed's first pool
    (1, 7, 9, 16, 2, 2, 0),          # odd sizes: the last row and column are dropped
    (2, 4, 6, 48, (2, 2), (2, 2), 0),
    # ... and on the rest: fewer channels than a vector (lanes over the flat row, in
    # chunks of pixel pairs), or a vector and a remainder.
    (2, 28, 28, 6, 2, None, 0),      # LeNet-5's first pool
    (1, 5, 301, 5, 2, None, 0),      # a row of several chunks, the last partial
    (1, 6, 10, 20, 2, 2, 0),         # 16 + 4 channels
]


def _pool_input(rng, dtype, config, layout, ties=False, specials=False):
    n, h, w, c = config[:4]
    shape = (n, h, w, c) if layout == "NHWC" else (n, c, h, w)
    if ties:  # few distinct values: the first-in-window tie rule must agree everywhere
        return rng.integers(0, 3, shape).astype(dtype)
    x = randn(rng, shape, dtype)
    if specials:  # NaN (the first in a window wins), infinities, scattered over windows
        flat = x.reshape(-1)
        spots = rng.choice(flat.size, size=max(1, flat.size // 7), replace=False)
        flat[spots] = rng.choice([np.nan, np.inf, -np.inf], size=spots.size)
    return x


for index, config in enumerate(POOL_CONFIGS):
    kernel, stride, padding = config[4:]
    for layout in ("NHWC", "NCHW"):
        tag = f"{index}-{layout}"
        options = dict(kernel=kernel, stride=stride, padding=padding, layout=layout)

        for variant in ("", "-ties", "-specials"):
            @case(tag + variant, "max_pool2d")
            def _(rng, dtype, config=config, layout=layout, options=options, variant=variant):
                return (_pool_input(rng, dtype, config, layout, ties=variant == "-ties",
                                    specials=variant == "-specials"),), options

        @case(tag, "max_pool2d_backward")
        def _(rng, dtype, config=config, layout=layout, options=options):
            x = _pool_input(rng, dtype, config, layout)
            with backends.use("reference"):
                y, argmax = ops.max_pool2d(x, **options)
            return (randn(rng, y.shape, dtype), argmax, x.shape), {}

        for include in (True, False):
            tag2 = f"{tag}-{'incl' if include else 'excl'}"

            @case(tag2, "avg_pool2d")
            def _(rng, dtype, config=config, layout=layout, options=options, include=include):
                return (_pool_input(rng, dtype, config, layout),), dict(
                    options, count_include_pad=include)

            @case(tag2, "avg_pool2d_backward")
            def _(rng, dtype, config=config, layout=layout, options=options, include=include):
                x = _pool_input(rng, dtype, config, layout)
                with backends.use("reference"):
                    y = ops.avg_pool2d(x, **options, count_include_pad=include)
                return (randn(rng, y.shape, dtype), x.shape), dict(
                    options, count_include_pad=include)


# ------------------------------------------------------------------ activations

ELEMENTWISE_SHAPES = [(0,), (1,), (7, 13), (3, 5, 7, 2), (100_003,)]


def _with_specials(x):
    flat = x.reshape(-1)
    if flat.size >= 4:  # NaN and infinities pass through every backend the same way
        flat[:4] = [np.nan, np.inf, -np.inf, 0.0]
    return x


for shape in ELEMENTWISE_SHAPES:
    tag = "x".join(map(str, shape))
    for name in ("relu", "sigmoid", "tanh"):
        @case(tag, name)
        def _(rng, dtype, shape=shape):
            return (_with_specials(randn(rng, shape, dtype) * 4),), {}

        @case(tag, f"{name}_backward")
        def _(rng, dtype, shape=shape, name=name):
            with backends.use("reference"):
                y = getattr(ops, name)(randn(rng, shape, dtype) * 3)
            return (randn(rng, shape, dtype), y), {}

for shape in [(4, 10), (1, 1), (3, 5, 7), (64, 10)]:
    for name in ("softmax", "log_softmax"):
        @case("x".join(map(str, shape)), name)
        def _(rng, dtype, shape=shape):
            return (randn(rng, shape, dtype) * 10,), {}


for shape in [(4, 10), (1, 1), (3, 5, 7)]:
    @case("x".join(map(str, shape)), "softmax_backward")
    def _(rng, dtype, shape=shape):
        with backends.use("reference"):
            y = ops.softmax(randn(rng, shape, dtype))
        return (randn(rng, shape, dtype), y), {}


@case("large-logits", "softmax")
def _(rng, dtype):
    return (randn(rng, (5, 7), dtype) * 1e3,), {}


# ------------------------------------------------------------------ losses

def _labels(rng, dtype, n, classes, kind):
    if kind == "index":
        return rng.integers(0, classes, n)
    if kind == "onehot":
        return np.eye(classes, dtype=dtype)[rng.integers(0, classes, n)]
    soft = rng.random((n, classes)).astype(dtype)
    return soft / soft.sum(axis=1, keepdims=True)


for kind in ("index", "onehot", "soft"):
    for n, classes in [(1, 1), (7, 3), (64, 10)]:
        @case(f"{kind}-{n}x{classes}", "softmax_cross_entropy")
        def _(rng, dtype, kind=kind, n=n, classes=classes):
            return (randn(rng, (n, classes), dtype) * 3, _labels(rng, dtype, n, classes, kind)), {}

        @case(f"{kind}-{n}x{classes}", "softmax_cross_entropy_backward")
        def _(rng, dtype, kind=kind, n=n, classes=classes):
            with backends.use("reference"):
                probs = ops.softmax(randn(rng, (n, classes), dtype))
            return (0.7, probs, _labels(rng, dtype, n, classes, kind)), {}

for shape in [(5,), (5, 3), (1, 1), (4, 2, 3)]:
    @case("x".join(map(str, shape)), "mse_loss")
    def _(rng, dtype, shape=shape):
        return (randn(rng, shape, dtype), randn(rng, shape, dtype)), {}


# ------------------------------------------------------------------ LRN

LRN_CONFIGS = [((2, 4, 5, 7), 2), ((1, 3, 3, 12), 5), ((2, 2, 2, 3), 5), ((2, 3, 3, 32), 5),
               ((1, 2, 2, 4), 0), ((2, 3, 3, 17), 1), ((1, 2, 2, 33), 40), ((1, 2, 2, 64), 5)]
for (shape, radius), layout in itertools.product(LRN_CONFIGS, ("NHWC", "NCHW")):
    tag = f"{'x'.join(map(str, shape))}-r{radius}-{layout}"
    options = dict(depth_radius=radius, bias=1.0, alpha=0.1, beta=0.75, layout=layout)

    def _lrn_x(rng, dtype, shape=shape, layout=layout):
        n, h, w, c = shape
        return randn(rng, (n, h, w, c) if layout == "NHWC" else (n, c, h, w), dtype)

    @case(tag, "local_response_norm")
    def _(rng, dtype, options=options, make=_lrn_x):
        return (make(rng, dtype),), options

    @case(tag, "local_response_norm_backward")
    def _(rng, dtype, options=options, make=_lrn_x):
        x = make(rng, dtype)
        with backends.use("reference"):
            y, scale = ops.local_response_norm(x, **options)
        return (randn(rng, x.shape, dtype), x, y, scale), options


for shape in ((2, 3, 3, 32), (1, 2, 3, 64)):
    @case(f"{'x'.join(map(str, shape))}-tiny-bias-specials", "local_response_norm")
    def _(rng, dtype, shape=shape):
        # With a subnormal (float32) bias, a pixel of zeros or of tiny values has a
        # subnormal scale, and a NaN a NaN one. Each must come out as the exactly rounded
        # roots give it (the fast reciprocal roots skip those lanes).
        x = randn(rng, shape, dtype)
        x[0, 0, 0] = 0.0
        x[0, 0, 1] = 1e-22
        x[0, 1, 1, 5] = np.nan
        return (x,), dict(depth_radius=5, bias=1e-40, alpha=0.5, beta=0.75)


# ------------------------------------------------------------------ dropout

for shape, keep in [((1000,), 0.8), ((3, 7, 5), 0.5), ((2, 3), 1.0), ((0,), 0.5),
                    ((64, 128), 0.8)]:
    tag = f"{'x'.join(map(str, shape))}-keep{keep}"

    @case(tag, "dropout")
    def _(rng, dtype, shape=shape, keep=keep):
        return (randn(rng, shape, dtype),), dict(keep_prob=keep, seed=int(rng.integers(2**63)))

    @case(tag, "dropout_backward")
    def _(rng, dtype, shape=shape, keep=keep):
        return (randn(rng, shape, dtype), rng.random(shape) < keep), dict(keep_prob=keep)


# ------------------------------------------------------------------ optimizers

for momentum, nesterov, decay in [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 1e-2),
                                  (0.0, False, 1e-3)]:
    @case(f"m{momentum}-n{int(nesterov)}-wd{decay}", "sgd_update", inplace=True)
    def _(rng, dtype, momentum=momentum, nesterov=nesterov, decay=decay):
        shape = (37, 5)
        velocity = randn(rng, shape, dtype) if momentum else None
        return (randn(rng, shape, dtype), randn(rng, shape, dtype), velocity), dict(
            lr=0.1, momentum=momentum, weight_decay=decay, nesterov=nesterov)

for step, decay, size, correct in [(1, 0.0, 1, True), (7, 1e-3, 1000, True),
                                   (3, 0.0, 100_003, True), (5, 0.0, 1000, False)]:
    @case(f"step{step}-wd{decay}-{size}" + ("" if correct else "-uncorrected"), "adam_update",
          inplace=True)
    def _(rng, dtype, step=step, decay=decay, size=size, correct=correct):
        return (randn(rng, (size,), dtype), randn(rng, (size,), dtype),
                randn(rng, (size,), dtype) * 0.1, rng.random(size).astype(dtype) * 0.1), dict(
            step=step, lr=0.01, weight_decay=decay, bias_correction=correct)

# The optional parts of the step (a clip factor, decoupled decay, a moving average), alone
# and together, on sizes that leave each thread's chunk a ragged vector tail.
for tag, size, options in [
        ("scaled", 17, dict(grad_scale=0.37, weight_decay=1e-2)),
        ("shrink", 1000, dict(param_decay=3e-3)),
        ("average", 100_003, dict(average_rate=0.1)),
        ("thinc", 1003, dict(grad_scale=0.5, param_decay=1e-3, average_rate=0.25,
                             bias_correction=False))]:
    @case(f"{tag}-{size}", "adam_update", inplace=True)
    def _(rng, dtype, size=size, options=options):
        kwargs = dict(step=3, lr=0.01, **options)
        if "average_rate" in kwargs:
            kwargs["average"] = randn(rng, (size,), dtype)
        return (randn(rng, (size,), dtype), randn(rng, (size,), dtype),
                randn(rng, (size,), dtype) * 0.1, rng.random(size).astype(dtype) * 0.1), kwargs


# ------------------------------------------------------------------ sequences (Thinc's ops)

def _specials(rng, x):
    """NaN and infinities scattered over x (about one value in seven)."""
    flat = x.reshape(-1)
    if flat.size:
        spots = rng.choice(flat.size, size=max(1, flat.size // 7), replace=False)
        flat[spots] = rng.choice([np.nan, np.inf, -np.inf], size=spots.size)
    return x


def _ties(rng, shape, dtype):
    return rng.integers(0, 3, shape).astype(dtype)  # few values: the first maximum must win


# (n, o, p): every piece count 1..5, odd widths, an empty batch and no units
MAXOUT_SHAPES = [(7, 5, 1), (7, 5, 2), (9, 13, 3), (4, 33, 4), (3, 17, 5), (64, 96, 3),
                 (5, 300, 3), (0, 4, 3), (3, 0, 2), (1, 1, 1)]
for shape in MAXOUT_SHAPES:
    tag = "x".join(map(str, shape))
    for variant in ("", "-ties", "-specials"):
        @case(tag + variant, "maxout")
        def _(rng, dtype, shape=shape, variant=variant):
            if variant == "-ties":
                return (_ties(rng, shape, dtype),), {}
            x = randn(rng, shape, dtype)
            return ((_specials(rng, x) if variant else x),), {}

    @case(tag, "maxout_backward")
    def _(rng, dtype, shape=shape):
        with backends.use("reference"):
            _, which = ops.maxout(randn(rng, shape, dtype))
        return (randn(rng, shape[:2], dtype), which, shape[2]), {}


@case("pieces-transposed", "maxout")
def _(rng, dtype):  # a non-contiguous view: pieces first in memory
    return (randn(rng, (3, 6, 5), dtype).transpose(1, 2, 0),), {}


@case("out-and-strided-which", "maxout_backward")
def _(rng, dtype):
    which = rng.integers(0, 4, (6, 20)).astype(np.int32)
    return (randn(rng, (6, 10), dtype), which[:, ::2], 4), dict(
        out=np.full((6, 10, 4), np.nan, dtype))


# Ragged lengths (sum, lengths): zero-length sequences first, last and in between, one
# long sequence, single rows, an empty batch, and sequences but no rows at all.
LENGTHS = {
    "mixed": [3, 0, 1, 5, 2],
    "zeros-at-ends": [0, 4, 0, 0, 3, 0],
    "ones": [1] * 9,
    "one-long": [40],
    "empty-batch": [],
    "no-rows": [0, 0, 0],
    "many": [7, 1, 12, 3, 0, 25, 2, 9, 1, 1, 30, 4],
    "positive": [3, 1, 5, 2, 7, 1],
}
POSITIVE_LENGTHS = {k: v for k, v in LENGTHS.items() if all(v) or not v}
SEQ_WIDTHS = (1, 33, 300)


def _lengths(name, dtype=np.int32):
    return np.array(LENGTHS[name], dtype=dtype)


for name, nw, width in itertools.product(LENGTHS, (0, 1, 2, 3), (1, 33)):
    tag = f"{name}-nw{nw}-i{width}"

    @case(tag, "seq2col")
    def _(rng, dtype, name=name, nw=nw, width=width):
        x = randn(rng, (int(sum(LENGTHS[name])), width), dtype)
        return (x,), dict(nw=nw, lengths=_lengths(name))

    @case(tag, "seq2col_backward")
    def _(rng, dtype, name=name, nw=nw, width=width):
        dy = randn(rng, (int(sum(LENGTHS[name])), width * (2 * nw + 1)), dtype)
        return (dy,), dict(nw=nw, lengths=_lengths(name))

for nw in (1, 3, 40):
    @case(f"no-lengths-nw{nw}", "seq2col")
    def _(rng, dtype, nw=nw):
        return (randn(rng, (23, 7), dtype),), dict(nw=nw)

    @case(f"no-lengths-nw{nw}", "seq2col_backward")
    def _(rng, dtype, nw=nw):
        return (randn(rng, (23, 7 * (2 * nw + 1)), dtype),), dict(nw=nw)


@case("strided-int64-lengths-out-specials", "seq2col")
def _(rng, dtype):
    x = _specials(rng, randn(rng, (12, 20), dtype))[:, ::2]  # NaN never leaks into padding
    lengths = np.array([5, 0, 0, 0, 4, 0, 2, 0, 1, 0], np.int64)[::2]
    return (x,), dict(nw=2, lengths=lengths, out=np.full((12, 50), np.nan, dtype))


@case("fortran-out", "seq2col_backward")
def _(rng, dtype):
    dy = np.asfortranarray(randn(rng, (9, 12), dtype))
    return (dy,), dict(nw=1, lengths=np.array([4, 5]), out=np.full((9, 4), np.nan, dtype))


for name, width in itertools.product(LENGTHS, SEQ_WIDTHS):
    for op in ("reduce_sum", "reduce_mean"):
        @case(f"{name}-o{width}", op)
        def _(rng, dtype, name=name, width=width):
            return (randn(rng, (int(sum(LENGTHS[name])), width), dtype), _lengths(name)), {}

        @case(f"{name}-o{width}", f"{op}_backward")
        def _(rng, dtype, name=name, width=width):
            return (randn(rng, (len(LENGTHS[name]), width), dtype), _lengths(name)), {}

for name, width in itertools.product(POSITIVE_LENGTHS, SEQ_WIDTHS):
    for variant in ("", "-ties", "-specials"):
        @case(f"{name}-o{width}{variant}", "reduce_max")
        def _(rng, dtype, name=name, width=width, variant=variant):
            shape = (int(sum(LENGTHS[name])), width)
            if variant == "-ties":
                return (_ties(rng, shape, dtype), _lengths(name)), {}
            x = randn(rng, shape, dtype)
            return ((_specials(rng, x) if variant else x), _lengths(name)), {}

    @case(f"{name}-o{width}", "reduce_max_backward")
    def _(rng, dtype, name=name, width=width):
        x = randn(rng, (int(sum(LENGTHS[name])), width), dtype)
        with backends.use("reference"):
            _, which = ops.reduce_max(x, _lengths(name))
        return (randn(rng, which.shape, dtype), which, _lengths(name)), {}

for op in ("reduce_sum", "reduce_mean", "reduce_max"):
    @case("strided-x-uint8-lengths-specials", op)
    def _(rng, dtype):
        x = _specials(rng, randn(rng, (16, 34), dtype))[::2, 1::2]
        return (x, np.array([3, 1, 4], np.uint8)), {}

for op in ("reduce_sum_backward", "reduce_mean_backward"):
    @case("out-strided-dy", op)
    def _(rng, dtype, op=op):
        dy = randn(rng, (4, 10), dtype)[:, ::2]
        lengths = np.array([2, 0, 3, 1])
        return (dy, lengths), dict(out=np.full((6, 5), np.nan, dtype))


@case("out-fortran-which", "reduce_max_backward")
def _(rng, dtype):
    lengths = np.array([2, 5, 1, 3])
    which = np.asfortranarray((rng.integers(0, 100, (4, 6)) % lengths[:, None]).astype(np.int32))
    return (randn(rng, (4, 6), dtype), which, lengths), dict(out=np.full((11, 6), np.nan, dtype))


# (t, o, b, k, index dtype): hash-embedding shapes, repeats, no columns, no rows to add
GATHER_CONFIGS = [(50, 96, 30, 4, np.uint32), (50, 300, 30, 4, np.int32),
                  (7, 5, 11, 3, np.int64), (1, 17, 5, 6, np.int32), (9, 33, 0, 4, np.int32),
                  (9, 33, 6, 0, np.int64), (0, 8, 4, 0, np.int32), (12, 1, 20, 2, np.uint8),
                  (20, 64, 13, 1, np.int16)]
for t, o, b, k, index_dtype in GATHER_CONFIGS:
    @case(f"{t}x{o}-{b}x{k}-{np.dtype(index_dtype).name}", "gather_add")
    def _(rng, dtype, t=t, o=o, b=b, k=k, index_dtype=index_dtype):
        indices = rng.integers(0, max(t, 1), (b, k)).astype(index_dtype)
        return (randn(rng, (t, o), dtype), indices), {}


@case("strided-table-fortran-indices-out-specials", "gather_add")
def _(rng, dtype):
    table = _specials(rng, randn(rng, (10, 24), dtype))[:, ::3]
    indices = np.asfortranarray(rng.integers(0, 10, (7, 5)))
    return (table, indices), dict(out=np.full((7, 8), np.nan, dtype))


# ------------------------------------------------------------------ the tests

def _run(name, case_, args, kwargs):
    args = [to_backend(name, a) for a in args]
    kwargs = {k: to_backend(name, v) for k, v in kwargs.items()}
    with backends.use(name):
        result = getattr(ops, case_.op)(*args, **kwargs)
    if case_.inplace:  # the arguments it updates, positional and keyword
        return tuple(to_numpy(a) for a in [*args, *kwargs.values()]
                     if a is not None and hasattr(a, "shape"))
    return to_numpy(result)


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def _params():
    for name_param in BACKEND_PARAMS:
        name = name_param.values[0]
        if name_param.marks:  # an absent GPU: one skipped entry, not one per case
            yield pytest.param(name, CASES[0], id=name, marks=name_param.marks)
            continue
        for c in CASES:
            if overrides(name, c.op):
                yield pytest.param(name, c, id=f"{name}-{c.id}")


@pytest.mark.parametrize("name, case_", list(_params()))
def test_matches_reference(name, case_, dtype):
    rng = np.random.default_rng(zlib.crc32(case_.id.encode()))
    args, kwargs = case_.build(rng, dtype)
    expected = _run("reference", case_, [_copy(a) for a in args],
                    {k: _copy(v) for k, v in kwargs.items()})
    actual = _run(name, case_, [_copy(a) for a in args], {k: _copy(v) for k, v in kwargs.items()})
    assert_close(actual, expected, dtype)


def _strided(x):
    """A non-contiguous view of the same values (every other element of a wider array)."""
    wide = np.empty(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    wide[..., ::2] = x
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or x.shape[-1] <= 1
    return view


def _misaligned(x):
    """The same values in a buffer that starts one byte past an aligned address."""
    raw = np.zeros(x.nbytes + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    view[...] = x
    return view


@pytest.mark.parametrize("make", [_strided, _misaligned], ids=["strided", "misaligned"])
@pytest.mark.parametrize("name", ["reference"] + [p.values[0] for p in BACKEND_PARAMS
                                                  if not p.marks])
@pytest.mark.parametrize("op", ["conv2d", "relu", "tanh_backward", "max_pool2d", "linear",
                                "local_response_norm", "softmax_cross_entropy", "maxout",
                                "seq2col", "reduce_sum", "reduce_max", "gather_add"])
def test_odd_memory_layouts_are_read_correctly(op, name, make):
    """Non-contiguous and misaligned inputs are copied, never misread."""
    rng = np.random.default_rng(0)
    c = next(c for c in CASES if c.op == op)
    args, kwargs = c.build(rng, np.dtype(np.float32))
    expected = _run("reference", c, args, kwargs)
    odd = [make(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.ndim else a
           for a in args]
    assert_close(_run(name, c, odd, kwargs), expected)


@pytest.mark.parametrize("make", [np.ascontiguousarray, _strided, _misaligned],
                         ids=["contiguous", "strided", "misaligned"])
@pytest.mark.parametrize("name", [p.values[0] for p in BACKEND_PARAMS
                                  if not p.marks and p.values[0] != "cuda"])
def test_gemm_and_linear_with_out_given(name, make):
    """gemm and linear with ``out=`` go to the cpu binding first (plain arrays run there);
    the odd inputs it refuses are copied by the full path, not misread and not rejected."""
    rng = np.random.default_rng(1)
    a, b = randn(rng, (7, 33), np.float32), randn(rng, (33, 5), np.float32)
    bias = randn(rng, (5,), np.float32)
    with backends.use(name):
        got = ops.gemm(make(a), make(b), alpha=0.5, out=np.full((7, 5), np.nan, np.float32))
        got_linear = ops.linear(make(a), make(b), make(bias), activation="tanh",
                                out=np.empty((7, 5), np.float32))
    with backends.use("reference"):
        assert_close(to_numpy(got), ops.gemm(a, b, alpha=0.5))
        assert_close(to_numpy(got_linear), ops.linear(a, b, bias, activation="tanh"))


@pytest.mark.parametrize("name", [p.values[0] for p in BACKEND_PARAMS if not p.marks])
@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       cin=st.sampled_from([1, 2, 3, 5, 16, 19]), cout=st.sampled_from([1, 2, 5, 16, 21]),
       k=st.integers(1, 3), stride=st.integers(1, 3),
       dilation=st.integers(1, 2), padding=st.sampled_from(["same", "valid", 0, 1]),
       layout=st.sampled_from(["NHWC", "NCHW"]))
def test_conv_drawn_shapes(name, n, h, w, cin, cout, k, stride, dilation, padding, layout):
    span = dilation * (k - 1) + 1
    room = min(h, w) + (2 * padding if padding in (0, 1) else 0)
    if padding != "same" and span > room:
        return  # the kernel does not fit; test_contract's bad-input cases cover that error
    rng = np.random.default_rng(n * 1000 + h * 100 + w)
    config = (n, h, w, cin, cout, k, k, stride, padding, dilation)
    x, wt, options = _conv_inputs(rng, np.dtype(np.float64), config, layout)
    for op in ("conv2d", "conv2d_backward_data", "conv2d_backward_weights"):
        with backends.use("reference"):
            y = ops.conv2d(x, wt, **options)
        dy = randn(rng, y.shape, np.float64)
        args = {"conv2d": (x, wt), "conv2d_backward_data": (dy, wt, x.shape),
                "conv2d_backward_weights": (dy, x, wt.shape)}[op]
        c = Case(op, op, None)
        assert_close(_run(name, c, args, options), _run("reference", c, args, options))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_weight_gradient_larger_than_l2_on_every_thread_count(dtype, threads):
    """Backward-weights whose gradient outgrows a core's L2 (as the machine reports it) runs
    as GEMMs the threads share over blocks of rows (several here: 512 rows of 4,608-wide
    patches, the later blocks added to the first)."""
    C = native_module()
    out_c = -(-C.cache_sizes()["l2"] * 5 // 4 // (9 * 512 * np.dtype(dtype).itemsize) // 16) * 16
    rng = np.random.default_rng(threads)
    x = randn(rng, (2, 16, 16, 512), dtype)
    dy = randn(rng, (2, 16, 16, out_c), dtype)
    with backends.use("reference"):
        want = ops.conv2d_backward_weights(dy, x, (3, 3, 512, out_c), padding="same")
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(threads)
        with backends.use("cpu"):
            got = ops.conv2d_backward_weights(dy, x, (3, 3, 512, out_c), padding="same")
    finally:
        fastnn.set_num_threads(before)
    assert_close(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layer", ["dilated", "pointwise"])
def test_im2col_blocks_shared_out_evenly(dtype, threads, layer):
    """im2col's per-thread passes over 2.6 blocks' worth of output rows (a block being 3/8
    of a core's L2 as the machine reports it): the rows are cut into more, smaller blocks of
    one size but the last, their count a multiple of the team (here 3 -> 3, 4 or 6), so a
    wrong block offset or a lost last block shows.  A 3-channel 5x5 dilated layer (forward
    and backward-weights on im2col) and a 1x1 layer (backward-weights on x itself)."""
    C = native_module()
    itemsize = np.dtype(dtype).itemsize
    cin, k, dilation = (3, 5, 2) if layer == "dilated" else (80, 1, 1)
    block_rows = C.cache_sizes()["l2"] * 3 // 8 // (k * k * cin * itemsize)
    side = int(np.ceil(np.sqrt(2.6 * block_rows)))
    rng = np.random.default_rng(threads)
    x = randn(rng, (1, side + dilation * (k - 1), side, cin), dtype)
    w = randn(rng, (k, k, cin, 24), dtype)
    options = {"padding": ((0, 0), (0, dilation * (k - 1))), "dilation": dilation}
    with backends.use("reference"):
        want_y = ops.conv2d(x, w, **options)
        dy = randn(rng, want_y.shape, dtype)
        want_dw = ops.conv2d_backward_weights(dy, x, w.shape, **options)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(threads)
        with backends.use("cpu"):
            got_y = ops.conv2d(x, w, **options)
            got_dw = ops.conv2d_backward_weights(dy, x, w.shape, **options)
    finally:
        fastnn.set_num_threads(before)
    assert want_y.shape[1] * want_y.shape[2] > 2 * block_rows
    assert_close(got_y, want_y)
    assert_close(got_dw, want_dw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("padding", ["same", ((2, 0), (0, 1))])
def test_winograd_split_over_output_channels(dtype, threads, padding):
    """A 3x3 layer with too few tiles for F(4x4, 3x3) (batch 1, 10x11) whose F(2x2, 3x3)
    weights U (16 x c_in x c_out) take 1.5x a core's L2 as the machine reports it: on two
    threads or more, F(2x2, 3x3) with its GEMMs split over output channels (forward, and
    backward-data as a forward over dy); on one, another path. c_out is not a multiple of
    16, so the last thread's columns end mid-vector."""
    _winograd_columns_case(dtype, threads, 1, 10, padding, positions=16, l2_times=1.5, tail=8)


def _winograd_columns_case(dtype, threads, batch, size, padding, positions=36, l2_times=3,
                           tail=24):
    """Forward, backward-data and backward-weights of a 3x3 layer on batch x size x (size +
    1) images whose transformed weights (positions x c_in x c_out: 36 for F(4x4, 3x3), 16
    for F(2x2, 3x3)) take over l2_times a core's L2 as the machine reports it, against the
    reference; c_out is a multiple of 16 plus tail."""
    C = native_module()
    c_in = 96
    itemsize = np.dtype(dtype).itemsize
    c_out = int(l2_times * C.cache_sizes()["l2"]) // (positions * c_in * itemsize) // 16 * 16 + tail
    rng = np.random.default_rng(threads)
    x = randn(rng, (batch, size, size + 1, c_in), dtype)
    w = randn(rng, (3, 3, c_in, c_out), dtype)
    b = randn(rng, (c_out,), dtype)
    options = dict(padding=padding)
    with backends.use("reference"):
        y_want = ops.conv2d(x, w, b, activation="relu", **options)
        dy = randn(rng, y_want.shape, dtype)
        dx_want = ops.conv2d_backward_data(dy, w, x.shape, **options)
        dw_want = ops.conv2d_backward_weights(dy, x, w.shape, **options)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(threads)
        with backends.use("cpu"):
            y = ops.conv2d(x, w, b, activation="relu", **options)
            dx = ops.conv2d_backward_data(dy, w, x.shape, **options)
            dw = ops.conv2d_backward_weights(dy, x, w.shape, **options)
    finally:
        fastnn.set_num_threads(before)
    assert_close(y, y_want)
    assert_close(dx, dx_want)
    assert_close(dw, dw_want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("padding", ["same", ((2, 0), (0, 1))])
def test_winograd4_split_over_output_channels(dtype, threads, padding):
    """F(4x4, 3x3) whose U outgrows L2 runs its GEMMs over all tiles, split over output
    channels (U read once, not once per block of tiles), and backward-weights its sums the
    same way: 3 images of 16x17, 60 tiles; c_out not a multiple of 16."""
    _winograd_columns_case(dtype, threads, 3, 16, padding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_indirect_split_over_column_panels(dtype, threads):
    """Indirect GEMMs with too few rows to share out evenly (a few chunks) and a panel count
    the threads divide give each thread its own column panels: a stride-2 forward with bias
    and relu (128 outputs) and a 5x5 stride-1 backward-data (128-channel dx), on one, two
    and three threads (three take rows: the panels do not divide)."""
    rng = np.random.default_rng(threads)
    x = randn(rng, (1, 13, 12, 24), dtype)
    w = randn(rng, (3, 3, 24, 128), dtype)
    b = randn(rng, (128,), dtype)
    x5 = randn(rng, (1, 9, 10, 128), dtype)
    w5 = randn(rng, (5, 5, 128, 20), dtype)
    with backends.use("reference"):
        y_want = ops.conv2d(x, w, b, stride=2, padding="same", activation="relu")
        dy = randn(rng, (1, 9, 10, 20), dtype)
        dx_want = ops.conv2d_backward_data(dy, w5, x5.shape, padding="same")
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(threads)
        with backends.use("cpu"):
            y = ops.conv2d(x, w, b, stride=2, padding="same", activation="relu")
            dx = ops.conv2d_backward_data(dy, w5, x5.shape, padding="same")
    finally:
        fastnn.set_num_threads(before)
    assert_close(y, y_want)
    assert_close(dx, dx_want)


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd4_split_over_super_blocks_of_tiles(threads):
    """The same with more tiles than one super-block holds (32 MiB of V and M): 2 images of
    80x81, 840 tiles, in two or more super-blocks, the later ones added to the first's sums."""
    _winograd_columns_case(np.float32, threads, 2, 80, "same")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("padding", ["same", ((2, 0), (0, 1))])
def test_winograd2_weight_gradient_split_over_output_channels(dtype, threads, padding):
    """Backward-weights with too few tiles for F(4x4, 3x3) (one image of 14x15: 16 of them)
    but 56 of F(2x2, 3x3)'s, whose sums outgrow L2: F(3x3, 2x2) over all tiles, split over
    output channels."""
    _winograd_columns_case(dtype, threads, 1, 14, padding, positions=16)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("config", [
    (1, 13, 12, 24, 40, 3, 3, 2, "same", 1),   # stride 2: GEMMs, then col2im, per image
    (1, 17, 10, 6, 10, 5, 5, 2, 2, 1),         # col2im in bands of output rows, 5x5 stride 2
    (2, 9, 10, 20, 36, 3, 3, 2, 1, 1),         # two images on three threads
    (1, 11, 9, 48, 20, 1, 1, 1, 0, 1),         # pointwise: the whole batch in one GEMM
    (2, 6, 7, 40, 24, 1, 1, 1, 0, 1),
])
def test_backward_data_with_fewer_images_than_threads(config, threads):
    """With fewer images than threads, backward-data's GEMMs run on every thread."""
    native_module()
    rng = np.random.default_rng(threads)
    x, w, options = _conv_inputs(rng, np.dtype(np.float64), config, "NHWC")
    with backends.use("reference"):
        y = ops.conv2d(x, w, **options)
        dy = randn(rng, y.shape, np.float64)
        want = ops.conv2d_backward_data(dy, w, x.shape, **options)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(threads)
        got = _run("cpu", Case("conv2d_backward_data", "conv2d_backward_data", None),
                   (dy, w, x.shape), options)
    finally:
        fastnn.set_num_threads(before)
    assert_close(got, want)


def test_every_op_has_parity_cases():
    """The table above covers the whole contract (forward and backward of every op)."""
    assert {c.op for c in CASES} == set(ops.__all__)
