"""Thinc's Adam and SGD with fastnn's fused update kernels.

Thinc's ``Optimizer`` updates each parameter through ``get_array_ops(weights)``, a fresh
NumpyOps for any NumPy array, so the model's ops never see the step. This optimizer is a
subclass that does the same arithmetic, in the same order, with the same state (``mom1``,
``mom2``, ``averages``, ``nr_update``), but runs the Adam (or SGD) step as one fused
in-place kernel, :func:`fastnn.ops.adam_update` with ``bias_correction=False`` (Thinc folds
the correction into the learning rate). Adam's pass also takes the gradient's clip factor,
the decoupled weight decay and the parameter average (which Thinc runs as five more NumPy
passes over the parameter); SGD keeps them as NumPy passes without temporaries. Strided
float32 parameters take the step on contiguous copies, written back (Thinc's NumpyOps.adam
reads them as contiguous memory). Anything else (CuPy arrays, float64 weights, which
Thinc's Adam keeps float32 moments for and refuses, RAdam) takes Thinc's own code.
"""

from __future__ import annotations

import numpy as np
from thinc.api import Optimizer, registry
from thinc.optimizers import ADAM_DEFAULTS, SGD_DEFAULTS

from fastnn import ops as fops

_F32 = np.dtype(np.float32)

# Thinc 9 made every hyperparameter a schedule called with (step, key=..., last_score=...);
# Thinc 8.3 (the newest with CPython 3.13 wheels) keeps plain values, advanced by
# step_schedules(). Both read the same values at the same point of the update.
_CALLED_SCHEDULES = hasattr(Optimizer, "_schedule_args")


def _plain(a) -> bool:
    flags = a.flags
    return flags.c_contiguous and flags.aligned and flags.writeable


def _float32_pair(weights, gradient) -> bool:
    return (type(weights) is np.ndarray and type(gradient) is np.ndarray
            and weights.dtype == _F32 and gradient.dtype == _F32
            and weights.shape == gradient.shape and weights.flags.writeable
            and gradient.flags.writeable)


class FastnnOptimizer(Optimizer):
    """Thinc's :class:`~thinc.api.Optimizer` whose Adam and SGD steps run fastnn's kernels.

    Made by :func:`fastnn.thinc.Adam` and :func:`fastnn.thinc.SGD` (registered as
    ``"fastnn.Adam.v1"`` and ``"fastnn.SGD.v1"``), with the arguments of Thinc's own.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.thinc import Adam
    >>> opt = Adam(0.1, grad_clip=0.0, use_averages=False)
    >>> w, g = np.zeros(2, dtype="f"), np.ones(2, dtype="f")
    >>> w, g = opt((0, "W"), w, g)
    >>> w.round(4), g
    (array([-0.1, -0.1], dtype=float32), array([0., 0.], dtype=float32))
    """

    __slots__ = ["_scratch"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scratch = np.empty(0, dtype=_F32)

    def _buffer(self, like):
        """A float32 array shaped like ``like`` from one scratch buffer (grown as needed)."""
        if self._scratch.size < like.size:
            self._scratch = np.empty(like.size, dtype=_F32)
        return self._scratch[:like.size].reshape(like.shape)

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        if len(gradient) < 1 or self.use_radam or not _float32_pair(weights, gradient):
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)
        if _plain(weights) and _plain(gradient):
            self._update(key, weights, gradient, lr_scale)
            return weights, gradient
        # A strided view (Thinc's NumpyOps.adam would read it as contiguous memory):
        # contiguous copies take the step, and the results go back into the caller's arrays.
        w, g = np.ascontiguousarray(weights), np.ascontiguousarray(gradient)
        self._update(key, w, g, lr_scale)
        weights[...] = w
        gradient[...] = g
        return weights, gradient

    def _update(self, key, weights, gradient, lr_scale):
        self.nr_update[key] += 1
        nr_upd = self.nr_update[key]
        L2, clip, b1, b2, learn_rate, eps = self._hyperparameters(key)
        if L2 != 0 and not self.L2_is_weight_decay:
            gradient += L2 * weights
        scale = 1.0
        if clip:
            norm = np.linalg.norm(gradient)
            if norm >= clip:
                scale = clip / norm  # float32, as Thinc's clip_gradient multiplies by it
        decay = lr_scale * learn_rate * L2 if L2 != 0 and self.L2_is_weight_decay else 0.0
        adam = b1 > 0.0 and b2 > 0.0
        # Adam takes the clip factor, the decoupled decay and the average in its one pass
        # (where they are in the kernel's range); SGD and the rest take NumPy passes.
        fused = adam and np.isfinite(scale) and 0.0 <= decay <= 1.0
        if scale != 1.0 and not fused:
            gradient *= scale
        if adam:
            if key not in self.mom1:
                self.mom1[key] = np.zeros(weights.size, dtype=_F32)
            if key not in self.mom2:
                self.mom2[key] = np.zeros(weights.size, dtype=_F32)
            average = self._average(key, weights) if fused else None
            lr = learn_rate * (1.0 - b2**nr_upd) ** 0.5 / (1.0 - b1**nr_upd)
            fops.adam_update(
                weights.reshape(-1), gradient.reshape(-1), self.mom1[key], self.mom2[key],
                step=nr_upd, lr=lr * lr_scale, beta1=b1, beta2=b2, eps=eps,
                bias_correction=False, grad_scale=float(scale) if fused else 1.0,
                param_decay=float(decay) if fused else 0.0,
                average=None if average is None else average.reshape(-1),
                average_rate=0.0 if average is None else 1.0 - _average_decay(nr_upd))
            if fused:
                return
        elif b2 > 0.0:  # pragma: no cover - Thinc raises the same
            raise NotImplementedError
        else:
            fops.sgd_update(weights, gradient, lr=lr_scale * learn_rate)
        if decay:
            shrink = self._buffer(weights)
            np.multiply(weights, decay, out=shrink)
            weights -= shrink
        if self.averages is not None:
            self._update_average(self._average(key, weights), weights, nr_upd)

    def _average(self, key, weights):
        """The parameter average of ``key`` (zeros before its first update), or None."""
        if self.averages is None:
            return None
        if key not in self.averages:
            self.averages[key] = np.zeros(weights.shape, dtype=_F32)
        return self.averages[key]

    def _hyperparameters(self, key):
        """(L2, grad_clip, b1, b2, learn_rate, eps) for this update of ``key``."""
        names = ("L2", "grad_clip", "b1", "b2", "learn_rate", "eps")
        if not _CALLED_SCHEDULES:
            return tuple(getattr(self, name) for name in names)
        args, step = self._schedule_args(key), self.step
        return tuple(getattr(self, name)(step, **args) for name in names)

    def _update_average(self, average, weights, nr_upd):
        """Thinc's ``ema -= (1 - decay) * (ema - weights)``, the same operations in the
        same order, into one scratch buffer instead of two temporaries."""
        diff = self._buffer(weights)
        np.subtract(average, weights, out=diff)
        diff *= 1 - _average_decay(nr_upd)
        average -= diff


