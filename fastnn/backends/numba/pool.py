"""Max and average pooling, forward and backward, in either layout without a transpose.

Kernels see every array flat with element strides ``(n, h, w, c)``, so NHWC and NCHW share
them; the loop order follows the layout (channels innermost for NHWC, pixels innermost
for NCHW) so the innermost loop walks contiguous memory. Each window is clipped to the
real pixels, so padding never wins a max and never adds to a sum.

* Max: first maximum in row-major window order wins (strict ``>``), and the first NaN
  wins over everything, as ``np.argmax``; argmax is the flat index into ``x``. NHWC
  compares whole channel vectors per window cell (vectorised selects), each thread taking
  a contiguous block of output rows.
* Max backward: scatter-add, parallel over the batch (an image's argmax indices all lie
  in that image's block of ``x``; anything else falls back to one sequential pass).
* Average backward: each input pixel gathers ``dy / divisor`` from the windows that cover
  it, so no two threads write the same element.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from fastnn._shapes import nhwc_shape, pool_output_shape
from fastnn.backends.base import argmax_out_of_range
from fastnn.backends.numba.common import JIT, PARALLEL, alloc, flat, sync_threads


@njit(inline="always", **JIT)
def _window(out_pos, stride, pad, kernel, size):
    """``[start, stop)`` of the real input pixels one window covers along one axis."""
    start = out_pos * stride - pad
    return max(start, 0), min(start + kernel, size)


@njit(inline="always", **JIT)
def _max_cell(x, y, argmax, n, oh, ow, c, geometry):
    (h, w, kh, kw, sh, sw, ph, pw, xn, xh, xw, xc, yn, yh, yw, yc) = geometry
    i0, i1 = _window(oh, sh, ph, kh, h)
    j0, j1 = _window(ow, sw, pw, kw, w)
    base = n * xn + c * xc
    best_index = base + i0 * xh + j0 * xw
    best = x[best_index]
    for i in range(i0, i1):
        for j in range(j0, j1):
            index = base + i * xh + j * xw
            v = x[index]
            take = (v > best) | ((v != v) & (best == best))  # no short-circuit: see below
            best = v if take else best
            best_index = index if take else best_index
    out = n * yn + oh * yh + ow * yw + c * yc
    y[out] = best
    argmax[out] = best_index


@njit(**PARALLEL)
def _max_pool_kernel(x, y, argmax, n, c, ho, wo, geometry, channels_last):
    if channels_last:
        for r in prange(n * ho):
            for ow in range(wo):
                for ch in range(c):
                    _max_cell(x, y, argmax, r // ho, r % ho, ow, ch, geometry)
    else:
        for r in prange(n * c):
            for oh in range(ho):
                for ow in range(wo):
                    _max_cell(x, y, argmax, r // c, oh, ow, r % c, geometry)


@njit(**JIT)
def _max_pool_nhwc_rows(x, y, argmax, first_row, stop_row, geometry):
    """NHWC (4-D arrays) rows ``[first_row, stop_row)`` of ``n * ho``: each window cell
    compares a whole channel vector with the running best. The rule is written with
    bitwise ``|``/``&`` and selects: a short-circuit ``or`` here becomes branches that
    mispredict on every other element and stop LLVM vectorising over channels."""
    (h, w, kh, kw, sh, sw, ph, pw) = geometry[:8]
    c = x.shape[3]
    ho, wo = y.shape[1], y.shape[2]
    for row in range(first_row, stop_row):
        n = row // ho
        oh = row - n * ho
        i0, i1 = _window(oh, sh, ph, kh, h)
        for ow in range(wo):
            j0, j1 = _window(ow, sw, pw, kw, w)
            start = ((n * h + i0) * w + j0) * c
            for ch in range(c):
                y[n, oh, ow, ch] = x[n, i0, j0, ch]
                argmax[n, oh, ow, ch] = start + ch
            for i in range(i0, i1):
                for j in range(j0, j1):
                    base = ((n * h + i) * w + j) * c
                    for ch in range(c):
                        v = x[n, i, j, ch]
                        best = y[n, oh, ow, ch]
                        take = (v > best) | ((v != v) & (best == best))
                        y[n, oh, ow, ch] = v if take else best
                        argmax[n, oh, ow, ch] = base + ch if take else argmax[n, oh, ow, ch]


@njit(**PARALLEL)
def _max_pool_nhwc_kernel(x, y, argmax, geometry, slots):
    # One contiguous block of rows per thread, the loops in a plain function: LLVM
    # vectorises them there, not inside a prange body.
    rows = y.shape[0] * y.shape[1]
    per = (rows + slots - 1) // slots
    for s in prange(slots):
        _max_pool_nhwc_rows(x, y, argmax, s * per, min(rows, (s + 1) * per), geometry)


@njit(**JIT)
def _avg_pool_nhwc_rows(x, y, first_row, stop_row, c, ho, wo, geometry, count_include_pad,
                        zero):
    (h, w, kh, kw, sh, sw, ph, pw, xn, xh, xw, xc, yn, yh, yw, yc) = geometry
    for row in range(first_row, stop_row):
        n, oh = row // ho, row % ho
        i0, i1 = _window(oh, sh, ph, kh, h)
        for ow in range(wo):
            j0, j1 = _window(ow, sw, pw, kw, w)
            out = (row * wo + ow) * c
            for ch in range(c):
                y[out + ch] = zero
            for i in range(i0, i1):
                for j in range(j0, j1):
                    base = n * xn + i * xh + j * xw
                    for ch in range(c):
                        y[out + ch] += x[base + ch]
            divisor = zero + (kh * kw if count_include_pad else (i1 - i0) * (j1 - j0))
            for ch in range(c):
                y[out + ch] /= divisor


@njit(**PARALLEL)
def _avg_pool_nhwc_kernel(x, y, n, c, ho, wo, geometry, count_include_pad, zero, slots):
    rows = n * ho
    per = (rows + slots - 1) // slots
    for s in prange(slots):
        _avg_pool_nhwc_rows(x, y, s * per, min(rows, (s + 1) * per), c, ho, wo, geometry,
                            count_include_pad, zero)


@njit(**PARALLEL)
def _max_pool_backward_kernel(dy, argmax, dx, batch):
    """Scatter-add per image in parallel; returns how many indices fell outside their
    image's block (the caller then redoes the whole thing sequentially)."""
    per_out = dy.size // batch
    per_in = dx.size // batch
    foreign = 0
    for n in prange(batch):
        for k in range(n * per_out, (n + 1) * per_out):
            index = argmax[k]
            if n * per_in <= index < (n + 1) * per_in:
                dx[index] += dy[k]
            else:
                foreign += 1
    return foreign


