"""2-D convolution: forward (+ bias + activation) and both backward passes.

All three are one GEMM each, computed tile by tile so the gathered operand never leaves
the cache: a parallel task gathers ``_TILE`` rows of the patch matrix into a private
buffer (im2col of ``_TILE`` output pixels for the forward; the ``dy`` rows each input
pixel receives from, for the data gradient) and multiplies them by the prepared weight
matrix with :func:`_dot_4x4`, a 4x4 register block of dot products along the shared
dimension, which LLVM vectorises (16 accumulators; "reassoc" lets it split the sums).
Bias and activation are applied as each block is stored. The weight gradient is the same
block product with pixels as the shared dimension: per-thread partial sums over pixel
chunks, reduced in a fixed order (deterministic for a given thread count).

Native layout is NHWC with HWIO weights; NCHW/OIHW are transposed at the boundary.
Weight matrices have their row count rounded up to a multiple of 4 with zero rows, and
tiles their tail rows zeroed, so the block loop needs no ragged edge.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from fastnn._shapes import (
    conv_output_shape,
    from_hwio,
    from_nhwc,
    hwio_shape,
    nhwc_shape,
    to_hwio,
    to_nhwc,
)
from fastnn.backends.numba.activations import ACTIVATION_CODES, RELU, activate
from fastnn.backends.numba.common import JIT, REDUCE, alloc, sync_threads

_TILE = 32  # patch rows per task: 32 x (kh*kw*c_in) stays in L1/L2 for the seed shapes
_CHUNK = 256  # pixels per weight-gradient step
_DIRECT_BELOW = 4  # input channels under which the forward accumulates directly


@njit(inline="always", **JIT, fastmath={"reassoc", "contract"})
def _dot_4x4(a, ra, b, rb, zero):
    """Dot products of rows ``ra..ra+3`` of ``a`` with rows ``rb..rb+3`` of ``b``."""
    a0, a1, a2, a3 = a[ra], a[ra + 1], a[ra + 2], a[ra + 3]
    b0, b1, b2, b3 = b[rb], b[rb + 1], b[rb + 2], b[rb + 3]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for k in range(a.shape[1]):
        x0, x1, x2, x3 = a0[k], a1[k], a2[k], a3[k]
        y0, y1, y2, y3 = b0[k], b1[k], b2[k], b3[k]
        s00 += x0 * y0
        s01 += x0 * y1
        s02 += x0 * y2
        s03 += x0 * y3
        s10 += x1 * y0
        s11 += x1 * y1
        s12 += x1 * y2
        s13 += x1 * y3
        s20 += x2 * y0
        s21 += x2 * y1
        s22 += x2 * y2
        s23 += x2 * y3
        s30 += x3 * y0
        s31 += x3 * y1
        s32 += x3 * y2
        s33 += x3 * y3
    return ((s00, s01, s02, s03), (s10, s11, s12, s13), (s20, s21, s22, s23),
            (s30, s31, s32, s33))


@njit(inline="always", **JIT)
def _epilogue(out, first, rows, bias, has_bias, code, zero, one):
    """``out[first:first + rows] = activation(out + bias)``, one vectorisable pass each."""
    for r in range(first, first + rows):
        if has_bias:
            for o in range(out.shape[1]):
                out[r, o] += bias[o]
        if code == RELU:
            for o in range(out.shape[1]):
                v = out[r, o]
                out[r, o] = v if not v <= zero else zero
        elif code != 0:
            for o in range(out.shape[1]):
                out[r, o] = activate(out[r, o], code, zero, one)


@njit(inline="always", **JIT, fastmath={"reassoc", "contract"})
def _tile_product(tile, rows, weights, out, first, zero):
    """``out[first + r, o] = tile[r] . weights[o]`` for ``r < rows``, ``o < out.shape[1]``."""
    columns = out.shape[1]
    for o in range(0, weights.shape[0], 4):
        for r in range(0, rows, 4):
            block = _dot_4x4(tile, r, weights, o, zero)
            for i in range(min(4, rows - r)):
                for j in range(min(4, columns - o)):
                    out[first + r + i, o + j] = block[i][j]


@njit(inline="always", **JIT)
def _tile_start(t, size, pixels, ho, wo):
    """Tile ``t`` of ``size`` pixels (of ``pixels``, over ``ho x wo`` images): its first
    pixel, its pixel count and the first pixel's ``(b, oh, ow)``."""
    first = t * size
    return first, min(size, pixels - first), first // (ho * wo), (first // wo) % ho, first % wo


