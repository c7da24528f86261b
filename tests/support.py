"""Shared test helpers (imported as ``support``): which backends exist here, tolerances,
array conversion.

Backends join every parity and contract test through :data:`ACCELERATED`: each available
backend other than the reference. CUDA is always listed and skips with "no CUDA device"
where none is present, so GPU machines run the same suite.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastnn import _compat, backends
from fastnn.backends.reference import ReferenceBackend

# One table of tolerances per dtype: (rtol, atol relative to the largest reference value).
TOLERANCES = {
    np.dtype(np.float32): (2e-4, 2e-5),
    np.dtype(np.float64): (1e-10, 1e-12),
}

ACCELERATED = [name for name in backends.available() if name != "reference"]
if "cuda" not in ACCELERATED:
    ACCELERATED.append("cuda")


def backend_param(name):
    """Parametrize value for a backend; unavailable CUDA skips, anything else fails loudly."""
    if name == "cuda" and "cuda" not in backends.available():
        return pytest.param(name, marks=pytest.mark.skip(reason="no CUDA device"))
    return pytest.param(name)


BACKEND_PARAMS = [backend_param(name) for name in ACCELERATED]


def native_module():
    """fastnn._C, for tests that size their shapes from what it reports (its caches).
    Skips only where FASTNN_DISABLE_NATIVE hides it on purpose; a missing extension
    anywhere else is a broken install and fails."""
    C, why = _compat.native()
    if C is None:
        if os.environ.get("FASTNN_DISABLE_NATIVE", "") not in ("", "0"):
            pytest.skip(f"fastnn._C hidden on purpose ({why})")
        pytest.fail(f"fastnn._C is part of every install but did not load: {why}")
    return C
ALL_BACKEND_PARAMS = [pytest.param("reference")] + BACKEND_PARAMS


def overrides(name: str, op: str) -> bool:
    """Whether backend ``name`` has its own implementation of ``op`` (not the reference's)."""
    if name == "cuda":
        return True
    return getattr(type(backends.get(name)), op) is not getattr(ReferenceBackend, op)


def to_backend(name, value):
    """Move NumPy inputs to the array type backend ``name`` computes on."""
    if name != "cuda":
        return value
    import cupy

    if isinstance(value, np.ndarray):
        return cupy.asarray(value)
    if isinstance(value, (tuple, list)):
        return type(value)(to_backend(name, v) for v in value)
    return value


def to_numpy(value):
    """Bring results (arrays, tuples, 0-d arrays) back to NumPy."""
    if isinstance(value, (tuple, list)):
        return type(value)(to_numpy(v) for v in value)
    if hasattr(value, "get") and hasattr(value, "__cuda_array_interface__"):
        return value.get()
    return value


def assert_close(actual, expected, dtype=None):
    """Compare with the per-dtype tolerance; integer and bool arrays must match exactly."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e, dtype)
        return
    if expected is None:
        assert actual is None
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
        return
    rtol, atol = TOLERANCES[np.dtype(dtype or expected.dtype)]
    finite = np.isfinite(expected)
    scale = float(np.abs(expected[finite]).max()) if finite.any() else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * max(scale, 1.0))
