"""The ``cuda`` backend: CuPy arrays in and out, computed on the GPU.

Plain matrix products go to cuBLAS through ``cupy.matmul``; everything with a kernel of
its own (conv2d and its gradients, pooling, LRN, activations, the linear epilogue, the bias
gradient, softmax cross-entropy, dropout, SGD and Adam) runs fastnn._cuda's CUDA kernels
(csrc/cuda); softmax, log-softmax, their backward and the MSE loss are short CuPy
expressions. Every op is overridden here: the reference's NumPy code cannot run on CuPy
arrays.

Methods receive arguments already validated and normalised by :mod:`fastnn.ops`. They
allocate outputs and workspaces with CuPy (its memory pool makes that cheap) and pass the
kernels CuPy's current stream, so they order with the caller's other CuPy work. The kernels
are NHWC/HWIO; ``layout="NCHW"`` convolutions transpose at this boundary, while pooling and
LRN take either layout directly. Losses come back as 0-d CuPy arrays of the logits' dtype.
"""

from __future__ import annotations

import math

import numpy as np

from fastnn._shapes import conv_output_size
from fastnn.backends.base import argmax_out_of_range
from fastnn.backends.reference import ReferenceBackend
from fastnn.backends.reference.dropout import keep_threshold

_ACTIVATION = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def _pair(value):
    return (int(value), int(value)) if isinstance(value, (int, np.integer)) else tuple(value)


def _conv_padding(padding):
    """``((top, bottom), (left, right))`` from the normalised (or a plain int/pair) padding."""
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2,) * 2
    first, second = padding
    if isinstance(first, (int, np.integer)):
        return ((first, first), (second, second))
    return (tuple(first), tuple(second))


def _pool_options(kernel, stride, padding):
    kernel = _pair(kernel)
    return kernel, kernel if stride is None else _pair(stride), _pair(padding)


def _nhwc_shape(shape, layout):
    return tuple(shape) if layout == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def _layout_shape(nhwc, layout):
    n, h, w, c = nhwc
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)


