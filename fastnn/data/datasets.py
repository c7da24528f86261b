"""Your own data as a :class:`Dataset`: arrays, ``.npz`` files, IDX folders, image folders.

Every reader returns the same thing, a :class:`Dataset`: a ``train`` and a ``validation``
:class:`Split` of ``(x, y)`` arrays, NHWC float32 images in [0, 1] and int64 labels, plus
the ``classes`` names (label ``i`` is ``classes[i]``):

* :func:`from_arrays` - images and labels you already hold in NumPy;
* :func:`load_npz` - an ``.npz`` with ``x_train, y_train, x_test, y_test`` (or ``x, y``);
* :func:`load_idx` - a folder of MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST
  as downloaded: ``train-images-idx3-ubyte.gz`` and so on, gzipped or not);
* :func:`load_image_folder` - ``root/<class>/*.png`` (also .jpg, .jpeg, .bmp, .gif), read
  with Pillow (``pip install 'fastnn[images]'``), resized and made grayscale or RGB;
* :func:`load` - any of these by path (``None``: the bundled MNIST digits).

:func:`split` is the train/validation split they use: seeded, per class (each class keeps
its share of validation images), each part in the original order.

A reader that cannot use what it was given raises :class:`DataError` (a ``ValueError``)
or ``FileNotFoundError``, in one line naming the file or folder.

>>> import numpy as np
>>> from fastnn import data
>>> x = np.zeros((10, 28, 28), np.uint8)          # ten 28x28 uint8 images
>>> ds = data.from_arrays(x, np.arange(10) % 2, validation=0.2, seed=0)
>>> ds.train.x.shape, ds.train.x.dtype, ds.validation.y.dtype, ds.classes
((8, 28, 28, 1), dtype('float32'), dtype('int64'), ('0', '1'))
>>> (x_train, y_train), (x_val, y_val) = ds   # unpacks like load_mnist's result
>>> print(ds)
8 training and 2 validation images, 28x28x1, 2 classes (0, 1)
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from fastnn.data.errors import DataError, MissingDependency
from fastnn.data.images import (
    DEFAULT_SIZE,
    IMAGE_SUFFIXES,
    Size,
    check_color,
    check_size,
    is_image,
    open_image,
    read_image,
    require_pillow,
)

__all__ = ["Dataset", "Split", "DataError", "MissingDependency", "from_arrays", "split",
           "load", "load_npz", "load_idx", "load_image_folder", "read_image", "IMAGE_SUFFIXES"]

PathLike = Union[str, "os.PathLike[str]"]



@dataclass(frozen=True)
class Split:
    """Images ``x`` (n, height, width, channels) float32 in [0, 1] and labels ``y`` (n,)
    int64. Unpacks as ``x, y = split``.

    Example
    -------
    >>> import numpy as np
    >>> part = Split(np.zeros((3, 28, 28, 1), np.float32), np.array([0, 1, 2]))
    >>> x, y = part
    >>> len(part), x.shape, y.tolist()
    (3, (3, 28, 28, 1), [0, 1, 2])
    """

    x: np.ndarray
    y: np.ndarray

    def __iter__(self):
        return iter((self.x, self.y))

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """A ``train`` and a ``validation`` :class:`Split`, the ``classes`` names (label ``i``
    is ``classes[i]``), ``source`` (where it came from, for messages) and ``kind``: the
    reader that made it (``"mnist"`` for the bundled digits, ``"arrays"``, ``"npz"``,
    ``"idx"`` or ``"images"``).

    Unpacks like :func:`fastnn.data.load_mnist`'s result:
    ``(x, y), (x_val, y_val) = dataset``.

    Example
    -------
    >>> import numpy as np
    >>> dataset = from_arrays(np.zeros((10, 8, 8), np.uint8), np.arange(10) % 2)
    >>> (x, y), (x_val, y_val) = dataset
    >>> dataset.image_shape, len(x), len(x_val), dataset.classes
    ((8, 8, 1), 8, 2, ('0', '1'))
    """

    train: Split
    validation: Split
    classes: tuple[str, ...]
    source: str = "arrays"
    kind: str = "arrays"

    def __iter__(self):
        return iter((self.train, self.validation))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""
        x = self.train.x if len(self.train) else self.validation.x
        return tuple(int(d) for d in x.shape[1:])

    def describe(self) -> str:
        """One line: counts, image size and classes."""
        h, w, c = self.image_shape
        names = ", ".join(self.classes[:12]) + (", ..." if len(self.classes) > 12 else "")
        return (f"{len(self.train)} training and {len(self.validation)} validation images, "
                f"{h}x{w}x{c}, {len(self.classes)} classes ({names})")

    __str__ = describe


# --------------------------------------------------------------------------- arrays

def _images(where: str, x) -> np.ndarray:
    """NHWC float32 in [0, 1] from uint8/integer 0-255 or float [0, 1] images."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DataError(f"{where}: images must have shape (n, height, width) or (n, height, "
                        f"width, 1 or 3), got {tuple(x.shape)}")
    if x.dtype.kind in "iu":
        if x.size and (int(x.min()) < 0 or int(x.max()) > 255):
            raise DataError(f"{where}: integer pixels must be 0-255, got values in "
                            f"[{x.min()}, {x.max()}]")
        out = x.astype(np.float32)
        out *= np.float32(1.0 / 255.0)
        return np.ascontiguousarray(out)
    if x.dtype.kind == "f":
        out = np.ascontiguousarray(x, dtype=np.float32)
        bad = int(np.count_nonzero(~np.isfinite(out)))
        if bad:
            raise DataError(f"{where}: {bad} pixel(s) are NaN or infinite")
        if out.size and (out.min() < 0 or out.max() > 1):
            raise DataError(f"{where}: float pixels must be in [0, 1], got values in "
                            f"[{out.min():g}, {out.max():g}]; divide 0-255 values by 255")
        return out
    raise DataError(f"{where}: images must be uint8 (0-255) or float (0-1), got {x.dtype}")


