"""Helpers shared by the numba op families: output allocation, flat views, threads."""

from __future__ import annotations

import contextlib
import threading

import numba
import numpy as np

from fastnn import _compat, _threads

# Every kernel module imports this one before defining its kernels, so the cache location
# is settled first: a user cache directory, never site-packages (see _compat).
_compat.use_user_numba_cache()

# Every kernel: compiled on first call for the dtypes it meets, cached on disk (in
# NUMBA_CACHE_DIR, by default ~/.cache/fastnn/numba), with
# NumPy's error model (x / 0 is inf or NaN, as in the reference, and no per-division
# zero check to stop LLVM vectorising). GEMM-like reductions add "reassoc" so LLVM can
# vectorise them; nothing uses full fastmath, because NaN and inf must pass through
# exactly as in the reference.
JIT = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL = dict(JIT, parallel=True)
REDUCE = dict(PARALLEL, fastmath={"reassoc", "contract"})


def alloc(out, shape, dtype):
    """``out`` when the caller gave one, else a new uninitialised array."""
    return np.empty(shape, dtype=dtype) if out is None else out


def flat(a):
    """A 1-D view of a C-contiguous array (never a copy, so writes reach ``a``)."""
    return a.reshape(-1)


def sync_threads() -> int:
    """Make numba's pool use fastnn's thread count (returned).

    numba keeps its count per calling thread, so a backend made (or an op called) after
    ``fastnn.set_num_threads`` in another thread still gets the requested count.
    """
    wanted = min(_threads.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != wanted:
        numba.set_num_threads(wanted)
    return wanted


# ------------------------------------------------------------------ BLAS beside numba's pool
#
# The backend's matrix products are NumPy's BLAS calls. Left at fastnn's thread count, the
# BLAS's worker threads (OpenBLAS's wait by spinning on sched_yield for a long while after
# each call) and numba's OpenMP workers (spinning on pause after each parallel kernel) take
# the cores from each other: on two cores the seed's training step ran 5-7x slower than
# with either pool alone. So the products run on the calling thread only; numba's pool
# keeps every other op. The BLAS setting is process-wide: it is lowered while any thread is
# inside a product and restored when the last one leaves.

_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved: list = []
_blas_pools = None  # threadpoolctl's BLAS controllers, found on first use


def _blas_controllers():
    global _blas_pools
    if _blas_pools is None:
        from threadpoolctl import ThreadpoolController

        _blas_pools = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_pools


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block's NumPy BLAS calls on the calling thread alone (see above)."""
    global _blas_users
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved[:] = [(pool, pool.get_num_threads()) for pool in _blas_controllers()]
            for pool, threads in _blas_saved:
                if threads != 1:
                    pool.set_num_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for pool, threads in _blas_saved:
                    if threads != 1:
                        pool.set_num_threads(threads)


def matmul(a, b, out=None):
    """``np.matmul(a, b, out=out)`` with the BLAS on the calling thread."""
    with single_threaded_blas():
        return np.matmul(a, b, out=out)
