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
    """threadpoolctl's controllers of the BLAS libraries loaded at the first call: NumPy's
    (loaded with NumPy, before fastnn). One that another library loads later (PyTorch's,
    SciPy's) is not a BLAS NumPy calls, so the backend leaves its threads alone."""
    global _blas_pools
    if _blas_pools is None:
        from threadpoolctl import ThreadpoolController

        _blas_pools = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_pools


def _openblas_symbols(lib, names):
    """{name: function} from an OpenBLAS library under its own symbol names: plain, or
    scipy-openblas's (NumPy's wheels), ILP64 or not; None when they are not all there."""
    for prefix, suffix in (("", ""), ("scipy_", "64_"), ("scipy_", ""), ("", "64_")):
        if all(hasattr(lib, f"{prefix}{name}{suffix}") for name in names):
            return {name: getattr(lib, f"{prefix}{name}{suffix}") for name in names}
    return None


_blas_knob_list = None  # (get, set) of each BLAS's thread count, found on first use


def _blas_knobs():
    """(get, set) of each BLAS pool's thread count: OpenBLAS's own functions through ctypes
    where found (0.3 us a call), threadpoolctl's methods otherwise."""
    global _blas_knob_list
    if _blas_knob_list is None:
        knobs = []
        for pool in _blas_controllers():
            found = None
            if getattr(pool, "internal_api", None) == "openblas":
                found = _openblas_symbols(pool.dynlib, ("openblas_get_num_threads",
                                                        "openblas_set_num_threads"))
            if found is None:
                knobs.append((pool.get_num_threads, pool.set_num_threads))
            else:
                knobs.append((found["openblas_get_num_threads"], found["openblas_set_num_threads"]))
        _blas_knob_list = knobs
    return _blas_knob_list


def _lower_blas() -> None:
    global _blas_users
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved[:] = [(setter, getter()) for getter, setter in _blas_knobs()]
            for setter, threads in _blas_saved:
                if threads != 1:
                    setter(1)
        _blas_users += 1


def _restore_blas() -> None:
    global _blas_users
    with _blas_lock:
        _blas_users -= 1
        if _blas_users == 0:
            for setter, threads in _blas_saved:
                if threads != 1:
                    setter(threads)


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block's NumPy BLAS calls on the calling thread alone (see above)."""
    _lower_blas()
    try:
        yield
    finally:
        _restore_blas()


# A product below this many FLOPs runs as one call. Handing a block to another thread costs
# 20-70 us, and a block is a BLAS call of its own that repacks the shared operand: on a
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


# ------------------------------------------------------------------ CBLAS from numba's pool
#
# Handing a block to a Python thread costs 70 us on a 2-vCPU KVM guest (a no-op submitted
# and waited for: the sleeping thread's wake-up), so the split above pays only on large
# products. numba's own workers are warm between the backend's kernels, so where NumPy's
# BLAS is OpenBLAS (as in NumPy's wheels) the backend calls its cblas_sgemm / cblas_dgemm
# straight from a parallel numba loop over the blocks, each call single-threaded. Intel
# Xeon, 2 threads, float32, `fastnn bench` against NumPy on OpenBLAS's own 2 threads: 256^3
# 0.93x (the Python-thread path: 0.55x), 512^3 1.02x (0.69x), the seed's dense products
# 0.84-0.88x (0.45-0.55x). The blocks alone run level with OpenBLAS's own 2-thread call or
# ahead (0.98-1.21x); the rest is the op's Python around them.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_cblas_state = {"found": False, "fns": None}
_cblas_lock = threading.Lock()


def _find_cblas():
    """{dtype: ctypes cblas_?gemm} from the OpenBLAS NumPy loaded, or None when its BLAS is
    another library (or its symbols are not found)."""
    import ctypes

    for pool in _blas_controllers():
        if getattr(pool, "internal_api", None) != "openblas":
            continue
        found = _openblas_symbols(pool.dynlib, ("cblas_sgemm", "cblas_dgemm", "openblas_get_config"))
        if found is None:
            continue
        config = found["openblas_get_config"]
        config.restype = ctypes.c_char_p
        index = ctypes.c_int64 if b"USE64BITINT" in (config() or b"") else ctypes.c_int
        fns = {}
        for dtype, name, scalar in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                    (np.float64, "cblas_dgemm", ctypes.c_double)):
            proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index,
                                     index, scalar, ctypes.c_void_p, index, ctypes.c_void_p,
                                     index, scalar, ctypes.c_void_p, index)
            fns[np.dtype(dtype)] = proto(ctypes.cast(found[name], ctypes.c_void_p).value)
        return fns
    return None


def _cblas(dtype):
    """The block kernel (_blocks_kernel) over OpenBLAS's cblas_?gemm for ``dtype`` (float32
    or float64), or None."""
    if not _cblas_state["found"]:
        with _cblas_lock:
            if not _cblas_state["found"]:
                try:
                    fns = _find_cblas()
                except (OSError, AttributeError, ImportError):
                    fns = None
                _cblas_state["fns"] = fns and {dtype: _blocks_kernel(fn) for dtype, fn in fns.items()}
                _cblas_state["found"] = True
    kernels = _cblas_state["fns"]
    return None if kernels is None else kernels.get(dtype)


