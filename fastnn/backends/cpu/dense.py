"""cpu-backend GEMM, the fused linear layer (csrc/cpu/gemm) and the bias gradient."""

from __future__ import annotations

from fastnn.backends.reference.common import empty


class DenseOps:
    _C = None  # set by CpuBackend.__init__

    def gemm(self, a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        out = empty(out, (m, n), a.dtype)
        self._C.gemm(a, b, out, trans_a, trans_b, alpha, beta)
        return out

    def linear(self, x, w, b=None, *, activation=None, out=None):
        out = empty(out, (x.shape[0], w.shape[1]), x.dtype)
        self._C.linear(x, w, b, out, activation)
        return out

    def bias_backward(self, dy, *, layout="NHWC", out=None):
        channels = dy.shape[1] if (layout == "NCHW" and dy.ndim == 4) else dy.shape[-1]
        out = empty(out, (channels,), dy.dtype)
        self._C.bias_backward(dy, layout == "NCHW", out)
        return out
