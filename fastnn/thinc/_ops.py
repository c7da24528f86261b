"""FastnnOps: Thinc's ``Ops`` on fastnn's kernels, NumpyOps for everything else.

Each override has two paths. The fast one takes the common case, float32 or float64
NumPy arrays that are C-contiguous and aligned in native byte order (writeable where the
call works in place), checks the shapes Thinc's callers could get wrong and calls the
fastnn backend's method directly: :mod:`fastnn.ops` would check the same things again, at
about 2 us a call, which is more than NumPy takes for a small array. The other path hands
anything else to :mod:`fastnn.ops`, which copies strided, misaligned or byte-swapped
inputs; an in-place call on such an array computes into a new array and writes the result
back into the very object Thinc passed. What fastnn has no kernel for, or cannot take at
all (integer or float16 arrays, ``mod_rate`` in ``adam``, shapes Thinc itself refuses),
goes to :class:`~thinc.api.NumpyOps` unchanged, so Thinc's own errors and results stay.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

import numpy as np
from thinc.api import NumpyOps, Ops

from fastnn import backends
from fastnn import ops as fops

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_REFUSED = (TypeError, ValueError)
_NATIVE = ("relu", "relu_backward", "sigmoid", "sigmoid_backward")


def _plain(x) -> bool:
    """Whether fastnn's kernels take ``x`` as it is (see the module docstring)."""
    if type(x) is not np.ndarray:
        return False
    dt = x.dtype
    if dt is not _F32 and dt is not _F64:
        return False
    flags = x.flags
    return flags.c_contiguous and flags.aligned


def _writeable(x) -> bool:
    return _plain(x) and x.flags.writeable


def _floats(*arrays) -> bool:
    """All NumPy float32/float64 arrays of one dtype (any layout): fastnn's general path."""
    char = getattr(getattr(arrays[0], "dtype", None), "char", None)
    return char in ("f", "d") and all(
        isinstance(a, np.ndarray) and a.dtype.char == char for a in arrays)


def _last_axis(x, axis) -> bool:
    return x.ndim >= 1 and (axis == -1 or axis == x.ndim - 1)


def _on_last_axis(fn, arrays, axis):
    """``fn`` (a last-axis op) applied along ``axis``: each array moved so that ``axis`` is
    last (a contiguous copy), the result moved back (another copy)."""
    moved = [np.ascontiguousarray(np.moveaxis(a, axis, -1)) for a in arrays]
    return np.ascontiguousarray(np.moveaxis(fn(*moved), -1, axis))


def _into(target, result):
    """Thinc's ``inplace=True``: the result in the very object passed."""
    if result is not target:
        target[...] = result
    return target