class CudaBackend(ReferenceBackend):
    """CuPy arrays; cuBLAS for GEMM and fastnn._cuda's kernels for the rest."""

    name = "cuda"
    array_kind = "CuPy"

    def __init__(self, native, cupy) -> None:
        self._cuda = native
        self.xp = cupy

    def accepts(self, array) -> bool:
        return isinstance(array, self.xp.ndarray)

    # ------------------------------------------------------------------ helpers
    def _stream(self) -> int:
        return self.xp.cuda.get_current_stream().ptr

    def _empty(self, out, shape, dtype):
        return self.xp.empty(tuple(shape), dtype=dtype) if out is None else out

    def _to_nhwc(self, x):
        return self.xp.ascontiguousarray(x.transpose(0, 2, 3, 1))

    def _to_hwio(self, w):
        return self.xp.ascontiguousarray(w.transpose(2, 3, 1, 0))

    def _finish(self, result, out, axes):
        """``result`` (NHWC/HWIO) transposed by ``axes`` to the caller's layout, in ``out``
        when one was given."""
        converted = result.transpose(*axes)
        if out is None:
            return self.xp.ascontiguousarray(converted)
        out[...] = converted
        return out

    # ------------------------------------------------------------------ GEMM, linear
    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        cp = self.xp
        m, k = a.shape[::-1] if trans_a else a.shape
        n = b.shape[0] if trans_b else b.shape[1]
        if out is not None and m and n and k:
            # One cuBLAS call with alpha and beta (the layers' accumulate, y += alpha * x,
            # is this), reading a and b in place through the transpose flags.
            from cupy import cublas

            return cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", a, b,
                               out=out, alpha=alpha, beta=beta)
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if k == 0:  # an empty sum: alpha * 0 + beta * out
            product = cp.zeros((m, n), a.dtype)
        else:
            product = cp.matmul(a, b)
            if alpha != 1.0:
                product *= a.dtype.type(alpha)
        if out is None:
            return product
        if beta == 0.0:
            out[...] = product  # BLAS semantics: the old contents (even NaN) are ignored
        else:
            out *= out.dtype.type(beta)
            out += product
        return out

    def linear(self, x, w, b=None, *, activation=None, out=None):
        y = self._empty(out, (x.shape[0], w.shape[1]), x.dtype)
        if x.shape[1] == 0:
            y.fill(0)
        else:
            self.xp.matmul(x, w, out=y)
        if b is not None or activation is not None:
            self._cuda.bias_activation(y, b, _ACTIVATION[activation], self._stream())
        return y

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        if layout == "NCHW" and dy.ndim == 4:
            outer, channels, inner = dy.shape[0], dy.shape[1], dy.shape[2] * dy.shape[3]
        else:
            outer, channels, inner = math.prod(dy.shape[:-1]), dy.shape[-1], 1
        db = self._empty(out, (channels,), dy.dtype)
        if channels == 0:
            return db
        chunks = self._cuda.bias_backward_chunks(outer * inner, channels)
        workspace = self.xp.empty((chunks, channels), dy.dtype)
        self._cuda.bias_backward(dy, outer, channels, inner, workspace, db, self._stream())
        return db

    # ------------------------------------------------------------------ convolution
    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        if layout == "NCHW":
            x, w = self._to_nhwc(x), self._to_hwio(w)
        stride, dilation, padding = _pair(stride), _pair(dilation), _conv_padding(padding)
        n, h, width, _ = x.shape
        kh, kw, _, c_out = w.shape
        ho = conv_output_size(h, kh, stride[0], *padding[0], dilation[0])
        wo = conv_output_size(width, kw, stride[1], *padding[1], dilation[1])
        direct = out is not None and layout == "NHWC"
        y = out if direct else self.xp.empty((n, ho, wo, c_out), x.dtype)
        self._cuda.conv2d(x, w, b, stride, padding, dilation,
                          _ACTIVATION[activation], y, self._stream())
        return y if layout == "NHWC" else self._finish(y, out, (0, 3, 1, 2))

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if layout == "NCHW":
            dy, w = self._to_nhwc(dy), self._to_hwio(w)
        stride, dilation, padding = _pair(stride), _pair(dilation), _conv_padding(padding)
        direct = out is not None and layout == "NHWC"
        dx = out if direct else self.xp.empty(_nhwc_shape(x_shape, layout), dy.dtype)
        self._cuda.conv2d_backward_data(dy, w, stride, padding, dilation,
                                        dx, self._stream())
        return dx if layout == "NHWC" else self._finish(dx, out, (0, 3, 1, 2))

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        if layout == "NCHW":
            dy, x = self._to_nhwc(dy), self._to_nhwc(x)
            o, i, kh, kw = w_shape
            w_shape = (kh, kw, i, o)
        stride, dilation, padding = _pair(stride), _pair(dilation), _conv_padding(padding)
        kh, kw, c_in, c_out = w_shape
        n, h, width, _ = x.shape
        _, ho, wo, _ = dy.shape
        direct = out is not None and layout == "NHWC"
        dw = out if direct else self.xp.empty(tuple(w_shape), dy.dtype)
        splits = self._cuda.conv2d_backward_weights_splits(n, h, width, c_in, ho, wo, kh, kw,
                                                           c_out)
        workspace = self.xp.empty((splits, *w_shape), dy.dtype) if splits > 1 else None
        self._cuda.conv2d_backward_weights(dy, x, stride, padding,
                                           dilation, dw, workspace, self._stream())
        return dw if layout == "NHWC" else self._finish(dw, out, (3, 2, 0, 1))

    # ------------------------------------------------------------------ pooling
    def _pool_output(self, x_shape, kernel, stride, padding, layout):
        n, h, w, c = _nhwc_shape(x_shape, layout)
        ho = conv_output_size(h, kernel[0], stride[0], padding[0], padding[0])
        wo = conv_output_size(w, kernel[1], stride[1], padding[1], padding[1])
        return _layout_shape((n, ho, wo, c), layout)

    def max_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC"):
        kernel, stride, padding = _pool_options(kernel, stride, padding)
        y_shape = self._pool_output(x.shape, kernel, stride, padding, layout)
        y = self.xp.empty(y_shape, x.dtype)
        argmax = self.xp.empty(y_shape, self.xp.int64)
        self._cuda.max_pool2d(x, kernel, stride, padding, layout == "NHWC", y, argmax,
                              self._stream())
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, x_shape, *, out=None):
        size = math.prod(x_shape)
        if argmax.size and (int(argmax.min()) < 0 or int(argmax.max()) >= size):
            raise argmax_out_of_range(argmax, size)
        dx = self._empty(out, x_shape, dy.dtype)
        self._cuda.max_pool2d_backward(dy, argmax, dx, self._stream())
        return dx

    def avg_pool2d(self, x, *, kernel, stride=None, padding=0, layout="NHWC",
                   count_include_pad=True, out=None):
        kernel, stride, padding = _pool_options(kernel, stride, padding)
        y = self._empty(out, self._pool_output(x.shape, kernel, stride, padding, layout),
                        x.dtype)
        self._cuda.avg_pool2d(x, kernel, stride, padding, layout == "NHWC",
                              bool(count_include_pad), y, self._stream())
        return y

    def avg_pool2d_backward(self, dy, x_shape, *, kernel, stride=None, padding=0,
                            layout="NHWC", count_include_pad=True, out=None):
        kernel, stride, padding = _pool_options(kernel, stride, padding)
        dx = self._empty(out, x_shape, dy.dtype)
        self._cuda.avg_pool2d_backward(dy, kernel, stride, padding, layout == "NHWC",
                                       bool(count_include_pad), dx, self._stream())
        return dx

    # ------------------------------------------------------------------ activations
    def _activation(self, kind, x, out):
        y = self._empty(out, x.shape, x.dtype)
        self._cuda.activation(kind, x, y, self._stream())
        return y

    def _activation_backward(self, kind, dy, y, out):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.activation_backward(kind, dy, y, dx, self._stream())
        return dx

    def relu(self, x, *, out=None):
        return self._activation(_ACTIVATION["relu"], x, out)

    def sigmoid(self, x, *, out=None):
        return self._activation(_ACTIVATION["sigmoid"], x, out)

    def tanh(self, x, *, out=None):
        return self._activation(_ACTIVATION["tanh"], x, out)

    def relu_backward(self, dy, y, *, out=None):
        return self._activation_backward(_ACTIVATION["relu"], dy, y, out)

    def sigmoid_backward(self, dy, y, *, out=None):
        return self._activation_backward(_ACTIVATION["sigmoid"], dy, y, out)

    def tanh_backward(self, dy, y, *, out=None):
        return self._activation_backward(_ACTIVATION["tanh"], dy, y, out)

    # Softmax family: row reductions CuPy already does well, in the reference's formulation.
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

    # ------------------------------------------------------------------ losses
    def softmax_cross_entropy(self, logits, labels):
        n = logits.shape[0]
        probs = self.xp.empty_like(logits)
        row_loss = self.xp.empty((n,), logits.dtype)
        self._cuda.softmax_cross_entropy(logits, labels, probs, row_loss, self._stream())
        return (row_loss.sum() / n).astype(logits.dtype, copy=False), probs

    def softmax_cross_entropy_backward(self, dloss, probs, labels, *, out=None):
        dx = self._empty(out, probs.shape, probs.dtype)
        self._cuda.softmax_cross_entropy_backward(float(dloss) / probs.shape[0], probs, labels,
                                                  dx, self._stream())
        return dx

    def mse_loss(self, prediction, target):
        diff = prediction - target
        n = len(diff)
        loss = (self.xp.vdot(diff, diff) / n).astype(prediction.dtype, copy=False)
        return loss, diff * prediction.dtype.type(2.0 / n)

    # ------------------------------------------------------------------ LRN
    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC"):
        y = self.xp.empty_like(x)
        scale = self.xp.empty_like(x)
        self._cuda.local_response_norm(x, depth_radius, bias, alpha, beta, layout == "NHWC", y,
                                       scale, self._stream())
        return y, scale

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.local_response_norm_backward(dy, x, y, scale, depth_radius, bias, alpha, beta,
                                                layout == "NHWC", dx, self._stream())
        return dx

    # ------------------------------------------------------------------ dropout
    def dropout(self, x, *, keep_prob, seed, out=None):
        y = self._empty(out, x.shape, x.dtype)
        mask = self.xp.empty(x.shape, dtype=self.xp.bool_)
        self._cuda.dropout(x, keep_threshold(keep_prob), 1.0 / keep_prob, int(seed), y, mask,
                           self._stream())
        return y, mask

    def dropout_backward(self, dy, mask, *, keep_prob, out=None):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.dropout_backward(dy, mask, 1.0 / keep_prob, dx, self._stream())
        return dx

    # ------------------------------------------------------------------ optimizers
    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        self._cuda.sgd_update(param, grad, velocity if momentum else None, lr, momentum,
                              weight_decay, bool(nesterov), self._stream())

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0):
        self._cuda.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                               1.0 / (1.0 - beta1**step), 1.0 / (1.0 - beta2**step),
                               self._stream())
