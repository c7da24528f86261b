"""The ``cuda`` backend: CuPy arrays in and out, computed on the GPU.

Plain matrix products go to cuBLAS through ``cupy.matmul``; everything with a kernel of
its own (conv2d and its gradients, pooling, LRN, activations, the linear epilogue, the bias
gradient, softmax cross-entropy, dropout, SGD and Adam) runs fastnn._cuda's CUDA kernels
(csrc/cuda); softmax, log-softmax, their backward and the MSE loss are short CuPy
expressions. Every op is overridden here: the reference's NumPy code cannot run on CuPy
arrays. The sequence ops (``seq``: maxout, seq2col, the ragged reductions, gather_add) have
no CUDA kernels yet and run the reference on the host, a copy each way. Each op family has
its module (``activations``, ``conv``, ``dense``, ``dropout``, ``losses``, ``lrn``,
``optim``, ``pool``, ``seq``; their shared helpers in ``common``).

Methods receive arguments already validated and normalised by :mod:`fastnn.ops`. They
allocate outputs and workspaces with CuPy (its memory pool makes that cheap) and pass the
kernels CuPy's current stream, so they order with the caller's other CuPy work. The kernels
are NHWC/HWIO; ``layout="NCHW"`` convolutions transpose at this boundary, while pooling and
LRN take either layout directly. Losses come back as 0-d CuPy arrays of the logits' dtype.
"""

from __future__ import annotations

from fastnn.backends.cuda.activations import ActivationOps
from fastnn.backends.cuda.conv import ConvOps
from fastnn.backends.cuda.dense import DenseOps
from fastnn.backends.cuda.dropout import DropoutOps
from fastnn.backends.cuda.losses import LossOps
from fastnn.backends.cuda.lrn import LrnOps
from fastnn.backends.cuda.optim import OptimizerOps
from fastnn.backends.cuda.pool import PoolOps
from fastnn.backends.cuda.seq import SeqOps
from fastnn.backends.reference import ReferenceBackend

__all__ = ["CudaBackend"]


class CudaBackend(DenseOps, ConvOps, PoolOps, ActivationOps, LossOps, LrnOps, DropoutOps,
                  OptimizerOps, SeqOps, ReferenceBackend):
    """CuPy arrays; cuBLAS for GEMM and fastnn._cuda's kernels for the rest."""

    name = "cuda"
    array_kind = "CuPy"

    def __init__(self, native, cupy) -> None:
        self._cuda = native
        self.xp = cupy

    def accepts(self, array) -> bool:
        return isinstance(array, self.xp.ndarray)
