"""The backend registry.

A backend is an object with one method per op of :mod:`fastnn.ops` (same names, same
signatures). ``reference`` (pure NumPy) always exists; ``cpu`` (fastnn._C), ``numba`` and
``cuda`` (CuPy + fastnn._cuda) join when their parts load. Outside packages add backends
through the ``fastnn.backends`` entry-point group (the entry point names a zero-argument
callable returning the backend object).

Example
-------
>>> import numpy as np
>>> from fastnn import backends, ops
>>> with backends.use("reference"):
...     ops.relu(np.array([-1.0]))
array([0.])
"""

from __future__ import annotations

import contextvars
import os
from typing import Callable, Optional

import numpy as np

from fastnn import _compat
from fastnn.backends.base import Backend, BackendUnavailable

__all__ = ["Backend", "BackendUnavailable", "available", "unavailable", "get", "use",
           "current", "register", "names"]

# Preference order for NumPy arrays; CuPy arrays always get "cuda".
_NUMPY_PREFERENCE = ("cpu", "numba", "reference")


def _load_reference():
    from fastnn.backends.reference import ReferenceBackend
    return ReferenceBackend()


def _load_cpu():
    module, why = _compat.native()
    if module is None:
        raise BackendUnavailable(why)
    from fastnn.backends.cpu import CpuBackend
    return CpuBackend(module)


def _load_numba():
    module, why = _compat.numba()
    if module is None:
        raise BackendUnavailable(why)
    try:
        from fastnn.backends.numba import NumbaBackend
    except ImportError as exc:
        raise BackendUnavailable(f"the numba backend is not part of this build: {exc}") from exc
    return NumbaBackend()


def _load_cuda():
    cupy, why = _compat.cupy()
    if cupy is None:
        raise BackendUnavailable(why)
    module, why = _compat.cuda_native()
    if module is None:
        raise BackendUnavailable(why)
    from fastnn.backends.cuda import CudaBackend
    return CudaBackend(module, cupy)


_factories: dict[str, Callable[[], Backend]] = {
    "reference": _load_reference,
    "cpu": _load_cpu,
    "numba": _load_numba,
    "cuda": _load_cuda,
}
_instances: dict[str, Backend] = {}
_failures: dict[str, str] = {}
_entry_points_loaded = False
_current: contextvars.ContextVar[Optional[Backend]] = contextvars.ContextVar(
    "fastnn_backend", default=None)


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Add a backend under ``name``; ``factory()`` builds it on first use (or raises
    :class:`BackendUnavailable` with the reason).

    Example
    -------
    >>> from fastnn import backends
    >>> from fastnn.backends.reference import ReferenceBackend
    >>> class Mine(ReferenceBackend):
    ...     name = "mine"
    >>> backends.register("mine", Mine)
    >>> "mine" in backends.available(), backends.get("mine")
    (True, <fastnn backend 'mine'>)
    >>> for table in (backends._factories, backends._instances):  # (the example tidies up)
    ...     _ = table.pop("mine")
    """
    global _numpy_default
    _factories[name] = factory
    _instances.pop(name, None)
    _failures.pop(name, None)
    _numpy_default = None


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    try:
        found = entry_points(group="fastnn.backends")
    except TypeError:  # Python < 3.10
        found = entry_points().get("fastnn.backends", [])
    for ep in found:
        if ep.name not in _factories:
            _factories[ep.name] = lambda ep=ep: ep.load()()


def names() -> list[str]:
    """Every registered backend name, available or not.

    Example
    -------
    >>> from fastnn import backends
    >>> {"reference", "cpu", "numba", "cuda"} <= set(backends.names())
    True
    """
    _load_entry_points()
    return list(_factories)


def _try(name: str) -> Optional[Backend]:
    if name in _instances:
        return _instances[name]
    if name in _failures:
        return None
    try:
        backend = _factories[name]()
    except BackendUnavailable as exc:
        _failures[name] = str(exc)
        return None
    backend.name = name
    _instances[name] = backend
    return backend


def available() -> list[str]:
    """Names of the backends that load on this machine.

    Example
    -------
    >>> from fastnn import backends
    >>> "reference" in backends.available()  # the NumPy one always loads
    True
    """
    return [name for name in names() if _try(name) is not None]


def unavailable() -> dict[str, str]:
    """Backends that do not load, with the reason for each.

    Example
    -------
    >>> from fastnn import backends
    >>> missing = backends.unavailable()  # e.g. {'cuda': 'cupy is not installed ...'}
    >>> set(missing).isdisjoint(backends.available())
    True
    """
    return {name: _failures[name] for name in names() if _try(name) is None}


def get(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the reason if it cannot load.

    Example
    -------
    >>> from fastnn import backends
    >>> backends.get("reference")
    <fastnn backend 'reference'>
    """
    backend = _instances.get(name)
    if backend is not None:  # loaded before: the common case, without the registry scan
        return backend
    if name not in names():
        raise ValueError(f"unknown backend {name!r}; registered: {', '.join(names())}")
    backend = _try(name)
    if backend is None:
        raise ValueError(f"backend {name!r} is not available: {_failures[name]}")
    return backend


