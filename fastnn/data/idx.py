"""The IDX file format of the MNIST distribution, read and written with NumPy.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order,
big-endian. The files are often gzip-compressed; :func:`read_idx` recognises gzip by its
own magic bytes, not by the file name. Every malformed file raises a ``ValueError`` that
names the file and says what is wrong, because a silently misread data set trains a model
that is wrong in ways no later check catches.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from fastnn._files import atomic_write

__all__ = ["read_idx", "write_idx"]

PathLike = Union[str, "os.PathLike[str]"]

# IDX type code -> element type (big-endian where it matters)
_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("=") if dtype.itemsize > 1 else dtype: code
          for code, dtype in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc}); is it truncated?") from None


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into an array of its own shape.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    numpy.ndarray in native byte order, of the file's element type and dimensions.

    Raises
    ------
    ValueError
        Bad magic number, unknown type code, truncated header or data, or trailing bytes.

    Example
    -------
    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([3, 1, 4], dtype=uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes); "
                         "is it truncated?")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()} (an IDX file starts "
                         "with two zero bytes, a type code and a dimension count)")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()}: unknown IDX type code "
                         f"0x{code:02x} (known: {', '.join(f'0x{c:02x}' for c in _TYPES)})")
    if ndim == 0:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()}: zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise ValueError(f"{path}: truncated: shape {shape} of {dtype.name} needs {expected} "
                         f"bytes of data, the file has {got}")
    if got > expected:
        raise ValueError(f"{path}: {got - expected} unexpected bytes after the data of shape "
                         f"{shape}; wrong dimensions in the header?")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: PathLike, array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``).

    The element type must be one IDX has: uint8, int8, int16, int32, float32 or float64.

    Example
    -------
    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([3, 1, 4], np.uint8), compress=True)
    >>> read_idx(path)
    array([3, 1, 4], dtype=uint8)
    """
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if key not in _CODES:
        raise TypeError(f"write_idx: IDX has no type for {array.dtype}")
    if array.ndim < 1 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX holds 1 to 255 dimensions, got {array.ndim}")
    code = _CODES[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with atomic_write(path) as f:
        f.write(payload)