@njit(**JIT)
def _scatter_add_kernel(dy, argmax, dx):
    """Sequential scatter-add; -1 when an index is out of range (nothing written)."""
    for k in range(dy.size):
        if not 0 <= argmax[k] < dx.size:
            return -1
    for k in range(dy.size):
        dx[argmax[k]] += dy[k]
    return 0


@njit(inline="always", **JIT)
def _avg_cell(x, y, n, oh, ow, c, geometry, count_include_pad, zero):
    (h, w, kh, kw, sh, sw, ph, pw, xn, xh, xw, xc, yn, yh, yw, yc) = geometry
    i0, i1 = _window(oh, sh, ph, kh, h)
    j0, j1 = _window(ow, sw, pw, kw, w)
    base = n * xn + c * xc
    total = zero
    for i in range(i0, i1):
        for j in range(j0, j1):
            total += x[base + i * xh + j * xw]
    divisor = kh * kw if count_include_pad else (i1 - i0) * (j1 - j0)
    y[n * yn + oh * yh + ow * yw + c * yc] = total / (zero + divisor)


@njit(**PARALLEL)
def _avg_pool_kernel(x, y, n, c, ho, wo, geometry, channels_last, count_include_pad, zero):
    if channels_last:
        for r in prange(n * ho):
            for ow in range(wo):
                for ch in range(c):
                    _avg_cell(x, y, r // ho, r % ho, ow, ch, geometry, count_include_pad, zero)
    else:
        for r in prange(n * c):
            for oh in range(ho):
                for ow in range(wo):
                    _avg_cell(x, y, r // c, oh, ow, r % c, geometry, count_include_pad, zero)


@njit(inline="always", **JIT)
def _covering(pos, stride, pad, kernel, out_size):
    """``[first, stop)`` of the outputs whose window covers input ``pos`` along one axis."""
    first = max(0, (pos + pad - kernel + stride) // stride)
    return first, min(out_size, (pos + pad) // stride + 1)


@njit(inline="always", **JIT)
def _avg_backward_cell(dy, dx, n, i, j, c, ho, wo, geometry, count_include_pad, zero):
    # Here the "x" strides of geometry describe dx and the "y" strides describe dy.
    (h, w, kh, kw, sh, sw, ph, pw, xn, xh, xw, xc, yn, yh, yw, yc) = geometry
    o0, o1 = _covering(i, sh, ph, kh, ho)
    q0, q1 = _covering(j, sw, pw, kw, wo)
    total = zero
    for oh in range(o0, o1):
        for ow in range(q0, q1):
            if count_include_pad:
                divisor = kh * kw
            else:
                i0, i1 = _window(oh, sh, ph, kh, h)
                j0, j1 = _window(ow, sw, pw, kw, w)
                divisor = (i1 - i0) * (j1 - j0)
            total += dy[n * yn + oh * yh + ow * yw + c * yc] / (zero + divisor)
    dx[n * xn + i * xh + j * xw + c * xc] = total


@njit(**PARALLEL)
def _avg_pool_backward_kernel(dy, dx, n, c, ho, wo, geometry, channels_last, count_include_pad,
                              zero):
    h, w = geometry[0], geometry[1]
    if channels_last:
        for r in prange(n * h):
            for j in range(w):
                for ch in range(c):
                    _avg_backward_cell(dy, dx, r // h, r % h, j, ch, ho, wo, geometry,
                                       count_include_pad, zero)
    else:
        for r in prange(n * c):
            for i in range(h):
                for j in range(w):
                    _avg_backward_cell(dy, dx, r // c, i, j, r % c, ho, wo, geometry,
                                       count_include_pad, zero)


def _slots(rows):
    return max(1, min(numba.get_num_threads(), rows))


def _strides(shape_nhwc, layout):
    """Element strides (n, h, w, c) of a C-contiguous array of that NHWC-order shape."""
    n, h, w, c = shape_nhwc
    if layout == "NHWC":
        return (h * w * c, w * c, c, 1)
    return (c * h * w, w, 1, h * w)


def _geometry(x_nhwc, y_nhwc, kernel, stride, padding, layout):
    return ((x_nhwc[1], x_nhwc[2], kernel[0], kernel[1], stride[0], stride[1], padding[0],
             padding[1]) + _strides(x_nhwc, layout) + _strides(y_nhwc, layout))


def _shapes(x, kernel, stride, padding, layout):
    """``(x, y)`` shapes in NHWC order and ``y``'s shape in ``layout``."""
    y_shape = pool_output_shape(x.shape, kernel, stride, padding, layout)
    return nhwc_shape(x.shape, layout), nhwc_shape(y_shape, layout), y_shape


class PoolOps:
    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC", out=None):
        sync_threads()
        x_nhwc, y_nhwc, y_shape = _shapes(x, kernel, stride, padding, layout)
        if out is None:
            y, argmax = np.empty(y_shape, dtype=x.dtype), np.empty(y_shape, dtype=np.int64)
        else:
            y, argmax = out
        geometry = _geometry(x_nhwc, y_nhwc, kernel, stride, padding, layout)
        n, ho, wo, c = y_nhwc
        if y.size and layout == "NHWC":
            _max_pool_nhwc_kernel(x, y, argmax, geometry, _slots(n * ho))
        elif y.size:
            _max_pool_kernel(flat(x), flat(y), flat(argmax), n, c, ho, wo, geometry, False)
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        sync_threads()
        dx = alloc(out, tuple(x_shape), dy.dtype)
        dx[...] = 0
        if dy.size == 0:
            return dx
        if _max_pool_backward_kernel(flat(dy), flat(argmax), flat(dx), dy.shape[0]):
            dx[...] = 0
            if _scatter_add_kernel(flat(dy), flat(argmax), flat(dx)):
                raise argmax_out_of_range(argmax, dx.size)
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        sync_threads()
        x_nhwc, y_nhwc, y_shape = _shapes(x, kernel, stride, padding, layout)
        y = alloc(out, y_shape, x.dtype)
        geometry = _geometry(x_nhwc, y_nhwc, kernel, stride, padding, layout)
        n, ho, wo, c = y_nhwc
        zero = x.dtype.type(0)
        if y.size and layout == "NHWC":
            _avg_pool_nhwc_kernel(flat(x), flat(y), n, c, ho, wo, geometry,
                                  bool(count_include_pad), zero, _slots(n * ho))
        elif y.size:
            _avg_pool_kernel(flat(x), flat(y), n, c, ho, wo, geometry, False,
                             bool(count_include_pad), zero)
        return y

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0,
                            layout="NHWC", count_include_pad=True, out=None):
        sync_threads()
        x_nhwc = nhwc_shape(x_shape, layout)
        y_nhwc = nhwc_shape(dy.shape, layout)
        dx = alloc(out, tuple(x_shape), dy.dtype)
        if dx.size:
            _avg_pool_backward_kernel(flat(dy), flat(dx), x_nhwc[0], x_nhwc[3], y_nhwc[1],
                                      y_nhwc[2],
                                      _geometry(x_nhwc, y_nhwc, kernel, stride, padding, layout),
                                      layout == "NHWC", bool(count_include_pad),
                                      dy.dtype.type(0))
        return dx
