"""The reference backend: every op of :mod:`fastnn.ops` in plain NumPy.

It is the oracle every other backend is tested against, so it is written to be read:
vectorised NumPy (im2col through stride tricks plus one matmul for convolutions), no
Python loops over pixels, float32 and float64 computed in their own dtype. Each op family
lives in its own module; :class:`ReferenceBackend` is their union, and accelerated backends
subclass it and override only what they speed up.
"""

from __future__ import annotations

from fastnn.backends.base import Backend
from fastnn.backends.reference.activations import ActivationOps
from fastnn.backends.reference.conv import ConvOps
from fastnn.backends.reference.dense import DenseOps
from fastnn.backends.reference.dropout import DropoutOps
from fastnn.backends.reference.losses import LossOps
from fastnn.backends.reference.lrn import LrnOps
from fastnn.backends.reference.optim import OptimizerOps
from fastnn.backends.reference.pool import PoolOps
from fastnn.backends.reference.seq import SeqOps

__all__ = ["ReferenceBackend"]


class ReferenceBackend(DenseOps, ConvOps, PoolOps, ActivationOps, LossOps, LrnOps, DropoutOps,
                       OptimizerOps, SeqOps, Backend):
    """Pure-NumPy implementation of the whole op contract."""

    name = "reference"
