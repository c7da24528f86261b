"""cuda in-place SGD and Adam updates (csrc/cuda)."""

from __future__ import annotations

from fastnn.backends.cuda.common import CudaOps
from fastnn.backends.reference.optim import adam_scales


class OptimizerOps(CudaOps):
    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        self._cuda.sgd_update(param, grad, velocity if momentum else None, lr, momentum,
                              weight_decay, bool(nesterov), self._stream())

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, bias_correction=True, grad_scale=1.0,
                    param_decay=0.0, average=None, average_rate=0.0):
        # The fused kernel takes the plain step; the optional parts are CuPy element-wise
        # operations around it (on the current stream, as the kernel), in the reference's
        # order.
        t = param.dtype.type
        if grad_scale != 1.0:
            grad *= t(grad_scale)
        self._cuda.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                               *adam_scales(step, beta1, beta2, bias_correction),
                               self._stream())
        if param_decay:
            param -= param * t(param_decay)
        if average is not None:
            average -= t(average_rate) * (average - param)
