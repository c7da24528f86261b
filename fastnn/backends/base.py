"""What every backend shares: its name, which arrays it takes, and the unavailable error."""

from __future__ import annotations

import numpy as np


class BackendUnavailable(RuntimeError):
    """A backend's parts are missing on this machine; the message says which."""


def argmax_out_of_range(argmax, size: int) -> ValueError:
    """The error for ``max_pool2d_backward``'s ``argmax`` holding an index outside
    ``[0, size)``, naming the first such value in flat order (every backend raises this)."""
    flat = argmax.reshape(-1)
    bad = flat[(flat < 0) | (flat >= size)]
    first = int(bad[0]) if bad.size else -1
    return ValueError(f"max_pool2d_backward: argmax holds {first}, outside [0, {size})")


class Backend:
    """Base of every backend. Subclasses implement the ops of :mod:`fastnn.ops` as methods
    (normally by inheriting :class:`~fastnn.backends.reference.ReferenceBackend`).

    Example
    -------
    >>> import numpy as np
    >>> from fastnn import backends
    >>> backend = backends.get("reference")
    >>> isinstance(backend, backends.Backend), backend.accepts(np.zeros(1))
    (True, True)
    """

    name = "base"
    array_kind = "NumPy"
    xp = np
    # Op name -> a native entry point that takes the backend method's arrays positionally
    # (``out`` given), validates every argument itself and raises TypeError or ValueError
    # before it writes anything. :mod:`fastnn.ops` calls these directly for plain arguments
    # (a few microseconds less per call) and takes its full path for anything they refuse;
    # so does :class:`fastnn.thinc.FastnnOps` (Thinc calls ops on arrays of a few elements).
    native_entries: dict = {}

    def accepts(self, array) -> bool:
        """Whether this backend computes on ``array``'s type (an ``xp.ndarray``)."""
        return isinstance(array, self.xp.ndarray)

    def __repr__(self) -> str:
        return f"<fastnn backend {self.name!r}>"