@njit(inline="always", **JIT)
def _advance(b, oh, ow, ho, wo):
    """The pixel after ``(b, oh, ow)`` in row-major order (no division per pixel)."""
    ow += 1
    if ow == wo:
        ow = 0
        oh += 1
        if oh == ho:
            oh = 0
            b += 1
    return b, oh, ow


@njit(**REDUCE)
def _conv_forward_kernel(x, weights, bias, has_bias, y, geometry, code, zero, one, slots):
    """``y`` (n*ho*wo, c_out) from ``x`` NHWC and ``weights`` (c_out rounded to 4, K):
    im2col of ``_TILE`` pixels into a per-thread tile, then the 4x4 dot blocks."""
    (kh, kw, sh, sw, top, left, dh, dw, ho, wo) = geometry
    n, h, w, c_in = x.shape
    depth = kh * kw * c_in
    pixels = n * ho * wo
    tiles = (pixels + _TILE - 1) // _TILE
    for s in prange(slots):
        tile = np.zeros((_TILE, depth), dtype=x.dtype)
        for t in range(s, tiles, slots):
            first, rows, b, oh, ow = _tile_start(t, _TILE, pixels, ho, wo)
            if rows < _TILE:
                tile[:, :] = zero
            for r in range(rows):
                if r:
                    b, oh, ow = _advance(b, oh, ow, ho, wo)
                for i in range(kh):
                    ih = oh * sh - top + i * dh
                    for j in range(kw):
                        iw = ow * sw - left + j * dw
                        k = (i * kw + j) * c_in
                        if 0 <= ih < h and 0 <= iw < w:
                            for c in range(c_in):
                                tile[r, k + c] = x[b, ih, iw, c]
                        else:
                            for c in range(c_in):
                                tile[r, k + c] = zero
            _tile_product(tile, rows, weights, y, first, zero)
            _epilogue(y, first, rows, bias, has_bias, code, zero, one)


@njit(**REDUCE)
def _conv_forward_direct_kernel(x, weights, bias, has_bias, y, geometry, code, zero, one,
                                slots):
    """Few input channels (K too short to vectorise a dot product along it): each output
    row accumulates ``x * weights[k]`` over its taps, vectorised along c_out;
    ``weights`` is (K, c_out)."""
    (kh, kw, sh, sw, top, left, dh, dw, ho, wo) = geometry
    n, h, w, c_in = x.shape
    c_out = y.shape[1]
    pixels = n * ho * wo
    tiles = (pixels + _TILE - 1) // _TILE
    for s in prange(slots):
        for t in range(s, tiles, slots):
            first, rows, b, oh, ow = _tile_start(t, _TILE, pixels, ho, wo)
            for r in range(rows):
                if r:
                    b, oh, ow = _advance(b, oh, ow, ho, wo)
                q = first + r
                for o in range(c_out):
                    y[q, o] = zero
                for i in range(kh):
                    ih = oh * sh - top + i * dh
                    if 0 <= ih < h:
                        for j in range(kw):
                            iw = ow * sw - left + j * dw
                            if 0 <= iw < w:
                                k = (i * kw + j) * c_in
                                for c in range(c_in):
                                    a = x[b, ih, iw, c]
                                    for o in range(c_out):
                                        y[q, o] += a * weights[k + c, o]
            _epilogue(y, first, rows, bias, has_bias, code, zero, one)


@njit(**REDUCE)
def _conv_backward_data_kernel(dy, weights, dx, geometry, zero, slots):
    """``dx`` (n*h*w, c_in) from ``dy`` NHWC and ``weights`` (c_in rounded to 4,
    kh*kw*c_out) with ``weights[ci, (i*kw + j)*c_out + co] = w[i, j, ci, co]``: a tile
    row holds, per tap, the ``dy`` row that reads this input pixel through that tap."""
    (kh, kw, sh, sw, top, left, dh, dw, h, w) = geometry
    n, ho, wo, c_out = dy.shape
    depth = kh * kw * c_out
    pixels = n * h * w
    tiles = (pixels + _TILE - 1) // _TILE
    for s in prange(slots):
        tile = np.zeros((_TILE, depth), dtype=dy.dtype)
        for t in range(s, tiles, slots):
            first, rows, b, ih, iw = _tile_start(t, _TILE, pixels, h, w)
            if rows < _TILE:
                tile[:, :] = zero
            for r in range(rows):
                if r:
                    b, ih, iw = _advance(b, ih, iw, h, w)
                for i in range(kh):
                    oh_strided = ih + top - i * dh  # = oh * sh when output oh reads ih here
                    oh = oh_strided // sh
                    row_ok = oh_strided >= 0 and oh * sh == oh_strided and oh < ho
                    for j in range(kw):
                        ow_strided = iw + left - j * dw
                        ow = ow_strided // sw
                        k = (i * kw + j) * c_out
                        if row_ok and ow_strided >= 0 and ow * sw == ow_strided and ow < wo:
                            for c in range(c_out):
                                tile[r, k + c] = dy[b, oh, ow, c]
                        else:
                            for c in range(c_out):
                                tile[r, k + c] = zero
            _tile_product(tile, rows, weights, dx, first, zero)


