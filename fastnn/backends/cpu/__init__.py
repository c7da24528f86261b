"""The ``cpu`` backend: fastnn._C's C++ kernels, the reference for everything else.

Each op family has its module here (``activations``, ``conv``, ``dense``, ``dropout``,
``losses``, ``lrn``, ``optim``, ``pool``, ``seq``), a mixin whose methods override
:class:`ReferenceBackend` for the ops with a native kernel. They receive arguments
already validated and normalised by :mod:`fastnn.ops`, allocate the output when the caller
gave none, and hand both to the binding, which releases the GIL while it computes.
"""

from __future__ import annotations

from fastnn.backends.cpu.activations import ActivationOps
from fastnn.backends.cpu.conv import ConvOps
from fastnn.backends.cpu.dense import DenseOps
from fastnn.backends.cpu.dropout import DropoutOps
from fastnn.backends.cpu.losses import LossOps
from fastnn.backends.cpu.lrn import LrnOps
from fastnn.backends.cpu.optim import OptimizerOps
from fastnn.backends.cpu.pool import PoolOps
from fastnn.backends.cpu.seq import SeqOps
from fastnn.backends.reference import ReferenceBackend

__all__ = ["CpuBackend"]


class CpuBackend(DenseOps, ConvOps, PoolOps, ActivationOps, LossOps, LrnOps, DropoutOps,
                 OptimizerOps, SeqOps, ReferenceBackend):
    """C++ kernels through pybind11 (OpenMP, AVX-512/AVX2/portable chosen at run time)."""

    name = "cpu"

    def __init__(self, native):
        self._C = native
        # The bindings check dtypes, shapes, layout and alignment before they compute.
        self.native_entries = {name: getattr(native, name) for name in (
            "gemm", "linear", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "tanh",
            "tanh_backward")}
