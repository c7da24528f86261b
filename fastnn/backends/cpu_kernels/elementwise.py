"""cpu-backend methods for the one-pass kernels: bias gradient, softmax family and losses,
dropout and the optimizer updates (csrc/cpu/elementwise*.cpp)."""

from __future__ import annotations

import numpy as np

from fastnn.backends.reference.dropout import keep_threshold


def _alloc(out, shape, dtype):
    return np.empty(shape, dtype=dtype) if out is None else out


class CpuElementwiseOps:
    _C = None  # set by CpuBackend.__init__

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        channels = dy.shape[1] if (layout == "NCHW" and dy.ndim == 4) else dy.shape[-1]
        out = _alloc(out, (channels,), dy.dtype)
        self._C.bias_backward(dy, layout == "NCHW", out)
        return out

    def softmax(self, x, *, out=None):
        out = _alloc(out, x.shape, x.dtype)
        self._C.softmax(x, False, out)
        return out

    def log_softmax(self, x, *, out=None):
        out = _alloc(out, x.shape, x.dtype)
        self._C.softmax(x, True, out)
        return out

    def softmax_cross_entropy(self, logits, labels):
        probs = np.empty_like(logits)
        loss = self._C.softmax_cross_entropy(logits, labels, probs)
        return np.asarray(loss, dtype=logits.dtype), probs

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        out = _alloc(out, probs.shape, probs.dtype)
        self._C.softmax_cross_entropy_backward(dloss, probs, labels, out)
        return out

    def mse_loss(self, prediction, target):
        grad = np.empty_like(prediction)
        loss = self._C.mse_loss(prediction, target, grad)
        return np.asarray(loss, dtype=prediction.dtype), grad

    def dropout(self, x, *, keep_prob, seed, out=None):
        out = _alloc(out, x.shape, x.dtype)
        mask = np.empty(x.shape, dtype=np.bool_)
        self._C.dropout(x, seed, keep_threshold(keep_prob), 1.0 / keep_prob, out, mask)
        return out, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        out = _alloc(out, dy.shape, dy.dtype)
        self._C.dropout_backward(dy, mask, 1.0 / keep_prob, out)
        return out

    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        self._C.sgd_update(param, grad, velocity, lr, momentum, weight_decay, nesterov)

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0):
        self._C.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                            1.0 / (1.0 - beta1**step), 1.0 / (1.0 - beta2**step))
