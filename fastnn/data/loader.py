"""``load_mnist``: the bundled MNIST digits, a directory of IDX files, or an ``.npz``.

The wheel ships the 10,000-digit MNIST test set (``fastnn/data/mnist/``, see its README
for credits and licence). fastnn splits it into the first 8,000 digits for training and
the last 2,000 for evaluation, so training and evaluation work offline and out of the box.
The bundled files are checked against their published MD5 checksums every time they are
loaded (a few milliseconds), since a corrupted install should fail loudly, not train badly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fastnn.data.idx import PathLike, read_idx

__all__ = ["load_mnist", "BUNDLED_DIR", "BUNDLED_MD5", "EVALUATION_FRACTION"]

BUNDLED_DIR = Path(__file__).resolve().parent / "mnist"
BUNDLED_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The test set alone is split 4:1 (10,000 digits -> 8,000 train, 2,000 evaluation).
EVALUATION_FRACTION = 0.2
IMAGE_SHAPE = (28, 28)
CLASSES = 10
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Split = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- locating files

def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_bundled() -> None:
    for name, expected in BUNDLED_MD5.items():
        path = BUNDLED_DIR / name
        if not path.is_file():
            raise FileNotFoundError(f"the bundled MNIST file {path} is missing; reinstall fastnn")
        got = _md5(path)
        if got != expected:
            raise ValueError(f"{path}: MD5 checksum {got} differs from the published {expected}; "
                             "the bundled data is corrupted, reinstall fastnn")


def _find(directory: Path, stem: str) -> Path | None:
    """``stem`` such as ``train-images-idx3-ubyte``, gzip-compressed or not; the dotted
    spelling some mirrors use (``train-images.idx3-ubyte``) is accepted too."""
    prefix, _, suffix = stem.partition("-idx")
    for name in (stem, f"{prefix}.idx{suffix}"):
        for candidate in (name, name + ".gz"):
            path = directory / candidate
            if path.is_file():
                return path
    return None


# --------------------------------------------------------------------------- validation

def _check_images(where: str, images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8 (0-255), got {images.dtype}")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{where}: images must have shape (N, 28, 28) or (N, 28, 28, 1), got "
                         f"{tuple(images.shape)} (wrong dimensions)")
    return images


def _check_labels(where: str, labels: np.ndarray, count: int, images_where: str) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{where}: labels must be integers, got {labels.dtype} "
                         "(non-integer labels)")
    if labels.ndim != 1:
        raise ValueError(f"{where}: labels must be 1-D, got shape {tuple(labels.shape)} "
                         "(wrong dimensions)")
    if labels.shape[0] != count:
        raise ValueError(f"{where}: {labels.shape[0]} labels but {count} images in "
                         f"{images_where}; the label count must equal the image count")
    if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
        raise ValueError(f"{where}: labels must be digits 0-9, got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def _read_pair(images_path: Path, labels_path: Path) -> Split:
    images = _check_images(str(images_path), read_idx(images_path))
    labels = _check_labels(str(labels_path), read_idx(labels_path), images.shape[0],
                           str(images_path))
    return images, labels


def _split(images: np.ndarray, labels: np.ndarray) -> tuple[Split, Split]:
    n_eval = int(round(len(images) * EVALUATION_FRACTION))
    n_train = len(images) - n_eval
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


# --------------------------------------------------------------------------- sources

def _load_directory(directory: Path) -> tuple[Split, Split]:
    found = {stem: _find(directory, stem) for stem in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    train = [found["train-images-idx3-ubyte"], found["train-labels-idx1-ubyte"]]
    test = [found["t10k-images-idx3-ubyte"], found["t10k-labels-idx1-ubyte"]]
    if all(test) and all(train):
        return _read_pair(*train), _read_pair(*test)
    if all(test) and not any(train):
        return _split(*_read_pair(*test))
    missing = [f"{stem}[.gz]" for stem, path in found.items() if path is None]
    if all(test):
        raise FileNotFoundError(f"{directory}: has only part of the training pair; missing "
                                f"{', '.join(missing)}")
    raise FileNotFoundError(
        f"{directory}: no MNIST IDX files found; expected t10k-images-idx3-ubyte[.gz] and "
        f"t10k-labels-idx1-ubyte[.gz] (optionally with the train-* pair); missing "
        f"{', '.join(missing)}")


def _load_npz(path: Path) -> tuple[Split, Split]:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - zipfile, pickle and format errors alike
        raise ValueError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    with archive:
        if not hasattr(archive, "files"):
            raise ValueError(f"{path}: a .npy array, not an .npz archive with keys "
                             f"{', '.join(NPZ_KEYS)}")
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(f"{path}: missing npz key(s) {', '.join(missing)} "
                             f"(has: {', '.join(archive.files) or 'none'})")
        try:
            arrays = {key: archive[key] for key in NPZ_KEYS}
        except Exception as exc:  # noqa: BLE001 - object arrays, corrupt members
            raise ValueError(f"{path}: cannot read its arrays ({exc})") from None
    splits = []
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        images = _check_images(f"{path}[{x_key}]", arrays[x_key])
        labels = _check_labels(f"{path}[{y_key}]", arrays[y_key], images.shape[0],
                               f"{path}[{x_key}]")
        splits.append((images, labels))
    return splits[0], splits[1]


def _convert(images: np.ndarray, dtype, normalize: bool, channels_last: bool) -> np.ndarray:
    dtype = np.dtype(dtype)
    if normalize:
        if dtype.kind != "f":
            raise ValueError(f"load_mnist: normalize=True needs a float dtype, got {dtype}")
        out = images.astype(dtype)
        out *= dtype.type(1.0 / 255.0)
    else:
        out = images.astype(dtype)
    return out[:, :, :, None] if channels_last else out[:, None, :, :]


def load_mnist(path: PathLike | Path | None = None, *, dtype=np.float32,
               normalize: bool = True,
               channels_last: bool = True) -> tuple[Split, Split]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Parameters
    ----------
    path : None, a directory, or an ``.npz`` file
        ``None``: the bundled MNIST test set (checksums verified), the first 8,000 digits
        for training and the last 2,000 for evaluation. A directory: IDX files under their
        standard names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``);
        the t10k pair alone is split like the bundled set (first 80% / last 20%). An
        ``.npz``: arrays ``x_train, y_train, x_test, y_test``, uint8 images N×28×28 or
        N×28×28×1 and integer labels 0-9.
    dtype : float dtype of the images (any dtype when ``normalize=False``)
    normalize : scale pixels to [0, 1] (otherwise keep 0-255)
    channels_last : NHWC images ``(N, 28, 28, 1)``; ``False`` gives NCHW ``(N, 1, 28, 28)``

    Returns
    -------
    ((x_train, y_train), (x_test, y_test)) with int64 labels.

    Raises
    ------
    FileNotFoundError
        The path does not exist, or a directory lacks the IDX files.
    ValueError
        A malformed file (named in the message): bad magic, truncated, wrong dimensions,
        label count different from the image count, non-integer labels, a missing npz key,
        or a bundled file whose checksum differs.

    Example
    -------
    >>> (x, y), (x_eval, y_eval) = load_mnist()
    >>> x.shape, x.dtype, y.dtype, x_eval.shape
    ((8000, 28, 28, 1), dtype('float32'), dtype('int64'), (2000, 28, 28, 1))
    """
    if path is None:
        _verify_bundled()
        splits = _load_directory(BUNDLED_DIR)
    else:
        path = Path(path).expanduser()
        if path.is_dir():
            splits = _load_directory(path)
        elif path.is_file():
            if path.suffix.lower() != ".npz":
                raise ValueError(f"{path}: expected a directory of IDX files or an .npz file")
            splits = _load_npz(path)
        else:
            raise FileNotFoundError(f"load_mnist: {path} does not exist")
    (x_train, y_train), (x_test, y_test) = splits
    return ((_convert(x_train, dtype, normalize, channels_last), y_train),
            (_convert(x_test, dtype, normalize, channels_last), y_test))
