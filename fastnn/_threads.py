"""Runtime settings of fastnn's kernels: one thread count for every pool fastnn computes
with, and flushing of subnormal floats.

``set_num_threads(n)`` sets fastnn._C's OpenMP kernels, numba's pool (when numba is
loaded) and the BLAS under NumPy (through threadpoolctl), so no two pools oversubscribe
the cores. The default is ``OMP_NUM_THREADS`` or the core count.
"""

from __future__ import annotations

import contextlib
import os
import sys

from fastnn import _compat

_requested: int | None = None


def _default() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads fastnn's kernels use (all cores unless :func:`set_num_threads` said).

    >>> import fastnn
    >>> fastnn.get_num_threads() >= 1
    True
    """
    native, _ = _compat.native()
    if native is not None:
        return native.get_num_threads()
    return _requested or _default()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in fastnn's kernels, numba and NumPy's BLAS.

    >>> import fastnn
    >>> fastnn.set_num_threads(1); fastnn.get_num_threads()
    1
    """
    global _requested
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _requested = n
    native, _ = _compat.native()
    if native is not None:
        native.set_num_threads(n)
    if "numba" in sys.modules:  # only touch numba if something already imported it
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


# ------------------------------------------------------------------ subnormal floats

_flush_fallback = False  # without fastnn._C there are no kernels to set it for


def get_flush_denormals() -> bool:
    """Whether fastnn's CPU kernels flush subnormal floats to zero (see
    :func:`set_flush_denormals`).

    >>> import fastnn
    >>> with fastnn.flush_denormals(True):
    ...     fastnn.get_flush_denormals()
    True
    """
    native, _ = _compat.native()
    return bool(native.get_flush_denormals()) if native is not None else _flush_fallback


def set_flush_denormals(on: bool) -> None:
    """Flush subnormal floats to zero in the cpu backend's kernels (off by default).

    On x86 every operation on a subnormal float costs a microcode assist, about 100
    cycles. Training can push weights there (a filter that no longer fires decays
    geometrically under weight decay), and a layer whose sums turn subnormal then runs
    20-50x slower. With this on, each kernel thread sets the CPU's flush-to-zero and
    denormals-are-zero modes for the kernel's duration only, so NumPy and other code
    keep IEEE arithmetic. Off, the ops match NumPy exactly on subnormal inputs.
    :class:`fastnn.nn.Learner` turns it on while it trains and evaluates.

    >>> import fastnn
    >>> fastnn.set_flush_denormals(True); fastnn.get_flush_denormals()
    True
    >>> fastnn.set_flush_denormals(False)
    """
    global _flush_fallback
    if not isinstance(on, bool):
        raise TypeError(f"set_flush_denormals: on must be a bool, got {on!r}")
    _flush_fallback = on
    native, _ = _compat.native()
    if native is not None:
        native.set_flush_denormals(on)


@contextlib.contextmanager
def flush_denormals(on: bool = True):
    """Context manager: :func:`set_flush_denormals` for the block, then the old setting.

    >>> import fastnn, numpy as np
    >>> with fastnn.flush_denormals():
    ...     fastnn.ops.gemm(np.full((1, 1), 1e-40, np.float32), np.ones((1, 1), np.float32))
    array([[0.]], dtype=float32)
    """
    before = get_flush_denormals()
    set_flush_denormals(on)
    try:
        yield
    finally:
        set_flush_denormals(before)