class use:  # noqa: N801 - used as a function: ``with backends.use("cpu"):``
    """Run the enclosed ops on backend ``name`` (a context manager; thread- and task-local).

    ``with use("numba") as backend:`` makes ``backend`` current until the block ends. A
    class rather than a generator (1.6 -> 0.5 us per block), so a loop that switches
    backends per call pays little for it; like any context manager, enter each once.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn import backends, ops
    >>> with backends.use("reference") as backend:
    ...     backend.name, ops.tanh(np.zeros(2))
    ('reference', array([0., 0.]))
    """

    __slots__ = ("_backend", "_token")

    def __init__(self, name: str):
        self._backend = get(name)

    def __enter__(self) -> Backend:
        self._token = _current.set(self._backend)
        return self._backend

    def __exit__(self, *exc_info) -> None:
        _current.reset(self._token)


def set_default(name: Optional[str]) -> None:
    """Make ``name`` the backend outside any :func:`use` block (None: choose automatically).

    Example
    -------
    >>> from fastnn import backends
    >>> backends.set_default("reference")
    >>> backends.current().name
    'reference'
    >>> backends.set_default(None)
    """
    _current.set(None if name is None else get(name))


_numpy_default: Optional[tuple[str, Backend]] = None  # (FASTNN_BACKEND seen, choice)


# os.environ.get costs about a microsecond (key encoding, value decoding), and every op
# asks: on POSIX, look the raw bytes up in the dict behind os.environ instead (the same
# data, so changes made through os.environ are still seen).
_ENVIRON_BYTES = getattr(os.environ, "_data", None) if os.name == "posix" else None


def _backend_env() -> str:
    if _ENVIRON_BYTES is not None:
        return _ENVIRON_BYTES.get(b"FASTNN_BACKEND", b"").decode("utf-8", "surrogateescape")
    return os.environ.get("FASTNN_BACKEND", "")


def default_for(array=None) -> Backend:
    """The automatic choice: ``FASTNN_BACKEND`` if set, else the best for the array type.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn import backends
    >>> backends.default_for(np.zeros(1)).name in backends.available()
    True
    """
    global _numpy_default
    env = _backend_env()
    if array is not None and type(array) is not np.ndarray and _compat.is_cupy_array(array):
        return get(env or "cuda")
    # Every op asks this: remember the answer for NumPy arrays until FASTNN_BACKEND changes.
    if _numpy_default is not None and _numpy_default[0] == env:
        return _numpy_default[1]
    if env:
        backend = get(env)
    else:
        backend = next(b for b in map(_try, _NUMPY_PREFERENCE) if b is not None)
    _numpy_default = (env, backend)
    return backend


def current(array=None) -> Backend:
    """The backend ops run on now: the innermost :func:`use`, else :func:`default_for`.

    Example
    -------
    >>> from fastnn import backends
    >>> with backends.use("reference"):
    ...     backends.current().name
    'reference'
    """
    backend = _current.get()
    return backend if backend is not None else default_for(array)