def _labels(where: str, y, count: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels must be integers, got {y.dtype}")
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, got shape {tuple(y.shape)}")
    if len(y) != count:
        raise DataError(f"{where}: {len(y)} labels but {count} images; the label count must "
                        "equal the image count")
    if y.size and y.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, got {y.min()}")
    return y.astype(np.int64)


def _classes(where: str, classes, labels: Sequence[np.ndarray]) -> tuple[str, ...]:
    top = max((int(y.max()) for y in labels if y.size), default=-1)
    if classes is None:
        return tuple(str(i) for i in range(top + 1))
    names = tuple(str(name) for name in classes)
    if top >= len(names):
        raise DataError(f"{where}: label {top} but only {len(names)} class names")
    return names


def split(x: np.ndarray, y: np.ndarray, *, validation: float = 0.2,
          seed: Optional[int] = 0) -> tuple[Split, Split]:
    """Split ``(x, y)`` into a training and a validation :class:`Split`.

    ``validation``: the fraction held out, in [0, 1). With an integer ``seed`` each class
    gives ``round(count * validation)`` of its images (at least one when it has two or
    more), chosen at random with that seed, and images of any class are added at random
    until ``round(n * validation)`` (at least one of two or more) are held out;
    ``seed=None`` takes the last ``round(n * validation)`` images instead. Both parts keep
    the original order.

    >>> import numpy as np
    >>> train, val = split(np.arange(10), np.array([0] * 5 + [1] * 5), validation=0.4)
    >>> len(train), len(val), val.y.tolist()
    (6, 4, [0, 0, 1, 1])
    """
    if not (isinstance(validation, (int, float)) and 0 <= validation < 1):
        raise DataError(f"split: validation must be a fraction in [0, 1), got {validation!r}")
    n = len(y)
    n_val = int(round(n * validation))
    if validation > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    if seed is None:
        held = np.arange(n - n_val, n)
    else:
        rng = np.random.default_rng(seed)
        chosen = []
        for label in np.unique(y):
            members = np.flatnonzero(y == label)
            take = int(round(len(members) * validation))
            if validation > 0 and len(members) >= 2:
                take = min(max(take, 1), len(members) - 1)
            chosen.append(rng.permutation(members)[:take])
        held = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        if len(held) < n_val:  # classes too small to give their share: top up at random
            rest = np.setdiff1d(np.arange(n), held)
            held = np.concatenate([held, rng.permutation(rest)[:n_val - len(held)]])
        held = np.sort(held)
    mask = np.zeros(n, bool)
    mask[held] = True
    return Split(x[~mask], y[~mask]), Split(x[mask], y[mask])


def from_arrays(x, y, *, validation: float = 0.2, seed: Optional[int] = 0,
                classes: Optional[Sequence[str]] = None, source: str = "arrays") -> Dataset:
    """A :class:`Dataset` from images ``x`` and integer labels ``y``, split by :func:`split`.

    ``x``: (n, h, w) or (n, h, w, 1 or 3); uint8 (or other integer) pixels 0-255 are scaled
    to [0, 1], float pixels must already be in [0, 1]. ``y``: n integers >= 0.
    ``classes``: names for the labels (default ``"0"``, ``"1"``, ... up to the largest).

    >>> import numpy as np
    >>> ds = from_arrays(np.full((4, 8, 8, 3), 255, np.uint8), [0, 1, 0, 1],
    ...                  validation=0.5, classes=["cat", "dog"])
    >>> float(ds.train.x.max()), ds.image_shape, ds.classes
    (1.0, (8, 8, 3), ('cat', 'dog'))
    >>> try:
    ...     from_arrays(np.zeros((3, 8, 8)), [0, 1])
    ... except DataError as error:
    ...     print(error)
    arrays: 2 labels but 3 images; the label count must equal the image count
    """
    images = _images(source, x)
    labels = _labels(source, y, len(images))
    if len(images) == 0:
        raise DataError(f"{source}: no images")
    names = _classes(source, classes, [labels])
    train, val = split(images, labels, validation=validation, seed=seed)
    return Dataset(train, val, names, source, "arrays")


# --------------------------------------------------------------------------- files

def load_npz(path: PathLike, *, validation: float = 0.2, seed: Optional[int] = 0) -> Dataset:
    """A :class:`Dataset` from an ``.npz``: ``x_train, y_train, x_test, y_test`` (the test
    pair becomes the validation split) or just ``x, y`` (split by :func:`split` with
    ``validation`` and ``seed``); optionally ``classes``, an array of names. Images and
    labels as :func:`from_arrays` takes them.

    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "shapes.npz")
    >>> np.savez(path, x=np.zeros((5, 16, 16), np.uint8), y=[0, 1, 2, 0, 1],
    ...          classes=["circle", "square", "star"])
    >>> print(load_npz(path, validation=0.4))
    3 training and 2 validation images, 16x16x1, 3 classes (circle, square, star)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: does not exist" if not path.exists() else
                                f"{path}: is a folder, not an .npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - zipfile, pickle and format errors alike
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: "
                        f"{exc})") from None
    if not hasattr(archive, "files"):
        raise DataError(f"{path}: a .npy array, not an .npz archive")
    with archive:
        keys = set(archive.files)
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            wanted = ["x_train", "y_train", "x_test", "y_test"]
        elif {"x", "y"} <= keys:
            wanted = ["x", "y"]
        else:
            raise DataError(f"{path}: expected arrays x_train, y_train, x_test, y_test (or x, "
                            f"y); has: {', '.join(sorted(keys)) or 'none'}")
        try:
            arrays = {key: archive[key] for key in wanted + (["classes"] if "classes" in keys
                                                             else [])}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: cannot read its arrays ({exc})") from None
    classes = arrays.get("classes")
    if classes is not None:
        classes = [str(name) for name in np.ravel(classes)]
    if wanted == ["x", "y"]:
        dataset = from_arrays(arrays["x"], arrays["y"], validation=validation, seed=seed,
                              classes=classes, source=str(path))
        return Dataset(dataset.train, dataset.validation, dataset.classes, str(path), "npz")
    parts = []
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        x = _images(f"{path}[{x_key}]", arrays[x_key])
        parts.append(Split(x, _labels(f"{path}[{y_key}]", arrays[y_key], len(x))))
    if parts[0].x.shape[1:] != parts[1].x.shape[1:] and len(parts[0]) and len(parts[1]):
        raise DataError(f"{path}: x_train images are {parts[0].x.shape[1:]}, x_test images "
                        f"{parts[1].x.shape[1:]}; they must be the same size")
    names = _classes(str(path), classes, [p.y for p in parts])
    return Dataset(parts[0], parts[1], names, str(path), "npz")


def load_idx(directory: PathLike) -> Dataset:
    """A :class:`Dataset` from a folder of MNIST-format IDX files.

    The standard names, which MNIST, Fashion-MNIST and KMNIST all use:
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``, as downloaded) or not; the dotted
    spelling ``train-images.idx3-ubyte`` works too. The t10k pair becomes the validation
    split; a folder with only the t10k pair is split first 80% / last 20%. Images are 28x28
    uint8, labels 0-9 (see :func:`fastnn.data.load_mnist`).

    >>> import numpy as np, os, tempfile
    >>> from fastnn.data import write_idx
    >>> folder = tempfile.mkdtemp()
    >>> write_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"),
    ...           np.zeros((5, 28, 28), np.uint8), compress=True)
    >>> write_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"),
    ...           np.arange(5, dtype=np.uint8), compress=True)
    >>> print(load_idx(folder))
    4 training and 1 validation images, 28x28x1, 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    """
    from fastnn.data.loader import load_mnist

    path = Path(directory).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: does not exist" if not path.exists() else
                                f"{path}: is a file, not a folder of IDX files")
    (x, y), (x_val, y_val) = load_mnist(path)
    return Dataset(Split(x, y), Split(x_val, y_val), tuple(str(i) for i in range(10)),
                   str(path), "idx")


# --------------------------------------------------------------------------- images

def load_image_folder(root: PathLike, *, size: Size = DEFAULT_SIZE, color: str = "grayscale",
                      validation: float = 0.2, seed: Optional[int] = 0) -> Dataset:
    """A :class:`Dataset` from a folder of images per class: ``root/<class>/<image>``.

    The class names are the sorted sub-folder names (label ``i`` is the ``i``-th); the
    images are the files ending .png, .jpg, .jpeg, .bmp or .gif (any case; other files and
    hidden ones are skipped), read with Pillow (``pip install 'fastnn[images]'``),
    resized to ``size`` (``(height, width)`` or an int, default 28x28; the aspect ratio is
    not kept; ``None`` keeps the size, which must then be the same for all) and converted
    to ``color``: ``"grayscale"`` (1 channel, the default) or ``"rgb"`` (3). The split is
    :func:`split`'s, per class, with ``validation`` and ``seed``.

    >>> import os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for name, shade in (("cat", 40), ("dog", 200)):
    ...     os.mkdir(os.path.join(root, name))
    ...     for i in range(5):
    ...         Image.new("RGB", (40, 30), (shade, shade, 0)).save(
    ...             os.path.join(root, name, f"{i}.png"))
    >>> print(load_image_folder(root))
    8 training and 2 validation images, 28x28x1, 2 classes (cat, dog)
    >>> load_image_folder(root, size=(32, 32), color="rgb").image_shape
    (32, 32, 3)
    """
    size, color = check_size(size), check_color(color)
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: does not exist" if not path.exists() else
                                f"{path}: is a file, not a folder of class folders")
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = any(is_image(p) for p in path.iterdir())
        raise DataError(f"{path}: no class folders; put each class's images in a folder of "
                        f"its own ({path}/<class>/*.png)"
                        + (" - the images lie directly in it" if loose else ""))
    require_pillow()
    images, labels, first = [], [], None
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if is_image(p))
        if not files:
            raise DataError(f"{folder}: class {folder.name!r} has no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        for file in files:
            pixels, original, _ = open_image(file, size, color)
            if size is None:
                if first is None:
                    first = (file, pixels.shape)
                elif pixels.shape != first[1]:
                    raise DataError(
                        f"{file}: {pixels.shape[1]}x{pixels.shape[0]} but {first[0]} is "
                        f"{first[1][1]}x{first[1][0]}; the images differ in size, so give "
                        "a size to resize them to")
            images.append(pixels)
            labels.append(label)
    x = np.stack(images)
    y = np.asarray(labels, np.int64)
    train, val = split(x, y, validation=validation, seed=seed)
    return Dataset(train, val, tuple(folder.name for folder in folders), str(path), "images")


# --------------------------------------------------------------------------- any of them

def _has_idx(path: Path) -> bool:
    from fastnn.data.loader import _find

    return any(_find(path, stem) for stem in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte"))


def load(path: Optional[PathLike] = None, *, size: Size = DEFAULT_SIZE,
         color: str = "grayscale", validation: float = 0.2,
         seed: Optional[int] = 0) -> Dataset:
    """The :class:`Dataset` at ``path``, whatever its kind.

    * ``None``: the bundled MNIST digits (8,000 to train, 2,000 to validate);
    * a folder of IDX files: :func:`load_idx`;
    * a folder of class folders of images: :func:`load_image_folder` (with ``size``,
      ``color``, ``validation`` and ``seed``);
    * an ``.npz`` file: :func:`load_npz` (``validation`` and ``seed`` split an ``x, y``
      archive).

    >>> print(load())
    8000 training and 2000 validation images, 28x28x1, 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    """
    if path is None:
        from fastnn.data.loader import load_mnist

        (x, y), (x_val, y_val) = load_mnist()
        return Dataset(Split(x, y), Split(x_val, y_val), tuple(str(i) for i in range(10)),
                       "the bundled MNIST digits", "mnist")
    path = Path(path).expanduser()
    if path.is_dir():
        if _has_idx(path):
            return load_idx(path)
        if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
            return load_image_folder(path, size=size, color=color, validation=validation,
                                     seed=seed)
        raise FileNotFoundError(
            f"{path}: no MNIST IDX files (t10k-images-idx3-ubyte[.gz], "
            f"t10k-labels-idx1-ubyte[.gz], optionally the train-* pair) and no class folders "
            f"of images ({path}/<class>/*.png)")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{path}: expected a folder (IDX files, or a folder of images per "
                            "class) or an .npz file")
        return load_npz(path, validation=validation, seed=seed)
    raise FileNotFoundError(f"{path}: does not exist")
