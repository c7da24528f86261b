"""Data: the MNIST loader and the bundled MNIST digits.

>>> from fastnn.data import load_mnist
>>> (x, y), (x_eval, y_eval) = load_mnist()
>>> x.shape, x_eval.shape
((8000, 28, 28, 1), (2000, 28, 28, 1))
"""

from __future__ import annotations

from fastnn.data.idx import read_idx, write_idx
from fastnn.data.loader import BUNDLED_DIR, BUNDLED_MD5, load_mnist

__all__ = ["load_mnist", "read_idx", "write_idx", "BUNDLED_DIR", "BUNDLED_MD5"]
