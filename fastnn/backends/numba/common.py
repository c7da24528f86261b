"""Helpers shared by the numba op families: output allocation, flat views, threads."""

from __future__ import annotations

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


def sync_threads() -> None:
    """Make numba's pool use fastnn's thread count.

    numba keeps its count per calling thread, so a backend made (or an op called) after
    ``fastnn.set_num_threads`` in another thread still gets the requested count.
    """
    wanted = min(_threads.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != wanted:
        numba.set_num_threads(wanted)