def _blocks_kernel(gemm):
    """A parallel numba loop calling ``gemm`` (a ctypes cblas_?gemm) once per block. The
    function is a constant of the compiled loop, not an argument: numba types a ctypes
    function argument anew on every call (24 us). Compiled on first use in each process
    (0.4-0.7 s; the function's address is the process's, so it is not cached on disk)."""

    @numba.njit(parallel=True, nogil=True)
    def blocks(by_rows, parts, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # C (m x n, rows ldc apart in c) = alpha * op(A) @ op(B) + beta * C in ``parts``
        # blocks of rows (or columns), one call each. a, b, c are the operands' buffers as
        # flat arrays; ta, tb whether A is stored k x m and B n x k.
        size = m if by_rows else n
        item = a.itemsize
        pa, pb, pc = a.ctypes.data, b.ctypes.data, c.ctypes.data
        for p in numba.prange(parts):
            lo = size * p // parts
            hi = size * (p + 1) // parts
            if by_rows:
                a_block = pa + (lo if ta else lo * lda) * item
                gemm(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS,
                     hi - lo, n, k, alpha, a_block, lda, pb, ldb, beta, pc + lo * ldc * item,
                     ldc)
            else:
                b_block = pb + (lo * ldb if tb else lo) * item
                gemm(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS,
                     m, hi - lo, k, alpha, pa, lda, b_block, ldb, beta, pc + lo * item, ldc)

    return blocks


def _blas_operand(x):
    """(transposed, leading dimension, flat buffer) for a C- or F-contiguous 2-D operand (a
    transposed one is read from its C-contiguous transpose), or None."""
    if x.flags.c_contiguous:
        return False, max(x.shape[1], 1), x.reshape(-1)
    if x.flags.f_contiguous:
        return True, max(x.shape[0], 1), x.T.reshape(-1)
    return None


def _cblas_matmul(a, b, out, alpha, beta, threads):
    """``out = alpha * a @ b + beta * out`` through OpenBLAS's CBLAS in numba's pool, or
    None when the operands are outside what that path takes (dtypes other than float32
    and float64, mixed ones, strided or overlapping arrays)."""
    dtype = a.dtype
    if b.dtype != dtype or dtype not in (np.float32, np.float64):
        return None
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0 or k == 0:
        return None
    blocks = _cblas(dtype)
    layout_a, layout_b = _blas_operand(a), _blas_operand(b)
    if blocks is None or layout_a is None or layout_b is None:
        return None
    if out is None:
        out = np.empty((m, n), dtype=dtype)
    elif (out.dtype != dtype or not out.flags.c_contiguous or np.may_share_memory(out, a)
          or np.may_share_memory(out, b)):
        return None
    by_rows = m >= n
    parts = max(1, min(threads, numba.config.NUMBA_NUM_THREADS, (m if by_rows else n) // 8))
    scalar = dtype.type
    args = (by_rows, parts, layout_a[0], layout_b[0], m, n, k, scalar(alpha), layout_a[2],
            layout_a[1], layout_b[2], layout_b[1], scalar(beta), out.reshape(-1), n)
    if m * n * k < OPENBLAS_SERIAL_BELOW * parts:  # each block runs inline in OpenBLAS
        blocks(*args)
        return out
    _lower_blas()
    try:
        blocks(*args)
    finally:
        _restore_blas()
    return out


def matmul(a, b, out=None, threads=None, alpha=1.0, beta=0.0):
    """``alpha * a @ b + beta * out`` (``np.matmul(a, b, out=out)`` by default) for 2-D
    operands, the BLAS single-threaded: split into blocks of rows (or of columns, when the
    result is wider than tall) over ``threads`` threads (fastnn's count by default). Each
    block is a BLAS call of its own, which repacks the operand the blocks share, so the
    split goes across the larger side. ``beta`` other than 0 needs ``out``. Callers make
    numba's pool fastnn's size first (sync_threads)."""
    threads = _threads.get_num_threads() if threads is None else threads
    if alpha == 1.0 and beta == 0.0 and a.shape[0] * a.shape[1] * b.shape[1] < OPENBLAS_SERIAL_BELOW:
        # Inline in OpenBLAS whatever its thread count, and cheaper in NumPy's call than in a
        # parallel loop's (64 x 256 x 10: 5.6 against 9.6 us).
        return np.matmul(a, b, out=out)
    result = _cblas_matmul(a, b, out, alpha, beta, threads)
    if result is not None:
        return result
    if alpha != 1.0 or beta != 0.0:
        product = _python_matmul(a, b, None, threads)
        t = product.dtype.type
        if beta == 0.0:
            out = np.multiply(product, t(alpha), out=out)
        else:
            out *= t(beta)
            out += t(alpha) * product
        return out
    return _python_matmul(a, b, out, threads)


def _python_matmul(a, b, out, threads):
    """matmul's path without CBLAS: NumPy's matmul, large products split over Python
    threads."""
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
