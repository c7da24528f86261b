"""The ``numba`` backend: every op of :mod:`fastnn.ops` as ``@njit`` kernels.

The fallback where fastnn._C is missing, and a place for quick kernel experiments. Each op
family lives in its own module (``conv``, ``pool``, ``lrn``, ``dense``,
``activations``, ``losses``, ``dropout``, ``optim``, ``seq``), kernels first, then the mixin
whose methods allocate outputs and call them; :class:`NumbaBackend` is their union over
:class:`~fastnn.backends.reference.ReferenceBackend`.

Compilation is lazy: this package is imported only when the registry builds the backend
(never by ``import fastnn``), the decorators carry no signatures, so each kernel compiles
on its first call for the dtypes it meets, and ``cache=True`` keeps the machine code on
disk for the next process: in ``NUMBA_CACHE_DIR``, which fastnn sets to
``$XDG_CACHE_HOME/fastnn/numba`` (``~/.cache/fastnn/numba``) unless it is set already, so
the cache never lands in site-packages (numba's own default is ``__pycache__`` beside the
module). Kernels that use
``prange`` run on numba's thread pool, sized from :func:`fastnn.get_num_threads` when the
backend is built and re-checked on every call.

Overridden: every op of the contract. Handed to NumPy where it is faster: convolution
backward-data with fewer than 4 input channels (the reference's GEMM and scatter; set
``numba_few_channel_data`` on a backend to use the kernel anyway, as its tests do) and
float32 ``tanh`` on fewer than three threads (NumPy's SIMD ``np.tanh``). What is not
a numba loop: the matrix product inside ``gemm`` and ``linear`` is NumPy's BLAS call,
single-threaded, large ones split into blocks over Python threads (numba's in-kernel
``np.dot`` is the same BLAS but needs SciPy), with the scaling and the
bias + activation epilogue in a numba pass; NCHW convolutions transpose to NHWC at the
boundary (pooling and LRN run on NCHW directly).

Example
-------
>>> import numpy as np
>>> from fastnn import backends, ops
>>> with backends.use("numba"):
...     ops.relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

from fastnn.backends.numba.activations import ActivationOps
from fastnn.backends.numba.common import sync_threads
from fastnn.backends.numba.conv import ConvOps
from fastnn.backends.numba.dense import DenseOps
from fastnn.backends.numba.dropout import DropoutOps
from fastnn.backends.numba.losses import LossOps
from fastnn.backends.numba.lrn import LrnOps
from fastnn.backends.numba.optim import OptimizerOps
from fastnn.backends.numba.pool import PoolOps
from fastnn.backends.numba.seq import SeqOps
from fastnn.backends.reference import ReferenceBackend

__all__ = ["NumbaBackend"]


class NumbaBackend(DenseOps, ConvOps, PoolOps, ActivationOps, LossOps, LrnOps, DropoutOps,
                   OptimizerOps, SeqOps, ReferenceBackend):
    """numba ``@njit`` kernels for the whole op contract (float32 and float64, NHWC and
    NCHW)."""

    name = "numba"

    def __init__(self):
        sync_threads()  # honour a fastnn.set_num_threads made before numba was imported
