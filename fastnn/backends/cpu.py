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
