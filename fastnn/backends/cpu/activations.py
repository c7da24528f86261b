"""cpu-backend activations, their gradients, softmax and log-softmax
(csrc/cpu/activations*.cpp, csrc/cpu/elementwise*.cpp)."""

from __future__ import annotations

from fastnn.backends.reference.common import empty


class ActivationOps:
    _C = None  # set by CpuBackend.__init__

    def relu(self, x, *, out=None):
        out = empty(out, x.shape, x.dtype)
        self._C.relu(x, out)
        return out

    def sigmoid(self, x, *, out=None):
        out = empty(out, x.shape, x.dtype)
        self._C.sigmoid(x, out)
        return out

    def tanh(self, x, *, out=None):
        out = empty(out, x.shape, x.dtype)
        self._C.tanh(x, out)
        return out

    def relu_backward(self, dy, y, *, out=None):
        out = empty(out, dy.shape, dy.dtype)
        self._C.relu_backward(dy, y, out)
        return out

    def sigmoid_backward(self, dy, y, *, out=None):
        out = empty(out, dy.shape, dy.dtype)
        self._C.sigmoid_backward(dy, y, out)
        return out

    def tanh_backward(self, dy, y, *, out=None):
        out = empty(out, dy.shape, dy.dtype)
        self._C.tanh_backward(dy, y, out)
        return out

    def softmax(self, x, *, out=None):
        out = empty(out, x.shape, x.dtype)
        self._C.softmax(x, False, out)
        return out

    def log_softmax(self, x, *, out=None):
        out = empty(out, x.shape, x.dtype)
        self._C.softmax(x, True, out)
        return out
