"""Probes for optional parts: the native module, numba, CuPy and a GPU, torch.

Every probe is lazy and cached: nothing is imported, compiled or allocated until a
caller asks, and a missing or broken optional part is reported as a reason string,
never raised from ``import fastnn``. The one check ``import fastnn`` runs is
:func:`warn_if_shadowed` (a file-system look, no import of the native module).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Optional


class ShadowedInstallWarning(UserWarning):
    """``fastnn`` was imported from a source tree that has no compiled ``fastnn._C``."""


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
    if module is None and shadowing():
        return None, f"fastnn._C did not load ({why}): {shadowing()}"
    return module, (why and f"fastnn._C did not load ({why}); reinstall with a C++ compiler")


def _installed_elsewhere(package_dir: Path) -> Optional[Path]:
    """The directory of an installed ``fastnn`` distribution other than ``package_dir``."""
    from importlib import metadata

    try:
        dist = metadata.distribution("fastnn")
    except metadata.PackageNotFoundError:
        return None
    init = Path(str(dist.locate_file("fastnn/__init__.py")))
    if not init.is_file() or init.resolve().parent == package_dir:
        return None
    return init.resolve().parent


@functools.cache
def shadowing() -> str:
    """What to do when the imported ``fastnn`` is a source tree without ``fastnn._C``, else "".

    That happens when Python runs in a checkout (its ``fastnn/`` comes first on
    ``sys.path``) after a non-editable ``pip install .``: the compiled module sits in the
    installed copy only, so the cpu backend would silently go missing. A checkout is a
    package directory with ``CMakeLists.txt`` and ``csrc/`` beside it; the other sign is an
    installed distribution of fastnn somewhere else.
    """
    if os.environ.get("FASTNN_DISABLE_NATIVE", "") not in ("", "0"):
        return ""
    if importlib.util.find_spec("fastnn._C") is not None:  # built here, or an editable install
        return ""
    package_dir = Path(__file__).resolve().parent
    checkout = (package_dir.parent / "CMakeLists.txt").is_file() and (
        package_dir.parent / "csrc").is_dir()
    installed = _installed_elsewhere(package_dir)
    if not checkout and installed is None:
        return ""
    where = "a source tree" if checkout else "a copy"
    also = f", while an installed fastnn is at {installed}" if installed else ""
    return (f"fastnn was imported from {where} at {package_dir} that has no compiled "
            f"fastnn._C{also}; the cpu backend is missing there and the ops fall back to "
            "numba or NumPy, many times slower. Run Python from another directory so that "
            "the installed package is imported, or use an editable install "
            "(pip install -e ., see CONTRIBUTING.md)")


@functools.cache
def warn_if_shadowed() -> None:
    """Warn once per process (a :class:`ShadowedInstallWarning`) when :func:`shadowing` says
    so; ``import fastnn`` calls it."""
    message = shadowing()
    if message:
        warnings.warn(message, ShadowedInstallWarning, stacklevel=3)


def use_user_numba_cache() -> None:
    """Keep numba's compiled-kernel cache out of the installed package.

    numba writes ``cache=True`` kernels to ``__pycache__`` beside their module when that
    directory is writable, which for an installed fastnn is site-packages. Unless
    ``NUMBA_CACHE_DIR`` is set already, fastnn points it at ``$XDG_CACHE_HOME/fastnn/numba``
    (``~/.cache/fastnn/numba``), where numba keeps one tree per source location. Called
    before the numba kernels are defined.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "fastnn", "numba")
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba imported already: let it read the variable again
        config.reload_config()


@functools.cache
def numba() -> tuple[Optional[ModuleType], str]:
    use_user_numba_cache()
    module, why = _try_import("numba")
    return module, (why and f"numba is not installed (pip install 'fastnn[numba]'): {why}")


@functools.cache
def cupy() -> tuple[Optional[ModuleType], str]:
    """``(cupy, "")`` when CuPy imports and sees at least one CUDA device."""
    module, why = _try_import("cupy")
    if module is None:
        return None, (f"cupy is not installed (pip install 'fastnn[cuda13]'; 'fastnn[cuda]' "
                      f"where fastnn._cuda was built from source): {why}")
    try:
        count = module.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return None, f"no CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "no CUDA device"
    return module, ""


@functools.cache
def cuda_native() -> tuple[Optional[ModuleType], str]:
    """The CUDA kernels: ``fastnn._cuda`` from a source build with nvcc, else the module of
    the ``fastnn-cuda13`` wheel (``fastnn[cuda13]``), which must match fastnn's version."""
    module, why = _try_import("fastnn._cuda")
    if module is not None:
        return module, ""
    wheel, why_wheel = _try_import("fastnn_cuda13._cuda")
    if wheel is None:
        return None, (f"fastnn._cuda was not built ({why}) and the fastnn-cuda13 wheel does "
                      f"not load ({why_wheel}; pip install 'fastnn[cuda13]')")
    from fastnn._version import __version__

    theirs = getattr(sys.modules.get("fastnn_cuda13"), "__version__", None)
    if theirs != __version__:
        return None, (f"fastnn-cuda13 {theirs} does not match fastnn {__version__} "
                      f"(pip install 'fastnn[cuda13]=={__version__}')")
    return wheel, ""


@functools.cache
def torch() -> tuple[Optional[ModuleType], str]:
    module, why = _try_import("torch")
    return module, (why and f"torch is not installed: {why}")


def is_cupy_array(x) -> bool:
    return type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__")