@njit(**REDUCE)
def _conv_backward_weights_kernel(dy, x, partial, geometry, zero):
    """``partial[s]`` (c_out rounded to 4, K rounded to 4): thread slot ``s``'s share of
    ``dy^T @ patches`` over pixel chunks ``s, s + slots, ...``. Both operands are gathered
    transposed (pixels contiguous), so the 4x4 dot blocks run along the pixels."""
    (kh, kw, sh, sw, top, left, dh, dw, ho, wo) = geometry
    n, h, w, c_in = x.shape
    c_out = dy.shape[3]
    slots, c_out_rounded, depth_rounded = partial.shape
    pixels = n * ho * wo
    chunks = (pixels + _CHUNK - 1) // _CHUNK
    x_flat = x.reshape(-1)
    dy_flat = dy.reshape(-1)
    for s in prange(slots):
        patches_t = np.zeros((depth_rounded, _CHUNK), dtype=x.dtype)
        dy_t = np.zeros((c_out_rounded, _CHUNK), dtype=x.dtype)
        row = np.empty(_CHUNK, dtype=np.int64)
        col = np.empty(_CHUNK, dtype=np.int64)
        image = np.empty(_CHUNK, dtype=np.int64)
        source = np.empty(_CHUNK, dtype=np.int64)
        for chunk in range(s, chunks, slots):
            first, count, b, oh, ow = _tile_start(chunk, _CHUNK, pixels, ho, wo)
            if count < _CHUNK:
                patches_t[:, :] = zero
                dy_t[:, :] = zero
            for r in range(count):
                if r:
                    b, oh, ow = _advance(b, oh, ow, ho, wo)
                image[r], row[r], col[r] = b, oh * sh - top, ow * sw - left
            for c in range(c_out):
                for r in range(count):
                    dy_t[c, r] = dy_flat[(first + r) * c_out + c]
            for i in range(kh):
                for j in range(kw):
                    for r in range(count):
                        ih, iw = row[r] + i * dh, col[r] + j * dw
                        inside = 0 <= ih < h and 0 <= iw < w
                        source[r] = ((image[r] * h + ih) * w + iw) * c_in if inside else -1
                    k = (i * kw + j) * c_in
                    for c in range(c_in):
                        for r in range(count):
                            patches_t[k + c, r] = (x_flat[source[r] + c] if source[r] >= 0
                                                   else zero)
            for o in range(0, c_out_rounded, 4):
                for k in range(0, depth_rounded, 4):
                    block = _dot_4x4(dy_t, o, patches_t, k, zero)
                    for i in range(4):
                        for j in range(4):
                            partial[s, o + i, k + j] += block[i][j]


