"""Array helpers shared by the layers, optimizers and the learner.

Everything here works on NumPy and CuPy arrays alike: allocation goes through
``np.empty_like``/``np.zeros_like`` (which CuPy arrays dispatch to CuPy), and the arithmetic
the layers need beyond the op set (accumulate ``y += alpha * x``, a sum of squares) is
expressed as :func:`fastnn.ops.gemm` calls, so it runs on whatever backend is current.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn import ops

Array = Any  # a NumPy array, or a CuPy array on the cuda backend

_ONES: dict[tuple[type, np.dtype], Array] = {}


def empty(like: Array, shape: tuple[int, ...], dtype=None) -> Array:
    """A new uninitialised C-contiguous array of ``like``'s kind (NumPy or CuPy)."""
    return np.empty_like(like, shape=tuple(shape), dtype=dtype or like.dtype, order="C")


def zeros(like: Array) -> Array:
    """Zeros of ``like``'s kind, shape and dtype (C-contiguous)."""
    return np.zeros_like(like, order="C")


def _one(like: Array) -> Array:
    """A cached ``(1, 1)`` array holding 1 of ``like``'s kind and dtype."""
    key = (type(like), like.dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = np.ones_like(like, shape=(1, 1), order="C")
    return one


def axpy(alpha: float, x: Array, y: Array) -> Array:
    """``y += alpha * x`` in place (``y`` C-contiguous), as a rank-1 :func:`ops.gemm`.

    ``ones(1, 1) @ x(1, size)`` with ``beta=1`` is exactly the accumulate the op contract
    lacks as an op of its own.
    """
    ops.gemm(_one(x), x.reshape(1, -1), alpha=alpha, beta=1.0, out=y.reshape(1, -1))
    return y


def sum_of_squares(x: Array) -> float:
    """``sum(x ** 2)`` as a Python float, through :func:`ops.gemm`."""
    flat = x.reshape(1, -1)
    return float(ops.gemm(flat, flat, trans_b=True)[0, 0])


def to_numpy(x: Array) -> np.ndarray:
    """A NumPy array of ``x`` (copied from the device for CuPy arrays)."""
    if hasattr(x, "get") and hasattr(x, "__cuda_array_interface__"):
        return x.get()
    return np.asarray(x)
