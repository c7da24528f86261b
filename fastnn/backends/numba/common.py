"""Helpers shared by the numba op families: output allocation, flat views, threads."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
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
# with either pool alone. So the BLAS runs single-threaded, and a large product is split
# into row blocks, one per thread: the calling thread takes the first, a pool of Python
# threads the others, each a single-threaded BLAS call (NumPy releases the GIL). Those
# threads wait on a queue between products, so nothing spins after one. The BLAS setting is
# process-wide: it is lowered while any thread is inside a product and restored when the
# last one leaves.

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


# A product below this many FLOPs runs as one call. Handing a block to another thread costs
# 20-40 us, and a block is a BLAS call of its own that repacks the shared operand: on a
# 2-vCPU Intel host the split took 512^3 from 1.88 to 1.15 ms (OpenBLAS on 2 threads: 1.06)
# but did not pay on the seed's dense products (64x3136x128: 0.59 ms single, 0.63 split,
# right after NumPy's own 2-thread BLAS calls), nor in the seed's training step (0.98x).
SPLIT_MIN_FLOPS = 64e6
# OpenBLAS runs a GEMM with m * n * k below this on the calling thread whatever its thread
# count (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD, 65536 * 4 by default): such products
# skip the two thread-count changes around the call (~10 us, more than the product).
OPENBLAS_SERIAL_BELOW = 65536 * 4
_pool_lock = threading.Lock()
_pool = {"executor": None, "workers": 0}


def _executor(workers: int):
    """The pool of ``workers`` Python threads for row blocks (remade when the count
    changes)."""
    with _pool_lock:
        if _pool["workers"] != workers:
            if _pool["executor"] is not None:
                _pool["executor"].shutdown(wait=False)
            _pool["executor"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="fastnn-numba-blas")
            _pool["workers"] = workers
        return _pool["executor"]


def _forget_pool_after_fork() -> None:
    _pool["executor"], _pool["workers"] = None, 0  # its threads are not in the child


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def matmul(a, b, out=None, threads=None):
    """``np.matmul(a, b, out=out)`` for 2-D operands, the BLAS single-threaded: split into
    blocks of rows (or of columns, when the result is wider than tall) over ``threads``
    threads (fastnn's count by default) when the product is large enough to pay for it.
    Each block is a BLAS call of its own, which repacks the operand the blocks share, so the
    split goes across the larger side."""
    threads = _threads.get_num_threads() if threads is None else threads
    m, k = a.shape
    n = b.shape[1]
    if m * n * k < OPENBLAS_SERIAL_BELOW:  # single-threaded in OpenBLAS anyway
        return np.matmul(a, b, out=out)
    by_rows = m >= n
    parts = min(threads, (m if by_rows else n) // 16)
    with single_threaded_blas():
        if parts < 2 or 2.0 * m * n * k < SPLIT_MIN_FLOPS:
            return np.matmul(a, b, out=out)
        if out is None:
            out = np.empty((m, n), dtype=np.result_type(a, b))
        size = m if by_rows else n
        bounds = [size * i // parts for i in range(parts + 1)]

        def block(lo, hi):
            if by_rows:
                return np.matmul(a[lo:hi], b, out=out[lo:hi])
            return np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

        pool = _executor(parts - 1)
        futures = [pool.submit(block, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
        block(0, bounds[1])
        for future in futures:
            future.result()
        return out
