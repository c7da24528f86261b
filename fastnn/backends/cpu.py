"""The ``cpu`` backend: fastnn._C's C++ kernels, the reference for everything else.

Methods here override :class:`ReferenceBackend` only for ops with a native kernel. They
receive arguments already validated by :mod:`fastnn.ops`, allocate the output when the
caller gave none, and hand both to the binding, which releases the GIL while it computes.
"""

from __future__ import annotations

import numpy as np

from fastnn.backends.cpu_kernels.conv import CpuConvOps
from fastnn.backends.cpu_kernels.elementwise import CpuElementwiseOps
from fastnn.backends.cpu_kernels.lrn import CpuLrnOps
from fastnn.backends.cpu_kernels.pool import CpuPoolOps
from fastnn.backends.reference import ReferenceBackend


def _alloc(out, shape, dtype):
    return np.empty(shape, dtype=dtype) if out is None else out


class CpuBackend(CpuConvOps, CpuElementwiseOps, CpuPoolOps, CpuLrnOps, ReferenceBackend):
    """C++ kernels through pybind11 (OpenMP, AVX-512/AVX2/portable chosen at run time)."""

    name = "cpu"

    def __init__(self, native):
        self._C = native
        # The bindings check dtypes, shapes, layout and alignment before they compute.
        self.native_entries = {"gemm": native.gemm, "linear": native.linear}

    # ------------------------------------------------------------------ activations
    def relu(self, x, *, out=None):
        out = _alloc(out, x.shape, x.dtype)
        self._C.relu(x, out)
        return out

    def sigmoid(self, x, *, out=None):
        out = _alloc(out, x.shape, x.dtype)
        self._C.sigmoid(x, out)
        return out

    def tanh(self, x, *, out=None):
        out = _alloc(out, x.shape, x.dtype)
        self._C.tanh(x, out)
        return out

    def relu_backward(self, dy, y, *, out=None):
        out = _alloc(out, dy.shape, dy.dtype)
        self._C.relu_backward(dy, y, out)
        return out

    def sigmoid_backward(self, dy, y, *, out=None):
        out = _alloc(out, dy.shape, dy.dtype)
        self._C.sigmoid_backward(dy, y, out)
        return out

    def tanh_backward(self, dy, y, *, out=None):
        out = _alloc(out, dy.shape, dy.dtype)
        self._C.tanh_backward(dy, y, out)
        return out

    # ------------------------------------------------------------------ dense
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        out = _alloc(out, (m, n), a.dtype)
        self._C.gemm(a, b, out, trans_a, trans_b, alpha, beta)
        return out

    def linear(self, x, w, b=None, *, activation=None, out=None):
        out = _alloc(out, (x.shape[0], w.shape[1]), x.dtype)
        self._C.linear(x, w, b, out, activation)
        return out
