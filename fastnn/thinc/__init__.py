"""fastnn.thinc: fastnn's kernels as a Thinc backend.

:class:`FastnnOps` is a Thinc ``Ops`` (``name = "fastnn"``) registered through Thinc's
``thinc_ops`` entry point, so after ``pip install 'fastnn[thinc]'``
``thinc.api.get_ops("fastnn")`` and ``use_ops("fastnn")`` work without importing fastnn.
It subclasses ``NumpyOps``: the methods fastnn has a kernel for run that kernel (see
:data:`ACCELERATED`), everything else, and every call outside fastnn's contract (integer or
float16 arrays, options fastnn lacks), is NumpyOps's. ``inplace=True`` returns the very
array passed, strided views included.

Thinc's optimizer never asks the model's ops for its update (it calls
``get_array_ops(weights)``, a NumpyOps), so the Adam and SGD steps have their own entry:
:func:`Adam` and :func:`SGD` (registered as ``"fastnn.Adam.v1"`` and ``"fastnn.SGD.v1"``,
through the ``thinc_optimizers`` entry point too) return a :class:`FastnnOptimizer`, Thinc's
optimizer with the step on fastnn's fused kernel.

Threads: fastnn's kernels use :func:`fastnn.set_num_threads`; NumpyOps's fallbacks run in
one thread (BLIS) or NumPy's BLAS threads.

Example
-------
>>> import numpy as np
>>> from thinc.api import Relu, Softmax, chain, use_ops
>>> from fastnn.thinc import Adam
>>> with use_ops("fastnn"):
...     model = chain(Relu(nO=8), Softmax())
>>> X = np.random.default_rng(0).random((4, 3), dtype=np.float32)
>>> Y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
>>> model.initialize(X=X, Y=Y)  # doctest: +ELLIPSIS
<thinc.model.Model object at ...>
>>> Yh, backprop = model.begin_update(X)
>>> backprop(Yh - Y).shape
(4, 3)
>>> model.finish_update(Adam(0.001))
>>> model.ops.name
'fastnn'
"""

from __future__ import annotations

try:
    import thinc.api  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised where Thinc is absent
    raise ImportError("fastnn.thinc needs Thinc (pip install 'fastnn[thinc]' or "
                      "pip install thinc)") from exc

from fastnn.thinc._ops import OPTIONAL, OPTIONAL_INSTALLED, FastnnOps
from fastnn.thinc._optimizers import SGD, Adam, FastnnOptimizer

__all__ = ["FastnnOps", "FastnnOptimizer", "Adam", "SGD", "ACCELERATED"]

#: Thinc ``Ops`` method -> the fastnn op that computes it in :class:`FastnnOps`.
ACCELERATED = {
    "gemm": "gemm",
    "affine": "gemm (trans_b=True, beta=1 on the bias)",
    "relu": "relu",
    "backprop_relu": "relu_backward",
    "sigmoid": "sigmoid",
    "backprop_sigmoid": "sigmoid_backward",
    "softmax": "softmax",
    "get_dropout_mask": "dropout (of ones, in place)",
    "adam": "adam_update (bias_correction=False)",
}
ACCELERATED.update({method: op for method, op, _ in OPTIONAL if method in OPTIONAL_INSTALLED})
