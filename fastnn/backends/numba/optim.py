"""SGD and Adam as one fused pass each over the flat parameter, in place.

Each element reads ``param``, ``grad`` and its state once and writes them once, the
reference's formulas in the reference's order of operations; ``grad`` is left zeroed.
Scalars arrive in the parameter's dtype so float32 stays float32 throughout.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastnn.backends.numba.common import PARALLEL, flat, sync_threads
from fastnn.backends.reference.optim import adam_scales


@njit(**PARALLEL)
def _sgd_kernel(param, grad, velocity, lr, momentum, weight_decay, use_momentum, nesterov,
                zero):
    for i in prange(param.size):
        g = grad[i]
        if weight_decay != zero:
            g = g + weight_decay * param[i]
        step = g
        if use_momentum:
            v = velocity[i] * momentum + g
            velocity[i] = v
            step = g + momentum * v if nesterov else v
        param[i] = param[i] - lr * step
        grad[i] = zero


@njit(**PARALLEL)
def _adam_kernel(param, grad, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2,
                 m_scale, v_scale, eps, weight_decay, grad_scale, param_decay, average,
                 average_rate, use_average, zero, one):
    for i in prange(param.size):
        g = grad[i]
        if grad_scale != one:
            g = g * grad_scale
        if weight_decay != zero:
            g = g + weight_decay * param[i]
        mi = m[i] * beta1 + one_minus_beta1 * g
        vi = v[i] * beta2 + one_minus_beta2 * (g * g)
        m[i] = mi
        v[i] = vi
        p = param[i] - lr * (mi * m_scale) / (np.sqrt(vi * v_scale) + eps)
        if param_decay != zero:
            p = p - p * param_decay
        param[i] = p
        if use_average:
            average[i] = average[i] - average_rate * (average[i] - p)
        grad[i] = zero


class OptimizerOps:
    def sgd_update(self, param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0,
                   nesterov=False):
        sync_threads()
        t = param.dtype.type
        use_momentum = momentum != 0.0
        _sgd_kernel(flat(param), flat(grad), flat(velocity if use_momentum else grad),
                    t(lr), t(momentum), t(weight_decay), use_momentum, bool(nesterov), t(0))

    def adam_update(self, param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, bias_correction=True, grad_scale=1.0,
                    param_decay=0.0, average=None, average_rate=0.0):
        sync_threads()
        t = param.dtype.type
        m_scale, v_scale = adam_scales(step, beta1, beta2, bias_correction)
        use_average = average is not None
        _adam_kernel(flat(param), flat(grad), flat(m), flat(v), t(lr), t(beta1), t(1 - beta1),
                     t(beta2), t(1 - beta2), t(m_scale), t(v_scale), t(eps), t(weight_decay),
                     t(grad_scale), t(param_decay), flat(average if use_average else grad),
                     t(average_rate), use_average, t(0), t(1))
