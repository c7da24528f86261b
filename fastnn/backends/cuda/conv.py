"""cuda conv2d and its gradients (csrc/cuda/conv.cu). The kernels are NHWC/HWIO;
``layout="NCHW"`` (OIHW weights) is transposed at this boundary."""

from __future__ import annotations

from fastnn._shapes import conv_output_shape, from_hwio, from_nhwc, hwio_shape, nhwc_shape
from fastnn.backends.cuda.common import ACTIVATION, CudaOps


class ConvOps(CudaOps):
    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, layout="NHWC",
               activation=None, out=None):
        if layout == "NCHW":
            x, w = self._to_nhwc(x), self._to_hwio(w)
        direct = out is not None and layout == "NHWC"
        y = out if direct else self.xp.empty(
            conv_output_shape(x.shape, w.shape, stride, padding, dilation, "NHWC"), x.dtype)
        self._cuda.conv2d(x, w, b, stride, padding, dilation,
                          ACTIVATION[activation], y, self._stream())
        return y if layout == "NHWC" else self._finish(y, out, from_nhwc)

    def conv2d_backward_data(self, dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                             layout="NHWC", out=None):
        if layout == "NCHW":
            dy, w = self._to_nhwc(dy), self._to_hwio(w)
        direct = out is not None and layout == "NHWC"
        dx = out if direct else self.xp.empty(nhwc_shape(x_shape, layout), dy.dtype)
        self._cuda.conv2d_backward_data(dy, w, stride, padding, dilation,
                                        dx, self._stream())
        return dx if layout == "NHWC" else self._finish(dx, out, from_nhwc)

    def conv2d_backward_weights(self, dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                                layout="NHWC", out=None):
        if layout == "NCHW":
            dy, x = self._to_nhwc(dy), self._to_nhwc(x)
        w_shape = hwio_shape(w_shape, layout)
        kh, kw, c_in, c_out = w_shape
        n, h, width, _ = x.shape
        _, ho, wo, _ = dy.shape
        direct = out is not None and layout == "NHWC"
        dw = out if direct else self.xp.empty(w_shape, dy.dtype)
        splits = self._cuda.conv2d_backward_weights_splits(n, h, width, c_in, ho, wo, kh, kw,
                                                           c_out)
        workspace = self.xp.empty((splits, *w_shape), dy.dtype) if splits > 1 else None
        self._cuda.conv2d_backward_weights(dy, x, stride, padding,
                                           dilation, dw, workspace, self._stream())
        return dw if layout == "NHWC" else self._finish(dw, out, from_hwio)