def _slots(pixels):
    """Parallel tasks: one per thread, each taking every ``slots``-th tile."""
    return max(1, min(numba.get_num_threads(), -(-pixels // _TILE)))


def _round4(count):
    return (count + 3) // 4 * 4


def _nhwc(a, layout):
    return a if layout == "NHWC" else np.ascontiguousarray(to_nhwc(a, layout))


def _nhwc_out(out, shape, dtype, layout):
    """Where an NHWC kernel writes its ``shape`` result: ``out`` itself (or a new array)
    for NHWC, a scratch array to convert from otherwise."""
    return alloc(out, shape, dtype) if layout == "NHWC" else np.empty(shape, dtype=dtype)


def _in_layout(result, out, shape, layout):
    """The NHWC ``result`` as the caller's ``layout`` (of ``shape``), in ``out`` if given."""
    if layout == "NHWC":
        return result
    converted = alloc(out, shape, result.dtype)
    converted[...] = from_nhwc(result, layout)
    return converted


def _geometry(kernel_hw, stride, padding, dilation, size):
    return (kernel_hw[0], kernel_hw[1], stride[0], stride[1], padding[0][0], padding[1][0],
            dilation[0], dilation[1], size[0], size[1])


class ConvOps:
    numba_few_channel_data = False  # True: backward-data of < 4 input channels in numba too

    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        sync_threads()
        x_nhwc = _nhwc(x, layout)
        w_hwio = to_hwio(w, layout)
        c_in = x_nhwc.shape[3]
        kh, kw, _, c_out = w_hwio.shape
        n, ho, wo, _ = conv_output_shape(x_nhwc.shape, w_hwio.shape, stride, padding, dilation,
                                         "NHWC")
        depth = kh * kw * c_in
        y = _nhwc_out(out, (n, ho, wo, c_out), x.dtype, layout)
        t = x.dtype.type
        if y.size:
            if c_in < _DIRECT_BELOW:
                kernel = _conv_forward_direct_kernel
                weights = np.ascontiguousarray(w_hwio.reshape(depth, c_out))
            else:
                # (c_out, kh*kw*c_in): one output channel's weights per row, in patch order.
                kernel = _conv_forward_kernel
                weights = np.zeros((_round4(c_out), depth), dtype=x.dtype)
                weights[:c_out] = w_hwio.reshape(depth, c_out).T
            kernel(x_nhwc, weights, weights[0] if b is None else b, b is not None,
                   y.reshape(-1, c_out), _geometry((kh, kw), stride, padding, dilation, (ho, wo)),
                   ACTIVATION_CODES[activation], t(0), t(1), _slots(n * ho * wo))
        return _in_layout(y, out, (n, c_out, ho, wo), layout)

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if nhwc_shape(x_shape, layout)[3] < _DIRECT_BELOW and not self.numba_few_channel_data:
            # Few input channels: the kernel below pads them to a 4-row block and gathers a
            # kh*kw*c_out patch per input pixel; NumPy's GEMM-and-scatter is 2.7x faster
            # (the seed's first layer, 2 threads). numba_few_channel_data keeps it testable.
            return super().conv2d_backward_data(dy, w, x_shape, stride=stride,
                                                padding=padding, dilation=dilation,
                                                layout=layout, out=out)
        sync_threads()
        dy_nhwc = _nhwc(dy, layout)
        w_hwio = to_hwio(w, layout)
        n, h, width, c_in = nhwc_shape(x_shape, layout)
        kh, kw, _, c_out = w_hwio.shape
        # (c_in, kh*kw*c_out): what each input channel contributes to every (tap, c_out).
        weights = np.zeros((_round4(c_in), kh * kw * c_out), dtype=dy.dtype)
        weights[:c_in] = w_hwio.transpose(2, 0, 1, 3).reshape(c_in, -1)
        dx = _nhwc_out(out, (n, h, width, c_in), dy.dtype, layout)
        t = dy.dtype.type
        if dx.size:
            _conv_backward_data_kernel(dy_nhwc, weights, dx.reshape(-1, c_in),
                                       _geometry((kh, kw), stride, padding, dilation,
                                                 (h, width)), t(0), _slots(n * h * width))
        return _in_layout(dx, out, tuple(x_shape), layout)

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        sync_threads()
        dy_nhwc = _nhwc(dy, layout)
        x_nhwc = _nhwc(x, layout)
        kh, kw, _, _ = hwio_shape(w_shape, layout)
        c_in = x_nhwc.shape[3]
        _, ho, wo, c_out = dy_nhwc.shape
        depth = kh * kw * c_in
        pixels = dy_nhwc.shape[0] * ho * wo
        slots = max(1, min(numba.get_num_threads(), -(-pixels // _CHUNK)))
        partial = np.zeros((slots, _round4(c_out), _round4(depth)), dtype=dy.dtype)
        if pixels:
            _conv_backward_weights_kernel(dy_nhwc, x_nhwc, partial,
                                          _geometry((kh, kw), stride, padding, dilation,
                                                    (ho, wo)), dy.dtype.type(0))
        total = partial[0]
        for s in range(1, slots):
            total += partial[s]
        dw = total[:c_out, :depth].reshape(c_out, kh, kw, c_in).transpose(1, 2, 3, 0)  # OHWI
        result = alloc(out, tuple(w_shape), dy.dtype)
        result[...] = from_hwio(dw, layout)
        return result