class FastnnOps(NumpyOps):
    """Thinc's ``Ops`` computed by fastnn's kernels (``get_ops("fastnn")``).

    A :class:`~thinc.api.NumpyOps` whose methods with a fastnn kernel run that kernel,
    and fall back to NumpyOps where a call is outside fastnn's contract (integer or float16
    arrays, options fastnn does not have). ``backend`` names the fastnn backend
    (``"cpu"``, ``"numba"``, ``"reference"``); by default, fastnn's current backend when the
    ops are created. :data:`fastnn.thinc.ACCELERATED` lists the methods it replaces.

    Example
    -------
    >>> import numpy as np
    >>> from thinc.api import get_ops
    >>> ops = get_ops("fastnn")
    >>> type(ops).__name__, ops.name
    ('FastnnOps', 'fastnn')
    >>> X = np.array([[-1.0, 2.0]], dtype="f")
    >>> ops.relu(X, inplace=True) is X, X
    (True, array([[0., 2.]], dtype=float32))
    """

    name = "fastnn"
    xp = np

    def __init__(self, device_type="cpu", device_id=-1, *, use_blis: bool = True,
                 backend: Optional[str] = None) -> None:
        super().__init__(device_type, device_id, use_blis=use_blis)
        self._set_backend(backends.get(backend) if backend is not None else backends.current())

    def _set_backend(self, backend):
        if backend.xp is not np:
            raise ValueError(f"FastnnOps computes on NumPy arrays; the {backend.name} backend "
                             "takes other arrays (use Thinc's CupyOps on a GPU)")
        self._be = backend
        for op in _NATIVE:  # the validating native entry points, where the backend has them
            setattr(self, f"_k_{op}", backend.native_entries.get(op))

    def __getstate__(self):  # the backend object holds a native module: keep its name
        state = dict(self.__dict__)
        state["_be"] = self._be.name
        for op in _NATIVE:
            del state[f"_k_{op}"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._set_backend(backends.get(state["_be"]))

    def _general(self, fn, *args, **kwargs):
        """``fastnn.ops`` on this instance's backend: inputs of any layout (copied)."""
        with backends.use(self._be.name):
            return fn(*args, **kwargs)

    # ------------------------------------------------------------------ dense

    def gemm(self, x, y, out=None, trans1=False, trans2=False):
        if (_plain(x) and _plain(y) and x.dtype is y.dtype and x.ndim == 2 and y.ndim == 2
                and (out is None or (_writeable(out) and out.dtype is x.dtype))):
            m, k = (x.shape[1], x.shape[0]) if trans1 else x.shape
            k2, n = (y.shape[1], y.shape[0]) if trans2 else y.shape
            if k == k2 and (out is None or (out.shape == (m, n)
                                            and not np.may_share_memory(out, x)
                                            and not np.may_share_memory(out, y))):
                return self._be.gemm(x, y, trans_a=bool(trans1), trans_b=bool(trans2),
                                     alpha=1.0, beta=0.0, out=out)
        if _floats(x, y) and x.ndim == 2 and y.ndim == 2 and (out is None or _floats(x, out)):
            try:
                result = self._general(fops.gemm, x, y, trans_a=bool(trans1),
                                       trans_b=bool(trans2))
            except _REFUSED:
                pass
            else:
                return result if out is None else _into(out, result)
        return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)

    def affine(self, X, W, b):
        """``X @ W.T + b``: one GEMM on Thinc's (out, in) weights (``trans_b``, no copy),
        its output initialised with the bias (``beta=1``)."""
        if (_plain(X) and _plain(W) and X.dtype is W.dtype and X.ndim == 2 and W.ndim == 2
                and X.shape[1] == W.shape[1] and isinstance(b, np.ndarray)
                and b.shape in ((W.shape[0],), (1, W.shape[0]))):
            Y = np.empty((X.shape[0], W.shape[0]), dtype=X.dtype)
            Y[...] = b
            return self._be.gemm(X, W, trans_a=False, trans_b=True, alpha=1.0, beta=1.0, out=Y)
        return super().affine(X, W, b)

    # ------------------------------------------------------------------ activations

    def _elementwise(self, op, args, target):
        """fastnn's element-wise ``op`` of ``args`` into ``target`` (one of them, in place;
        a new array when None) on the backend's method (plain arrays) or fastnn.ops (copies
        of any others), or None where fastnn does not take the arrays. (Each method first
        tries the backend's validating native entry point, which is cheaper still: it
        refuses anything but plain arrays of one dtype and shape before it writes.)"""
        x = args[0]
        if (all(_plain(a) and a.dtype is x.dtype and a.shape == x.shape for a in args)
                and (target is None or target.flags.writeable)):
            return getattr(self._be, op)(*args, out=target)
        if _floats(*args) and all(a.shape == x.shape for a in args):
            result = self._general(getattr(fops, op), *args)
            return result if target is None else _into(target, result)
        return None

    def _activation(self, kernel, op: str, args: tuple, target):
        """An element-wise activation (or its backward) of ``args`` into ``target`` (an input,
        in place) or a new array: the binding ``kernel`` directly on plain NumPy arrays, else
        fastnn.ops' general path; None when the call is outside fastnn's contract (the caller
        then asks NumpyOps)."""
        x = args[-1] if target is None else target
        if kernel is not None and type(x) is np.ndarray:
            out = target if target is not None else np.empty(x.shape, x.dtype)
            try:
                kernel(*args, out)
                return out
            except _REFUSED:
                pass
        return self._elementwise(op, args, target)

    def relu(self, X, inplace=False):
        result = self._activation(self._k_relu, "relu", (X,), X if inplace else None)
        return super().relu(X, inplace=inplace) if result is None else result

    def backprop_relu(self, dY, Y, inplace=False):
        result = self._activation(self._k_relu_backward, "relu_backward", (dY, Y),
                                  dY if inplace else None)
        return super().backprop_relu(dY, Y, inplace=inplace) if result is None else result

    def sigmoid(self, X, *, inplace=False):
        """The logistic function. Thinc clips ``X`` to [-20, 20] first; fastnn's kernel is
        stable without it, so the two differ by at most 2.1e-9 (the value at -20)."""
        result = self._activation(self._k_sigmoid, "sigmoid", (X,), X if inplace else None)
        return super().sigmoid(X, inplace=inplace) if result is None else result

    def backprop_sigmoid(self, dY, Y, *, inplace=False):
        # Thinc's in-place form writes the gradient into Y, not dY.
        result = self._activation(self._k_sigmoid_backward, "sigmoid_backward", (dY, Y),
                                  Y if inplace else None)
        return super().backprop_sigmoid(dY, Y, inplace=inplace) if result is None else result

    def softmax(self, x, *, inplace=False, axis=-1, temperature=1.0):
        """Softmax along ``axis``; the last axis runs the kernel on ``x`` itself, another
        one on a transposed copy."""
        if not (_floats(x) and x.ndim >= 1 and -x.ndim <= axis < x.ndim):
            return super().softmax(x, inplace=inplace, axis=axis, temperature=temperature)
        logits = x if temperature == 1.0 else x / temperature
        if _plain(logits) and _last_axis(logits, axis):
            result = self._be.softmax(logits)
        elif _last_axis(logits, axis):
            result = self._general(fops.softmax, logits)
        else:
            result = _on_last_axis(lambda a: self._general(fops.softmax, a), [logits], axis)
        return _into(x, result) if inplace else result

    # ------------------------------------------------------------------ dropout

    def get_dropout_mask(self, shape, drop):
        """Thinc's mask (0 or ``1 / (1 - drop)``, float32) as fastnn's dropout of ones, in
        place; the seed comes from NumPy's global generator, so ``fix_random_seed`` fixes
        the masks."""
        if drop is None or drop <= 0.0 or drop >= 1.0:
            return super().get_dropout_mask(shape, drop)
        mask = np.ones(shape, dtype=_F32)
        # NumPy's global generator on purpose: Thinc's fix_random_seed seeds that one.
        seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))  # noqa: NPY002
        self._be.dropout(mask, keep_prob=1.0 - float(drop), seed=seed, out=mask)
        return mask

    # ------------------------------------------------------------------ optimizer

    def adam(self, weights, gradient, mom1, mom2, beta1, beta2, eps,
             learn_rate, mod_rate=1.0):
        """Thinc's Adam step (``learn_rate`` already holds the bias correction) as
        ``fastnn.ops.adam_update(..., bias_correction=False)``; ``gradient`` is zeroed, as
        by NumpyOps."""
        if mod_rate == 1.0 and _floats(weights, gradient, mom1, mom2):
            try:
                self._general(fops.adam_update, weights, gradient, mom1, mom2, step=1,
                              lr=learn_rate, beta1=beta1, beta2=beta2, eps=eps,
                              bias_correction=False)
            except _REFUSED:
                pass  # shapes, layouts or options fastnn refuses: NumpyOps says what is wrong
            else:
                return weights, gradient, mom1, mom2
        return super().adam(weights, gradient, mom1, mom2, beta1, beta2, eps, learn_rate,
                            mod_rate)


