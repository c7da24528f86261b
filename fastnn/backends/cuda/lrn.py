"""cuda local response normalisation, either layout (csrc/cuda/lrn.cu)."""

from __future__ import annotations

from fastnn.backends.cuda.common import CudaOps


class LrnOps(CudaOps):
    def local_response_norm(self, x, *, depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75,
                            layout="NHWC", out=None):
        y, scale = (self.xp.empty_like(x), self.xp.empty_like(x)) if out is None else out
        self._cuda.local_response_norm(x, depth_radius, bias, alpha, beta, layout == "NHWC", y,
                                       scale, self._stream())
        return y, scale

    def local_response_norm_backward(self, dy, x, y, scale, *, depth_radius=5, bias=1.0,
                                     alpha=1e-4, beta=0.75, layout="NHWC", out=None):
        dx = self._empty(out, dy.shape, dy.dtype)
        self._cuda.local_response_norm_backward(dy, x, y, scale, depth_radius, bias, alpha, beta,
                                                layout == "NHWC", dx, self._stream())
        return dx
