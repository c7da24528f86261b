"""Memory the native kernels keep between calls, and how to give it back.

The cpu kernels keep a scratch workspace per calling thread (GEMM packing, im2col
blocks, pointer tables, per-thread partial sums), so that a training loop of fixed
shapes allocates nothing after its first step. Each is bounded (a workspace above 64 MiB
is freed when its call ends); :func:`release_memory` frees them all at once.
"""

from __future__ import annotations

from fastnn import _compat


def release_memory() -> None:
    """Free every workspace the native kernels cache, in every thread.

    A workspace in use by a call running in another thread is freed when that call
    ends. The next call of a kernel allocates what it needs again. Without
    ``fastnn._C`` there is nothing to free.

    Example
    -------
    >>> import numpy as np, fastnn
    >>> y = fastnn.ops.conv2d(np.ones((1, 64, 64, 3), np.float32),
    ...                       np.ones((3, 3, 3, 8), np.float32), padding=1)
    >>> fastnn.release_memory()
    """
    native, _ = _compat.native()
    if native is not None:
        native.release_memory()
