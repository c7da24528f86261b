"""fastnn.data: datasets for training - the bundled MNIST digits and your own data.

Every reader returns a :class:`Dataset`: a ``train`` and a ``validation`` :class:`Split`
of ``(x, y)`` arrays (NHWC float32 images in [0, 1], int64 labels) and the ``classes``
names.

* :func:`load` - any of the below by path; ``load()`` is the bundled MNIST digits;
* :func:`from_arrays` - NumPy images and labels (uint8 0-255 or float 0-1; (n, h, w) or
  (n, h, w, 1 or 3)), split into training and validation by :func:`split`;
* :func:`load_npz` - an ``.npz`` holding ``x_train, y_train, x_test, y_test`` (or ``x, y``);
* :func:`load_idx` - a folder of MNIST-format IDX files under their standard names
  (MNIST, Fashion-MNIST and KMNIST as downloaded, gzipped or not);
* :func:`load_image_folder` - ``root/<class>/*.png|jpg|jpeg|bmp|gif``, resized (28x28 by
  default) and made grayscale (default) or RGB; needs Pillow: ``pip install
  'fastnn[images]'``;
* :func:`read_image` - one image file as an array;
* :func:`load_mnist` - the MNIST loader returning plain tuples, with dtype/layout options;
* :func:`read_idx`, :func:`write_idx` - the IDX file format.

Readers raise :class:`DataError` (a ``ValueError``) or ``FileNotFoundError`` with one line
naming the file or folder. ``fastnn train --data PATH`` takes what :func:`load` takes.

>>> from fastnn import data
>>> dataset = data.load()                    # the bundled digits
>>> print(dataset)
8000 training and 2000 validation images, 28x28x1, 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
>>> (x, y), (x_val, y_val) = dataset
>>> x.shape, y.dtype
((8000, 28, 28, 1), dtype('int64'))
>>> from fastnn.data import load_mnist
>>> (x, y), (x_eval, y_eval) = load_mnist()
>>> x.shape, x_eval.shape
((8000, 28, 28, 1), (2000, 28, 28, 1))
"""

from __future__ import annotations

from fastnn.data.datasets import (
    IMAGE_SUFFIXES,
    DataError,
    Dataset,
    MissingDependency,
    Split,
    from_arrays,
    load,
    load_idx,
    load_image_folder,
    load_npz,
    read_image,
    split,
)
from fastnn.data.idx import read_idx, write_idx
from fastnn.data.loader import BUNDLED_DIR, BUNDLED_MD5, load_mnist

__all__ = ["Dataset", "Split", "DataError", "MissingDependency", "load", "from_arrays",
           "split", "load_npz", "load_idx", "load_image_folder", "read_image",
           "IMAGE_SUFFIXES", "load_mnist", "read_idx", "write_idx", "BUNDLED_DIR",
           "BUNDLED_MD5"]
