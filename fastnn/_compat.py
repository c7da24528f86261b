"""Probes for optional parts: the native module, numba, CuPy and a GPU, torch.

Every probe is lazy and cached: nothing is imported, compiled or allocated until a
caller asks, and a missing or broken optional part is reported as a reason string,
never raised from ``import fastnn``.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType
from typing import Optional


def _try_import(name: str) -> tuple[Optional[ModuleType], str]:
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return None, f"{type(exc).__name__}: {exc}"


@functools.cache
def native() -> tuple[Optional[ModuleType], str]:
    """``(fastnn._C, "")`` or ``(None, why it is missing)``.

    ``FASTNN_DISABLE_NATIVE=1`` hides the module, to test the fallbacks.
    """
    if os.environ.get("FASTNN_DISABLE_NATIVE", "") not in ("", "0"):
        return None, "disabled by FASTNN_DISABLE_NATIVE"
    module, why = _try_import("fastnn._C")
    return module, (why and f"fastnn._C did not load ({why}); reinstall with a C++ compiler")


@functools.cache
def numba() -> tuple[Optional[ModuleType], str]:
    module, why = _try_import("numba")
    return module, (why and f"numba is not installed (pip install 'fastnn[numba]'): {why}")


@functools.cache
def cupy() -> tuple[Optional[ModuleType], str]:
    """``(cupy, "")`` when CuPy imports and sees at least one CUDA device."""
    module, why = _try_import("cupy")
    if module is None:
        return None, f"cupy is not installed (pip install 'fastnn[cuda]'): {why}"
    try:
        count = module.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return None, f"no CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "no CUDA device"
    return module, ""


@functools.cache
def cuda_native() -> tuple[Optional[ModuleType], str]:
    module, why = _try_import("fastnn._cuda")
    return module, (why and f"fastnn._cuda was not built ({why})")


@functools.cache
def torch() -> tuple[Optional[ModuleType], str]:
    module, why = _try_import("torch")
    return module, (why and f"torch is not installed: {why}")


def is_cupy_array(x) -> bool:
    return type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__")
