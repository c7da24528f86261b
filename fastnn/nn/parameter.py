"""The trainable tensor and its accumulated gradient."""

from __future__ import annotations

import numpy as np

from fastnn.nn._arrays import Array, to_numpy, zeros


class Parameter:
    """A trainable tensor and the gradient accumulated for it.

    Layers add into ``gradient`` during backward (``+=``); an optimizer step uses it and
    zeroes it again, so gradients of several backward passes sum until the next update.

    Parameters
    ----------
    tensor : float array
        Kept as given when already C-contiguous (updates happen in place), else copied.

    Example
    -------
    >>> import numpy as np
    >>> p = Parameter(np.ones((2, 3), dtype=np.float32))
    >>> p.gradient.shape, float(p.gradient.sum())
    ((2, 3), 0.0)
    """

    __slots__ = ("tensor", "gradient")

    def __init__(self, tensor: Array) -> None:
        if not hasattr(tensor, "dtype"):
            tensor = np.asarray(tensor)
        if tensor.dtype.kind != "f":
            raise TypeError(f"Parameter: tensor must be a float array, got {tensor.dtype}")
        if not tensor.flags.c_contiguous:
            tensor = np.ascontiguousarray(tensor)
        self.tensor = tensor
        self.gradient = zeros(tensor)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.tensor.dtype

    def move_to(self, xp) -> None:
        """Make ``tensor`` and ``gradient`` arrays of the module ``xp`` (NumPy or CuPy),
        copying them only when they are of another kind."""
        if not isinstance(self.tensor, xp.ndarray):
            if xp is np:  # from the device (CuPy arrays refuse an implicit np.asarray)
                self.tensor, self.gradient = to_numpy(self.tensor), to_numpy(self.gradient)
            else:
                self.tensor, self.gradient = xp.asarray(self.tensor), xp.asarray(self.gradient)

    def zero_grad(self) -> None:
        """Set the accumulated gradient to zero."""
        self.gradient[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"