def _average_decay(nr_upd: int) -> float:
    """How much of itself Thinc's parameter average keeps at update ``nr_upd``."""
    return min((1.0 + nr_upd) / (10.0 + nr_upd), 0.9999)


@registry.optimizers("fastnn.Adam.v1")
def Adam(learn_rate=ADAM_DEFAULTS["learn_rate"], *, L2=ADAM_DEFAULTS["L2"],
         beta1=ADAM_DEFAULTS["beta1"], beta2=ADAM_DEFAULTS["beta2"], eps=ADAM_DEFAULTS["eps"],
         grad_clip=ADAM_DEFAULTS["grad_clip"],
         L2_is_weight_decay: bool = bool(ADAM_DEFAULTS["L2_is_weight_decay"]),
         use_averages: bool = True) -> FastnnOptimizer:
    """Thinc's ``Adam`` (same arguments, same updates) on fastnn's fused Adam kernel.

    Example
    -------
    >>> from fastnn.thinc import Adam
    >>> type(Adam(0.001)).__name__
    'FastnnOptimizer'
    """
    return FastnnOptimizer(learn_rate, L2=L2, beta1=beta1, beta2=beta2, eps=eps,
                           grad_clip=grad_clip, L2_is_weight_decay=L2_is_weight_decay,
                           use_averages=use_averages, use_radam=False)


@registry.optimizers("fastnn.SGD.v1")
def SGD(learn_rate, *, L2=SGD_DEFAULTS["L2"], grad_clip=SGD_DEFAULTS["grad_clip"],
        L2_is_weight_decay: bool = bool(SGD_DEFAULTS["L2_is_weight_decay"]),
        use_averages: bool = True) -> FastnnOptimizer:
    """Thinc's ``SGD`` (same arguments, same updates) on fastnn's fused SGD kernel.

    Example
    -------
    >>> from fastnn.thinc import SGD
    >>> type(SGD(0.1)).__name__
    'FastnnOptimizer'
    """
    return FastnnOptimizer(learn_rate, L2=L2, grad_clip=grad_clip,
                           L2_is_weight_decay=L2_is_weight_decay, beta1=0.0, beta2=0.0,
                           use_averages=use_averages)
