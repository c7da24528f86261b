"""Pointwise activations and their gradients, softmax and log-softmax.

Elementwise kernels run over the flat array in parallel chunks; the formulas are the
reference's, term for term, so NaN and inf propagate the same way (no fastmath).
Softmax and log-softmax work row by row over the last axis: max, sum of exponentials, then
one pass that writes the result.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from fastnn.backends.numba.common import JIT, PARALLEL, alloc, flat, sync_threads

RELU, SIGMOID, TANH = 1, 2, 3
ACTIVATION_CODES = {None: 0, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}


# Kernels take ``zero`` and ``one`` as scalars of the array dtype: numba would widen a
# float32 expression with a Python int literal to float64.

@njit(inline="always", **JIT)
def activate(v, code, zero, one):
    """One activation on a scalar; ``code`` from :data:`ACTIVATION_CODES`."""
    if code == RELU:
        return v if not v <= zero else zero  # NaN stays NaN, as np.maximum
    if code == SIGMOID:
        e = math.exp(-abs(v))  # exp of a non-positive number only: never overflows
        return (one if v >= zero else e) / (one + e)
    if code == TANH:
        return math.tanh(v)
    return v


@njit(**PARALLEL)
def _activation_kernel(x, y, code, zero, one):
    for i in prange(x.size):
        y[i] = activate(x[i], code, zero, one)


# float32 sigmoid (and tanh, below, without exp): libm's expf/tanhf are scalar calls that
# stop LLVM from vectorising, so exp is computed here from arithmetic alone: Cody-Waite reduction
# x = n*ln2 + r, a degree-6 polynomial for exp(r) (rel. error ~2e-7), and 2**n built from
# its bits in a second loop (two int32 buffers viewed as float32: 2**n = 2**(n//2) *
# 2**(n - n//2), so results down in the subnormal range come out right too). Inputs are
# clamped below exp's underflow; NaN is put back at the end. float64 keeps libm's exp and
# tanh.
_CHUNK = 2048
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_FLOOR = np.float32(-104.0)  # exp(-104) rounds to 0 in float32
_C2, _C3, _C4 = np.float32(1 / 2), np.float32(1 / 6), np.float32(1 / 24)
_C5, _C6 = np.float32(1 / 120), np.float32(1 / 720)
_ZERO, _HALF, _ONE = np.float32(0), np.float32(0.5), np.float32(1)
_TANH_THREADS = 2  # float32 tanh runs the kernel below from this many numba threads on


@njit(inline="always", **JIT)
def _exp_parts(t, mantissa, bits_a, bits_b, i):
    """exp(t) for t <= 0 as ``mantissa[i] * float(bits_a[i]) * float(bits_b[i])``."""
    t = t if t > _EXP_FLOOR else _EXP_FLOOR  # also maps NaN to the floor (fixed later)
    n = np.floor(t * _LOG2E + _HALF)  # np.floor keeps float32 (math.floor gives int64)
    r = (t - n * _LN2_HI) - n * _LN2_LO
    mantissa[i] = _ONE + r * (_ONE + r * (_C2 + r * (_C3 + r * (_C4 + r * (_C5 + r * _C6)))))
    k = np.int32(n)
    half = k >> np.int32(1)
    bits_a[i] = (half + np.int32(127)) << np.int32(23)
    bits_b[i] = (k - half + np.int32(127)) << np.int32(23)


@njit(inline="always", **JIT)
def _buffers():
    mantissa = np.empty(_CHUNK, dtype=np.float32)
    bits_a = np.empty(_CHUNK, dtype=np.int32)
    bits_b = np.empty(_CHUNK, dtype=np.int32)
    return mantissa, bits_a, bits_b


@njit(inline="always", **JIT)
def _exp_chunk(x, first, count, scale):
    """``exp(scale * |x[first + i]|)`` for ``i < count`` as three factors (_exp_parts):
    ``mantissa[i] * power_a[i] * power_b[i]``."""
    mantissa, bits_a, bits_b = _buffers()
    for i in range(count):
        _exp_parts(scale * abs(x[first + i]), mantissa, bits_a, bits_b, i)
    return mantissa, bits_a.view(np.float32), bits_b.view(np.float32)


@njit(**JIT)
def _sigmoid32_serial(x, y):
    for chunk in range((x.size + _CHUNK - 1) // _CHUNK):  # not range(0, size, step):
        first = chunk * _CHUNK  # numba's stepped range defeats LLVM's vectoriser here
        count = min(_CHUNK, x.size - first)
        mantissa, power_a, power_b = _exp_chunk(x, first, count, -_ONE)
        for i in range(count):
            v = x[first + i]
            e = mantissa[i] * power_a[i] * power_b[i]
            s = (_ONE if v >= _ZERO else e) / (_ONE + e)
            y[first + i] = s if v == v else v


# float32 tanh as x P(x^2) / Q(x^2), the cpu backend's rational function and coefficients
# (csrc/cpu/math_approx.h, fitted by scripts/fit_tanh.py): no exp, so the loop is plain
# arithmetic LLVM vectorises; FMA contraction allowed (its only licence from fast-math:
# NaN and infinities keep their meaning). Within 5 ulp of the correctly rounded tanh
# (tests/test_numba_backend.py), never outside [-1, 1], odd, exactly +-1 from
# |x| = 9.010914. One thread: level with NumPy's SIMD tanh at 100k elements (24 us);
# two: 1.8-2.0x it at 100k-1M elements (13.7 against 24.7 us, 147 against 297), where the
# exp form it replaced ran at 0.87-0.91x.
_P0, _P1, _P2, _P3, _P4, _P5 = (np.float32(c) for c in (
    -8.532517276e-14, 5.298193481e-11, -2.027419121e-08, 1.116792464e-05, 3.105358453e-03,
    1.308529824e-01))
_Q0, _Q1, _Q2 = (np.float32(c) for c in (2.548125340e-04, 2.450086549e-02, 4.641862512e-01))
_TANH_SATURATE = np.float32(9.010914)  # the smallest float whose tanh rounds to 1


@njit(fastmath={"contract"}, **JIT)
def _tanh32_serial(x, y):
    for i in range(x.size):
        v = x[i]
        z = v * v
        p = ((((((_P0 * z + _P1) * z + _P2) * z + _P3) * z + _P4) * z + _P5) * z) + _ONE
        q = (((_Q0 * z + _Q1) * z + _Q2) * z) + _ONE
        t = v * p / q
        t = _ONE if t > _ONE else (-_ONE if t < -_ONE else t)  # NaN passes through
        y[i] = (_ONE if v > _ZERO else -_ONE) if abs(v) >= _TANH_SATURATE else t


# The loops above vectorise in a plain function but not inside a prange body, so the
# parallel drivers hand each thread one contiguous slice and call them.

@njit(**PARALLEL)
def _sigmoid_tanh32_kernel(x, y, tanh, slots):
    per = (x.size + slots - 1) // slots
    for s in prange(slots):
        first, stop = s * per, min(x.size, (s + 1) * per)
        if tanh:
            _tanh32_serial(x[first:stop], y[first:stop])
        else:
            _sigmoid32_serial(x[first:stop], y[first:stop])


@njit(**PARALLEL)
def _relu_backward_kernel(dy, y, dx, zero, one):
    for i in prange(dy.size):
        dx[i] = dy[i] * (one if y[i] > zero else zero)  # inf * 0 = NaN, as the reference


@njit(**PARALLEL)
def _sigmoid_backward_kernel(dy, y, dx, zero, one):
    for i in prange(dy.size):
        dx[i] = dy[i] * y[i] * (one - y[i])


@njit(**PARALLEL)
def _tanh_backward_kernel(dy, y, dx, zero, one):
    for i in prange(dy.size):
        dx[i] = dy[i] * (one - y[i] * y[i])


@njit(**PARALLEL)
def _softmax_kernel(x, y, log, zero):
    rows, cols = x.shape
    for r in prange(rows):
        top = x[r, 0]
        for c in range(1, cols):
            v = x[r, c]
            if v > top or v != v:
                top = v
        total = zero
        for c in range(cols):
            y[r, c] = x[r, c] - top
            total += math.exp(y[r, c])
        if log:
            shift = math.log(total)
            for c in range(cols):
                y[r, c] -= shift
        else:
            for c in range(cols):
                y[r, c] = math.exp(y[r, c]) / total


class ActivationOps:
    def _activation(self, x, code, out):
        sync_threads()
        out = alloc(out, x.shape, x.dtype)
        if x.dtype == np.float32 and code in (SIGMOID, TANH):
            _sigmoid_tanh32_kernel(flat(x), flat(out), code == TANH,
                                   max(1, min(numba.get_num_threads(), x.size // _CHUNK)))
            return out
        t = x.dtype.type
        _activation_kernel(flat(x), flat(out), code, t(0), t(1))
        return out

    def relu(self, x, *, out=None):
        return self._activation(x, RELU, out)

    def sigmoid(self, x, *, out=None):
        return self._activation(x, SIGMOID, out)

    def tanh(self, x, *, out=None):
        if x.dtype == np.float32 and sync_threads() < _TANH_THREADS:
            # On one thread NumPy's float32 tanh (SIMD code) and the kernel above are level
            # (0.93-1.0x at 100k-1M elements), and NumPy's needs no numba pool.
            return np.tanh(x, out=alloc(out, x.shape, x.dtype))
        return self._activation(x, TANH, out)

    def _backward(self, kernel, dy, y, out):
        sync_threads()
        out = alloc(out, dy.shape, dy.dtype)
        t = dy.dtype.type
        kernel(flat(dy), flat(y), flat(out), t(0), t(1))
        return out

    def relu_backward(self, dy, y, *, out=None):
        return self._backward(_relu_backward_kernel, dy, y, out)

    def sigmoid_backward(self, dy, y, *, out=None):
        return self._backward(_sigmoid_backward_kernel, dy, y, out)

    def tanh_backward(self, dy, y, *, out=None):
        return self._backward(_tanh_backward_kernel, dy, y, out)

    def _softmax(self, x, log, out):
        sync_threads()
        out = alloc(out, x.shape, x.dtype)
        if x.size:
            cols = x.shape[-1]
            _softmax_kernel(x.reshape(-1, cols), out.reshape(-1, cols), log, x.dtype.type(0))
        return out

    def softmax(self, x, *, out=None):
        return self._softmax(x, False, out)

    def log_softmax(self, x, *, out=None):
        return self._softmax(x, True, out)
