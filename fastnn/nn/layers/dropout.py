"""Dropout: inverted dropout in training mode, the identity in evaluation mode."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from fastnn import ops
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer


class Dropout(Layer):
    """Keep each element with probability ``keep_prob`` and scale it by ``1 / keep_prob``.

    TFLearn's convention: the argument is the probability to *keep* (the seed network uses
    ``keep_prob=0.8``). Every training-mode forward draws a fresh mask seed from the
    layer's own ``np.random.Generator`` (seeded by ``seed``), so the same ``seed`` gives the
    same masks, batch after batch, on every backend. In evaluation mode (and with
    ``keep_prob=1``) the layer returns its input unchanged.

    Example
    -------
    >>> import numpy as np
    >>> drop = Dropout(0.5, seed=0)
    >>> y = drop(np.ones((1, 8)))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones((1, 3)))
    array([[1., 1., 1.]])
    """

    def __init__(self, keep_prob: float, *, seed: Union[None, int, np.random.Generator] = None
                 ) -> None:
        super().__init__()
        keep_prob = float(keep_prob)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"Dropout: keep_prob must be in (0, 1], got {keep_prob!r}")
        self.keep_prob = keep_prob
        self.seed = seed if isinstance(seed, (int, np.integer)) else None
        self._rng = np.random.default_rng(seed)

    def forward(self, X: Array) -> tuple[Array, Backward]:
        token = self._begin_forward()
        if not self.training or self.keep_prob == 1.0:
            return X, _identity
        mask_seed = int(self._rng.integers(0, 2**63))
        Y, mask = ops.dropout(X, keep_prob=self.keep_prob, seed=mask_seed,
                              out=self._buffer("y", X.shape, X))

        def backward(D: Array) -> Array:
            self._check(token)
            return ops.dropout_backward(D, mask, keep_prob=self.keep_prob,
                                        out=self._buffer("dx", D.shape, D))

        return Y, backward

    def config(self) -> dict[str, Any]:
        return {"keep_prob": self.keep_prob,
                "seed": None if self.seed is None else int(self.seed)}

    def _brief_config(self) -> dict[str, Any]:
        return {"keep_prob": self.keep_prob}


def _identity(D: Array) -> Array:
    return D
