"""cuda activations and their gradients (csrc/cuda), and the softmax family: row
reductions CuPy already does well, in the reference's formulation."""

from __future__ import annotations

from fastnn.backends.cuda.common import ACTIVATION, CudaOps


class ActivationOps(CudaOps):
    def _activation(self, kind, x, out):
        y = self._empty(out, x.shape, x.dtype)
        self._cuda.activation(kind, x, y, self._stream())
        return y

    def _activation_backward(self, kind, dy, y, out):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.activation_backward(kind, dy, y, dx, self._stream())
        return dx

    def relu(self, x, *, out=None):
        return self._activation(ACTIVATION["relu"], x, out)

    def sigmoid(self, x, *, out=None):
        return self._activation(ACTIVATION["sigmoid"], x, out)

    def tanh(self, x, *, out=None):
        return self._activation(ACTIVATION["tanh"], x, out)

    def relu_backward(self, dy, y, *, out=None):
        return self._activation_backward(ACTIVATION["relu"], dy, y, out)

    def sigmoid_backward(self, dy, y, *, out=None):
        return self._activation_backward(ACTIVATION["sigmoid"], dy, y, out)

    def tanh_backward(self, dy, y, *, out=None):
        return self._activation_backward(ACTIVATION["tanh"], dy, y, out)

    def softmax(self, x, *, out=None):
        cp = self.xp
        result = self._empty(out, x.shape, x.dtype)
        cp.subtract(x, x.max(axis=-1, keepdims=True) if x.size else 0, out=result)
        cp.exp(result, out=result)
        result /= result.sum(axis=-1, keepdims=True)
        return result

    def softmax_backward(self, dy, y, *, out=None):
        cp = self.xp
        result = cp.multiply(dy, y, out=self._empty(out, dy.shape, dy.dtype))
        row_sums = result.sum(axis=-1, keepdims=True)
        cp.subtract(dy, row_sums, out=result)
        result *= y
        return result

    def log_softmax(self, x, *, out=None):
        cp = self.xp
        result = self._empty(out, x.shape, x.dtype)
        cp.subtract(x, x.max(axis=-1, keepdims=True) if x.size else 0, out=result)
        result -= cp.log(cp.exp(result).sum(axis=-1, keepdims=True))
        return result
