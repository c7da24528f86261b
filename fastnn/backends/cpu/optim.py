"""cpu-backend in-place SGD and Adam updates (csrc/cpu/elementwise*.cpp)."""

from __future__ import annotations

from fastnn.backends.reference.optim import adam_scales


class OptimizerOps:
    _C = None  # set by CpuBackend.__init__

    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        self._C.sgd_update(param, grad, velocity, lr, momentum, weight_decay, nesterov)

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, bias_correction=True, grad_scale=1.0,
                    param_decay=0.0, average=None, average_rate=0.0):
        self._C.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                            *adam_scales(step, beta1, beta2, bias_correction), grad_scale,
                            param_decay, average, average_rate)
