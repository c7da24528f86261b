"""In-place SGD and Adam updates. Both leave ``grad`` zeroed, ready to accumulate again."""

from __future__ import annotations

import numpy as np


def adam_scales(step, beta1, beta2, bias_correction):
    """Adam's bias corrections ``1 / (1 - beta**step)`` for ``m`` and ``v`` (1 and 1 without
    them): every backend's kernel takes the two factors from here."""
    if not bias_correction:
        return 1.0, 1.0
    return 1.0 / (1.0 - beta1**step), 1.0 / (1.0 - beta2**step)


class OptimizerOps:
    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        t = param.dtype.type
        if weight_decay:
            grad += t(weight_decay) * param
        if momentum:
            velocity *= t(momentum)
            velocity += grad
            if nesterov:
                grad += t(momentum) * velocity
                step = grad
            else:
                step = velocity
        else:
            step = grad
        param -= t(lr) * step
        grad[...] = 0

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, bias_correction=True, grad_scale=1.0,
                    param_decay=0.0, average=None, average_rate=0.0):
        t = param.dtype.type
        if grad_scale != 1.0:
            grad *= t(grad_scale)
        if weight_decay:
            grad += t(weight_decay) * param
        m *= t(beta1)
        m += t(1 - beta1) * grad
        v *= t(beta2)
        v += t(1 - beta2) * np.square(grad)
        m_scale, v_scale = (t(s) for s in adam_scales(step, beta1, beta2, bias_correction))
        param -= t(lr) * (m * m_scale) / (np.sqrt(v * v_scale) + t(eps))
        if param_decay:
            param -= param * t(param_decay)
        if average is not None:
            average -= t(average_rate) * (average - param)
        grad[...] = 0