# ---------------------------------------------------------------------- optional kernels
#
# Thinc methods whose fastnn op may or may not exist in this version of fastnn. Each row:
# the Thinc method, the fastnn.ops function, and the op's arguments made from Thinc's (in
# the op's parameter order; those its signature makes keyword-only go by keyword, in the
# same order). Resolved once, when the class is created: a missing op leaves NumpyOps's
# method. Index arrays come back as Thinc's int32 (its Ints2d, which NumpyOps's kernels
# take), and go to fastnn as they are, or as int64 if it refuses those. What fastnn refuses
# (or reports as bad input) goes to NumpyOps, which raises Thinc's own error.

def _lengths(seq, lengths):
    return np.array([seq.shape[0]], dtype=np.int32) if lengths is None else lengths


OPTIONAL = [
    ("maxout", "maxout", lambda X: (X,)),
    ("backprop_maxout", "maxout_backward", lambda dY, which, P: (dY, which, P)),
    ("seq2col", "seq2col", lambda seq, nW, *, lengths=None: (seq, nW, _lengths(seq, lengths))),
    ("backprop_seq2col", "seq2col_backward",
     lambda dY, nW, *, lengths=None: (dY, nW, _lengths(dY, lengths))),
    ("reduce_sum", "reduce_sum", lambda X, lengths: (X, lengths)),
    ("reduce_mean", "reduce_mean", lambda X, lengths: (X, lengths)),
    ("reduce_max", "reduce_max", lambda X, lengths: (X, lengths)),
    ("backprop_reduce_sum", "reduce_sum_backward", lambda d_sums, lengths: (d_sums, lengths)),
    ("backprop_reduce_mean", "reduce_mean_backward",
     lambda d_means, lengths: (d_means, lengths)),
    ("backprop_reduce_max", "reduce_max_backward",
     lambda d_maxes, which, lengths: (d_maxes, which, lengths)),
    ("gather_add", "gather_add", lambda table, indices: (table, indices)),
]


