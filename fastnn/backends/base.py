"""What every backend shares: its name, which arrays it takes, and the unavailable error."""

from __future__ import annotations

import numpy as np


class BackendUnavailable(RuntimeError):
    """A backend's parts are missing on this machine; the message says which."""


def index_out_of_range(op: str, name: str, indices, size: int) -> ValueError:
    """The error for an index array ``name`` of ``op`` holding a value outside
    ``[0, size)``, naming the first such value in flat order (every backend raises this)."""
    flat = indices.reshape(-1)
    bad = flat[(flat < 0) | (flat >= size)]
    first = int(bad[0]) if bad.size else -1
    return ValueError(f"{op}: {name} holds {first}, outside [0, {size})")


def argmax_out_of_range(argmax, size: int) -> ValueError:
    """``max_pool2d_backward``'s ``argmax`` holding an index outside ``[0, size)``."""
    return index_out_of_range("max_pool2d_backward", "argmax", argmax, size)


def which_out_of_range(which, lengths) -> ValueError:
    """The error for ``reduce_max_backward``'s ``which`` holding, in some row ``b``, a value
    outside ``[0, lengths[b])``: the first such value in row-major order."""
    bounds = lengths.reshape(-1, 1)
    rows, cols = ((which < 0) | (which >= bounds)).nonzero()
    b = int(rows[0]) if rows.size else 0
    value = int(which[b, cols[0]]) if rows.size else -1
    return ValueError(f"reduce_max_backward: which holds {value} in row {b}, outside "
                      f"[0, {int(lengths[b])}) (the length of sequence {b})")


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
