"""One thread count for every pool fastnn computes with.

``set_num_threads(n)`` sets fastnn._C's OpenMP kernels, numba's pool (when numba is
loaded) and the BLAS under NumPy (through threadpoolctl), so no two pools oversubscribe
the cores. The default is ``OMP_NUM_THREADS`` or the core count.
"""

from __future__ import annotations

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
    """Threads fastnn's kernels use."""
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