def _caller(fn: Callable) -> Callable:
    """Call ``fn`` with values in its parameter order: positional parameters first, then
    its keyword-only ones by name, in declaration order."""
    params = list(inspect.signature(fn).parameters.values())
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    keywords = [p.name for p in params if p.kind is p.KEYWORD_ONLY]

    def call(*values):
        return fn(*values[:positional], **dict(zip(keywords, values[positional:])))
    return call


def _as_int(a, dtype):
    if isinstance(a, np.ndarray) and a.dtype.kind in "iu" and a.dtype != dtype:
        return a.astype(dtype)
    return a


def _int32(a):
    return _as_int(a, np.int32)


def _int64(a):
    return _as_int(a, np.int64)


def _thinc_result(result):
    return tuple(map(_int32, result)) if isinstance(result, tuple) else result


def _optional_method(method: str, op: Callable, arguments: Callable) -> Callable:
    call = _caller(op)
    fallback = getattr(NumpyOps, method)

    def thinc_method(self, *args, **kwargs):
        floats = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        if floats and _floats(*floats):
            values = arguments(*args, **kwargs)
            try:
                with backends.use(self._be.name):
                    try:
                        return _thinc_result(call(*values))
                    except TypeError:
                        return _thinc_result(call(*map(_int64, values)))
            except (TypeError, ValueError, IndexError):
                pass
        return fallback(self, *map(_int32, args),
                        **{k: _int32(v) for k, v in kwargs.items()})

    thinc_method.__name__ = method
    thinc_method.__qualname__ = f"FastnnOps.{method}"
    thinc_method.__signature__ = inspect.signature(getattr(Ops, method))
    thinc_method.__doc__ = f"Thinc's ``{method}`` on ``fastnn.ops.{op.__name__}``."
    return thinc_method


def install_optional(cls, namespace=fops) -> list[str]:
    """Give ``cls`` a method for each row of :data:`OPTIONAL` whose op ``namespace`` has;
    returns the Thinc methods so replaced."""
    installed = []
    for method, op_name, arguments in OPTIONAL:
        op = getattr(namespace, op_name, None)
        if op is not None:
            setattr(cls, method, _optional_method(method, op, arguments))
            installed.append(method)
    return installed


OPTIONAL_INSTALLED = install_optional(FastnnOps)
