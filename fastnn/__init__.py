"""fastnn: compiled-kernel neural networks with a NumPy-compatible layer API.

* :mod:`fastnn.ops` - functional ops on plain arrays (the drop-in backend API);
* :mod:`fastnn.backends` - the registry: ``reference`` (NumPy), ``cpu`` (C++), ``numba``,
  ``cuda``;
* :mod:`fastnn.nn` - Parameter, layers, Sequential, losses, optimizers, Learner;
* :mod:`fastnn.data` - datasets: the bundled MNIST digits and your own data (arrays,
  ``.npz``, MNIST-format IDX folders, a folder of images per class) as ``Dataset``
  objects of NHWC float32 images and int64 labels, split for training and validation;
* :mod:`fastnn.distributed` - data-parallel training over MPI ranks (``fastnn[mpi]``):
  ``Learner.fit(..., distributed=fastnn.distributed.init())``, ``mpirun -n N fastnn train``;
* :mod:`fastnn.models` - the seed convnet and its learner (what ``fastnn train`` trains);
* :mod:`fastnn.selftest` - checks that this install computes correctly: every backend
  against the reference (``fastnn selftest``, ``fastnn.selftest.run()``);
* :mod:`fastnn.cli` - the ``fastnn`` command (``info``, ``train``, ``evaluate``,
  ``predict``, ``summary``, ``examples``, ``bench``, ``selftest``);
* :func:`fastnn.release_memory` - free the workspaces the native kernels cache.

>>> import numpy as np, fastnn
>>> fastnn.ops.relu(np.array([-2.0, 3.0]))
array([0., 3.])
"""

from __future__ import annotations

from fastnn import _compat, backends, ops
from fastnn._memory import release_memory
from fastnn._threads import (
    flush_denormals,
    get_flush_denormals,
    get_num_threads,
    set_flush_denormals,
    set_num_threads,
)
from fastnn._version import __version__

__all__ = ["backends", "ops", "get_num_threads", "set_num_threads", "get_flush_denormals",
           "set_flush_denormals", "flush_denormals", "release_memory", "__version__"]

_LAZY = ("nn", "data", "distributed", "models", "selftest")

_compat.warn_if_shadowed()  # a source checkout without fastnn._C hiding an install


def __getattr__(name):
    # fastnn.nn, fastnn.data, fastnn.distributed, fastnn.models and fastnn.selftest load
    # on first use, keeping `import fastnn` light.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"fastnn.{name}")
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    # The lazily loaded subpackages are part of the module's contents too.
    return sorted(set(globals()) | set(_LAZY))
