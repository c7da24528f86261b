"""Functional ops on plain arrays: the contract every backend implements.

Each function here validates its arguments once (dtype, rank, shape, layout, options),
normalises them (contiguous, aligned arrays; padding resolved to explicit pairs) and calls
the current backend's method of the same name. Nothing below this module validates user
input again, so every backend raises the same exception with the same message for the
same bad input.

Conventions
-----------
* Arrays are NumPy arrays (CuPy arrays on the ``cuda`` backend), float32 or float64; all
  float inputs of one call share a dtype. Integer outputs (argmax indices) are int64, except
  the ``which`` of the sequence ops (:func:`maxout`, :func:`reduce_max`), int32 as in Thinc.
* Ragged batches (the sequence ops) are a 2-D array of all rows, sequence after sequence,
  and ``lengths``, one integer per sequence (any integer dtype, any layout), which must be
  non-negative (positive for :func:`reduce_max`) and sum to the array's rows.
* Images are NHWC and conv weights HWIO ``(kh, kw, c_in, c_out)``; ``layout="NCHW"``
  takes NCHW images and OIHW weights instead.
* A forward op returns whatever its backward needs (argmax, LRN scale, probabilities);
  a backward op is ``name_backward(dy, <saved>, ...)``.
* ``out=`` (where offered) must be a C-contiguous, aligned, writeable array of the result's
  shape and (native) dtype; the op writes into it and returns that very object. When an op
  raises, ``out``'s contents are unspecified.
* Backends receive normalised options: ``stride``/``dilation``/``kernel`` as ``(h, w)``
  pairs and conv ``padding`` as ``((top, bottom), (left, right))``. Every size option is
  below ``2**31``, and an output too large for any machine is refused before allocation.
* Inputs may be any layout (Fortran order, strided, negative strides, misaligned, read-only)
  and either byte order: they are copied to C-contiguous, aligned, native-order arrays
  where they are not already. Outputs and in-place arrays are never copied.
* The ops returning two arrays (``max_pool2d``, ``conv2d_relu_max_pool2d``,
  ``local_response_norm``) take ``out=(y, aux)``: a tuple of two such buffers.

Aliasing
--------
``out`` never shares memory with an input, except that the element-wise ops (``relu``,
``sigmoid``, ``tanh``, their ``*_backward``, ``dropout`` and ``dropout_backward``) take an
input itself as ``out`` and then work in place, exactly. Any other overlap (``out`` a
shifted view of an input, ``gemm(a, b, out=a)``, ``conv2d(x, w, out=x)``, ...) raises
ValueError on every backend. The arrays an optimizer updates in place (``param``, ``grad``
and its state) must not share memory with each other either.

NaN and inf
-----------
Each op computes its formula in IEEE arithmetic, so NaN and inf propagate as IEEE says, on
every backend: masks multiply rather than select (``relu_backward`` of a NaN or infinite
``dy`` at an inactive unit is NaN; ``dropout`` and ``dropout_backward`` give NaN for a
dropped NaN or inf), max-pooling lets the first NaN of a window win, and a term whose
coefficient is exactly zero is absent (``weight_decay=0`` leaves an infinite parameter
infinite). Convolution padding contributes nothing (see :func:`conv2d`).

(``docs/contract.md`` in the repository gives the reasons, and where PyTorch differs.)

Empty input
-----------
A zero-sized batch, channel or feature axis gives an empty result (or a zero gradient for a
reduction such as :func:`bias_backward`) on every backend. Images with no rows or columns are
refused by the windowed ops (convolution and pooling: no window would hold a pixel), as are
convolution weights without input channels and losses without rows or classes.

Example
-------
>>> import numpy as np
>>> from fastnn import ops
>>> ops.relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Optional

import numpy as np

from fastnn import backends as _backends
from fastnn._shapes import (
    OPTION_LIMIT,
    conv_output_shape,
    hwio_shape,
    nhwc_shape,
    pair,
    pool_options,
    pool_output_shape,
    resolve_padding,
)
from fastnn.backends.base import index_out_of_range

__all__ = [
    "gemm", "linear",
    "conv2d", "conv2d_backward_data", "conv2d_backward_weights", "bias_backward",
    "conv2d_relu_max_pool2d",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "relu", "relu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "softmax", "softmax_backward", "log_softmax",
    "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "mse_loss",
    "local_response_norm", "local_response_norm_backward",
    "dropout", "dropout_backward",
    "sgd_update", "adam_update",
    "maxout", "maxout_backward", "seq2col", "seq2col_backward",
    "reduce_sum", "reduce_sum_backward", "reduce_mean", "reduce_mean_backward",
    "reduce_max", "reduce_max_backward", "gather_add",
]

ACTIVATIONS = (None, "relu", "sigmoid", "tanh")
LAYOUTS = ("NHWC", "NCHW")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = _FLOATS  # the canonical (native byte order) dtype objects
_I64 = np.dtype(np.int64)
_BASE_ACCEPTS = _backends.Backend.accepts
_MAX_ELEMENTS = 2**59  # any more float64 elements than this overflow a 64-bit byte count


# --------------------------------------------------------------------------- validation

def _dispatch(op: str, *arrays):
    """The backend for this call: the current one, checked against the array type."""
    backend = _backends.current(arrays[0] if arrays else None)
    if backend.xp is np and type(backend).accepts is _BASE_ACCEPTS:
        # NumPy backends that take any ndarray (the common case, ~0.3 us less per op)
        for a in arrays:
            if a is not None and type(a) is not np.ndarray and not backend.accepts(a):
                _wrong_array(op, backend, a)
        return backend
    for a in arrays:
        if a is not None and not backend.accepts(a):
            _wrong_array(op, backend, a)
    return backend


def _native(op: str, *args) -> bool:
    """Offer the call to the current backend's validating native entry for ``op`` (see
    ``Backend.native_entries``): True if it ran, False if there is none or it refused the
    arguments, in which case the caller's full path converts what it can and words the
    error."""
    native = _backends.current(args[0]).native_entries.get(op)
    if native is None:
        return False
    try:
        native(*args)
    except (TypeError, ValueError):
        return False
    return True


def _wrong_array(op: str, backend, a):
    raise TypeError(
        f"{op}: the {backend.name} backend takes {backend.array_kind} arrays, "
        f"got {type(a).__module__}.{type(a).__name__}"
    )


def _as_array(op: str, name: str, x):
    if type(x) is np.ndarray or hasattr(x, "__cuda_array_interface__") or isinstance(
            x, np.ndarray):
        return x
    if x is None:
        raise TypeError(f"{op}: {name} must be an array, got None")
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - report what came, whatever it was
        raise TypeError(f"{op}: {name} must be an array, got {type(x).__name__}") from exc


def _contiguous(x):
    """C-contiguous and aligned: a copy only when the input is neither."""
    if isinstance(x, np.ndarray):
        if x.flags.c_contiguous and x.flags.aligned:
            return x
        return np.require(x, requirements=("C", "A"))
    if getattr(x, "flags", None) is not None and x.flags.c_contiguous:
        return x
    import cupy  # only CuPy arrays reach here

    return cupy.ascontiguousarray(x)


def _float(op: str, name: str, x, *, ndim: Optional[int] = None, dtype=None,
           layout: Optional[str] = None, min_ndim: int = 0):
    """Validate a float array argument and return it contiguous, aligned and in native
    byte order (a copy only where it is not)."""
    if type(x) is np.ndarray:  # the common case in one pass; anything unusual goes below
        dt = x.dtype
        if ((dt is _F32 or dt is _F64) and (dtype is None or dt is dtype)
                and (ndim is None or x.ndim == ndim) and x.ndim >= min_ndim):
            flags = x.flags
            if flags.c_contiguous and flags.aligned:
                return x
    x = _as_array(op, name, x)
    if x.dtype.char not in "fd":  # float32, float64 (a char test: dtype == is slow)
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    if not x.dtype.isnative:  # '>f4' on a little-endian machine: the same numbers, swapped
        x = x.astype(_F32 if x.dtype.char == "f" else _F64)  # the canonical dtype objects
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{op}: {name} must be {dtype} like the other inputs, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        what = f"{ndim}-D {layout}" if layout else f"{ndim}-D"
        raise ValueError(f"{op}: {name} must be {what}, got shape {tuple(x.shape)}")
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: {name} must be at least {min_ndim}-D, got shape {tuple(x.shape)}")
    return _contiguous(x)


def _same_shape(op: str, name: str, x, shape) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def _out(op: str, out, shape, dtype, like, inputs=(), *, in_place=(), label: str = "out"):
    """Check a caller's output buffer; None stays None (the backend allocates).

    ``inputs`` are the call's ``(name, array)`` pairs, already validated: ``out`` may share
    memory with none of them, except that the element-wise ops take the inputs named in
    ``in_place`` themselves as ``out`` (exactly the same array: in place).
    """
    if out is None:
        return None
    if type(out) is not type(like):
        raise TypeError(f"{op}: {label} must be a {type(like).__name__}, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{op}: {label} must have dtype {dtype}, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{op}: {label} must have shape {tuple(shape)}, got {tuple(out.shape)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: {label} must be C-contiguous")
    if isinstance(out, np.ndarray) and not (out.flags.writeable and out.flags.aligned):
        raise ValueError(f"{op}: {label} must be writeable and aligned")
    for name, arr in inputs:
        if arr is not None and _overlap(out, arr):
            _refuse_overlap(op, out, name, arr, name in in_place, label)
    return out


def _out_pair(op: str, out, aux: str, shape, dtype, aux_dtype, like, inputs=()):
    """Check a caller's ``out=(y, aux)`` pair (an op returning two arrays, as NumPy's
    two-output ufuncs take ``out``); None stays None."""
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{op}: out must be a pair (y, {aux}) of arrays, as the op returns, "
                        f"got {type(out).__name__}")
    y = _out(op, out[0], shape, dtype, like, inputs, label="out[0] (y)")
    second = _out(op, out[1], shape, aux_dtype, like, inputs, label=f"out[1] ({aux})")
    if y is None or second is None:
        raise TypeError(f"{op}: out must hold two arrays (y, {aux}), got None in it")
    if _overlap(y, second):
        raise ValueError(f"{op}: out[0] (y) and out[1] ({aux}) share memory; give two arrays")
    return y, second


def _overlap(a, b) -> bool:
    """Whether two arrays' memory may overlap (a bounds check: exact for contiguous ones)."""
    if type(a) is np.ndarray:
        return type(b) is np.ndarray and np.may_share_memory(a, b)
    import cupy  # only CuPy arrays reach here

    return cupy.may_share_memory(a, b)


def _refuse_overlap(op: str, out, name: str, arr, in_place: bool, label: str = "out") -> None:
    if in_place:
        same = (out.shape == arr.shape and out.strides == arr.strides
                and _address(out) == _address(arr))
        if same:
            return
        raise ValueError(f"{op}: out overlaps {name} without being the same array: pass "
                         f"{name} itself as out to work in place, or a separate array")
    raise ValueError(f"{op}: {label} shares memory with {name}, and {op} does not work in "
                     f"place: pass a separate array as {label}")


def _address(a) -> int:
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return a.data.ptr


def _layout(op: str, layout) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"{op}: layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return layout


def _activation(op: str, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{op}: activation must be None, 'relu', 'sigmoid' or 'tanh', got {activation!r}"
        )
    return activation


def _number(op: str, name: str, value, *, low=None, high=None, low_open=False,
            high_open=False) -> float:
    if type(value) is not float and (not isinstance(value, numbers.Real)
                                     or isinstance(value, bool)):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{op}: {name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{op}: {name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{op}: {name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def _shape_tuple(op: str, name: str, shape, ndim: int) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a tuple of {ndim} ints, got {shape!r}") from None
    if len(shape) != ndim or min(shape) < 0:
        raise ValueError(f"{op}: {name} must be a tuple of {ndim} non-negative ints, got {shape!r}")
    return shape


# --------------------------------------------------------------------------- GEMM, linear

def gemm(a, b, *, trans_a: bool = False, trans_b: bool = False, alpha: float = 1.0,
         beta: float = 0.0, out=None):
    """General matrix product ``alpha * op(a) @ op(b) + beta * out``.

    Parameters
    ----------
    a, b : 2-D float arrays
        ``op(a)`` is ``a.T`` when ``trans_a`` (likewise ``b``); ``op(a)`` is (m, k), ``op(b)``
        is (k, n).
    alpha, beta : float
        Scales. With ``beta == 0`` the old contents of ``out`` are ignored (even NaN), as in
        BLAS; ``beta != 0`` needs ``out``.
    out : (m, n) array, optional

    Returns
    -------
    (m, n) array (``out`` when given).

    Example
    -------
    >>> import numpy as np
    >>> gemm(np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]), trans_b=True)
    array([[1., 3.],
           [2., 4.]])
    """
    if (type(out) is np.ndarray and type(alpha) is float and type(beta) is float
            and math.isfinite(alpha) and math.isfinite(beta)
            and _native("gemm", a, b, out, trans_a, trans_b, alpha, beta)):
        return out
    op = "gemm"
    a = _float(op, "a", a, ndim=2)
    b = _float(op, "b", b, ndim=2, dtype=a.dtype)
    m, k = a.shape[::-1] if trans_a else a.shape
    k_b, n = b.shape[::-1] if trans_b else b.shape
    if k != k_b:
        raise ValueError(
            f"{op}: inner dimensions differ: op(a) is {(m, k)} and op(b) is {(k_b, n)}"
        )
    alpha = _number(op, "alpha", alpha)
    beta = _number(op, "beta", beta)
    if beta != 0.0 and out is None:
        raise ValueError(f"{op}: beta must be 0 when out is None, got {beta!r}")
    out = _out(op, out, (m, n), a.dtype, a, (("a", a), ("b", b)))
    return _dispatch(op, a, b, out).gemm(a, b, trans_a=bool(trans_a), trans_b=bool(trans_b),
                                          alpha=alpha, beta=beta, out=out)


def linear(x, w, b=None, *, activation: Optional[str] = None, out=None):
    """Dense layer ``activation(x @ w + b)`` with the bias and activation fused.

    Parameters
    ----------
    x : (n, k) float array
    w : (k, m) float array (inputs by outputs, as the seed's ``Linear``)
    b : (m,) float array, optional
    activation : None, "relu", "sigmoid" or "tanh"

    Example
    -------
    >>> import numpy as np
    >>> linear(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3), activation="relu")
    array([[2., 2., 2.]])
    """
    if (type(out) is np.ndarray and (activation is None or type(activation) is str)
            and _native("linear", x, w, b, out, activation)):
        return out
    op = "linear"
    x = _float(op, "x", x, ndim=2)
    w = _float(op, "w", w, ndim=2, dtype=x.dtype)
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{op}: w must have {x.shape[1]} rows to match x, got shape {w.shape}")
    if b is not None:
        b = _float(op, "b", b, ndim=1, dtype=x.dtype)
        _same_shape(op, "b", b, (w.shape[1],))
    activation = _activation(op, activation)
    out = _out(op, out, (x.shape[0], w.shape[1]), x.dtype, x, (("x", x), ("w", w), ("b", b)))
    return _dispatch(op, x, w, b, out).linear(x, w, b, activation=activation, out=out)


# --------------------------------------------------------------------------- convolution

def _conv_args(op, x_shape, w_shape, stride, padding, dilation, layout):
    """``(stride, padding, dilation, y_shape)`` normalised, or the error for bad ones.

    A training loop asks the same few questions every step: answers are cached (about
    3 us each otherwise). Only options made of exact ints and strings are cached (True,
    1.0 or NumPy integers hash like 1 but must still be rejected), and errors never are.
    """
    if _plain(stride) and _plain(padding) and _plain(dilation):
        return _conv_args_cached(op, tuple(x_shape), tuple(w_shape), stride, padding, dilation,
                                 layout)
    return _conv_args_uncached(op, x_shape, w_shape, stride, padding, dilation, layout)


def _plain(value) -> bool:
    """An int, a str, or a tuple of ints or of tuples of ints (exact types)."""
    kind = type(value)
    if kind is int or kind is str:
        return True
    return kind is tuple and all(
        type(v) is int or (type(v) is tuple and all(type(u) is int for u in v)) for v in value)


def _conv_args_uncached(op, x_shape, w_shape, stride, padding, dilation, layout):
    n, h, w, c = nhwc_shape(x_shape, layout)
    kh, kw, c_in, c_out = w_hwio = hwio_shape(w_shape, layout)
    if c_in != c:
        raise ValueError(f"{op}: w must have {c} input channels to match x, got {c_in}")
    if min(kh, kw, c_in, c_out) < 1:
        raise ValueError(f"{op}: w must have a non-empty kernel and at least one input and one "
                         f"output channel, got (kh, kw, c_in, c_out) = {tuple(w_hwio)}")
    if h < 1 or w < 1:
        raise ValueError(f"{op}: the images must have at least one row and one column, got "
                         f"{(h, w)} (an empty batch, n = 0, is fine)")
    stride = pair(op, "stride", stride, minimum=1)
    dilation = pair(op, "dilation", dilation, minimum=1)
    pads = resolve_padding(op, padding, (h, w), (kh, kw), stride, dilation)
    y_shape = conv_output_shape(x_shape, w_shape, stride, pads, dilation, layout)
    _, ho, wo, _ = nhwc_shape(y_shape, layout)
    if ho < 1 or wo < 1:
        raise ValueError(
            f"{op}: the kernel (with dilation {dilation}) does not fit the padded input: "
            f"input {(h, w)}, kernel {(kh, kw)}, padding {pads}"
        )
    _output_fits(op, n, ho, wo, c_out)
    return stride, pads, dilation, y_shape


def _output_fits(op, n, ho, wo, c):
    """Refuse outputs no machine could hold (huge padding): their sizes would overflow the
    kernels' 64-bit index arithmetic before any allocation failed."""
    if max(n, 1) * ho * wo * max(c, 1) >= _MAX_ELEMENTS:
        raise ValueError(f"{op}: the output would be {ho}x{wo} pixels per channel and image, "
                         f"more than any machine can hold: is the padding far too large?")


_conv_args_cached = functools.lru_cache(maxsize=256)(_conv_args_uncached)


def _conv_forward_args(op, x, w, b, stride, padding, dilation, layout):
    """A forward convolution's arrays checked against each other, its options normalised,
    and its output shape: ``(x, w, b, stride, padding, dilation, y_shape)``."""
    x = _float(op, "x", x, ndim=4, layout=layout)
    w = _float(op, "w", w, ndim=4, dtype=x.dtype, layout="HWIO" if layout == "NHWC" else "OIHW")
    stride, pads, dilation, y_shape = _conv_args(op, x.shape, w.shape, stride, padding, dilation,
                                                 layout)
    if b is not None:
        b = _float(op, "b", b, ndim=1, dtype=x.dtype)
        _same_shape(op, "b", b, (hwio_shape(w.shape, layout)[3],))
    return x, w, b, stride, pads, dilation, y_shape


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, layout: str = "NHWC",
           activation: Optional[str] = None, out=None):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    x : (n, h, w, c_in) float array, or (n, c_in, h, w) with ``layout="NCHW"``
    w : (kh, kw, c_in, c_out) weights (HWIO), or (c_out, c_in, kh, kw) (OIHW) with NCHW
    b : (c_out,) bias, optional
    stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, ((top, bottom), (left, right)), "same" or "valid"
    activation : None, "relu", "sigmoid" or "tanh", fused after the bias

    Notes
    -----
    Padding contributes nothing. The reference multiplies zero-padded inputs; the cpu
    backend (like oneDNN) skips taps that fall in the padding where it can, so with
    infinite or NaN weights the two can differ at the border (``0 * inf`` is NaN). The
    same holds for the backward passes.

    Example
    -------
    >>> import numpy as np
    >>> conv2d(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1)), padding="same")[0, :, :, 0]
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])
    """
    op = "conv2d"
    layout = _layout(op, layout)
    x, w, b, stride, pads, dilation, y_shape = _conv_forward_args(op, x, w, b, stride, padding,
                                                                  dilation, layout)
    activation = _activation(op, activation)
    out = _out(op, out, y_shape, x.dtype, x, (("x", x), ("w", w), ("b", b)))
    return _dispatch(op, x, w, b, out).conv2d(
        x, w, b, stride=stride, padding=pads, dilation=dilation, layout=layout,
        activation=activation, out=out)


def conv2d_relu_max_pool2d(x, w, b=None, *, stride=1, padding=0, dilation=1,
                           layout: str = "NHWC", out=None):
    """``max_pool2d(conv2d(x, w, b, activation="relu"), kernel=2)`` as one op.

    Returns ``(y, argmax)`` exactly as that composition does: ``y`` the pooled output and
    ``argmax`` flat indices into the convolution's output (whose shape ``conv2d`` gives),
    so :func:`max_pool2d_backward` takes them unchanged. The cpu backend fuses the two
    for short patches (a network's first layer): each pair of output rows is pooled while
    it is in L1, and the full-size output is never written. Elsewhere it composes them.
    The pool is 2x2 with stride 2 and no padding; the output must be at least 2x2.
    ``out=(y, argmax)`` (float of ``x``'s dtype and int64, the pooled shape) receives the
    result, as with :func:`max_pool2d`.

    Example
    -------
    >>> import numpy as np
    >>> y, idx = conv2d_relu_max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), np.ones((1, 1, 1, 1)))
    >>> y[0, :, :, 0], idx.ravel()
    (array([[ 5.,  7.],
           [13., 15.]]), array([ 5,  7, 13, 15]))
    """
    op = "conv2d_relu_max_pool2d"
    layout = _layout(op, layout)
    x, w, b, stride, pads, dilation, y_shape = _conv_forward_args(op, x, w, b, stride, padding,
                                                                  dilation, layout)
    _, ho, wo, _ = nhwc_shape(y_shape, layout)
    if ho < 2 or wo < 2:
        raise ValueError(f"{op}: the 2x2 pool does not fit the convolution's {(ho, wo)} output")
    backend = _dispatch(op, x, w, b)
    if out is not None:
        n, _, _, c = nhwc_shape(y_shape, layout)
        pooled = (n, ho // 2, wo // 2, c) if layout == "NHWC" else (n, c, ho // 2, wo // 2)
        out = _out_pair(op, out, "argmax", pooled, x.dtype, np.dtype(np.int64), x,
                        (("x", x), ("w", w), ("b", b)))
    return backend.conv2d_relu_max_pool2d(x, w, b, stride=stride, padding=pads,
                                          dilation=dilation, layout=layout, out=out)


def conv2d_backward_data(dy, w, x_shape, *, stride=1, padding=0, dilation=1,
                         layout: str = "NHWC", out=None):
    """Gradient of :func:`conv2d` with respect to its input ``x`` (of shape ``x_shape``).

    Example
    -------
    >>> import numpy as np
    >>> dx = conv2d_backward_data(np.ones((1, 2, 2, 1)), np.ones((2, 2, 1, 1)), (1, 3, 3, 1))
    >>> dx[0, :, :, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    op = "conv2d_backward_data"
    layout = _layout(op, layout)
    dy = _float(op, "dy", dy, ndim=4, layout=layout)
    w = _float(op, "w", w, ndim=4, dtype=dy.dtype, layout="HWIO" if layout == "NHWC" else "OIHW")
    x_shape = _shape_tuple(op, "x_shape", x_shape, 4)
    stride, pads, dilation, y_shape = _conv_args(op, x_shape, w.shape, stride, padding,
                                                 dilation, layout)
    _same_shape(op, "dy", dy, y_shape)
    out = _out(op, out, x_shape, dy.dtype, dy, (("dy", dy), ("w", w)))
    return _dispatch(op, dy, w, out).conv2d_backward_data(
        dy, w, x_shape, stride=stride, padding=pads, dilation=dilation, layout=layout, out=out)


def conv2d_backward_weights(dy, x, w_shape, *, stride=1, padding=0, dilation=1,
                            layout: str = "NHWC", out=None):
    """Gradient of :func:`conv2d` with respect to its weights (of shape ``w_shape``).

    Example
    -------
    >>> import numpy as np
    >>> conv2d_backward_weights(np.ones((1, 2, 2, 1)), np.ones((1, 3, 3, 1)), (2, 2, 1, 1)).ravel()
    array([4., 4., 4., 4.])
    """
    op = "conv2d_backward_weights"
    layout = _layout(op, layout)
    dy = _float(op, "dy", dy, ndim=4, layout=layout)
    x = _float(op, "x", x, ndim=4, dtype=dy.dtype, layout=layout)
    w_shape = _shape_tuple(op, "w_shape", w_shape, 4)
    stride, pads, dilation, y_shape = _conv_args(op, x.shape, w_shape, stride, padding,
                                                 dilation, layout)
    _same_shape(op, "dy", dy, y_shape)
    out = _out(op, out, w_shape, dy.dtype, dy, (("dy", dy), ("x", x)))
    return _dispatch(op, dy, x, out).conv2d_backward_weights(
        dy, x, w_shape, stride=stride, padding=pads, dilation=dilation, layout=layout, out=out)


def bias_backward(dy, *, layout: str = "NHWC", out=None):
    """Gradient of a per-channel bias: ``dy`` summed over every axis but the channel axis.

    The channel axis is the last one, except for 4-D ``dy`` with ``layout="NCHW"`` (axis 1).

    Example
    -------
    >>> import numpy as np
    >>> bias_backward(np.ones((4, 3)))
    array([4., 4., 4.])
    """
    op = "bias_backward"
    layout = _layout(op, layout)
    dy = _float(op, "dy", dy, min_ndim=1)
    channels = dy.shape[1] if (layout == "NCHW" and dy.ndim == 4) else dy.shape[-1]
    out = _out(op, out, (channels,), dy.dtype, dy, (("dy", dy),))
    return _dispatch(op, dy, out).bias_backward(dy, layout=layout, out=out)


# --------------------------------------------------------------------------- pooling

def _pool_args(op, x_shape, kernel, stride, padding, layout):
    n, h, w, c = nhwc_shape(x_shape, layout)
    kernel, stride, padding = pool_options(op, kernel, stride, padding)
    if h < 1 or w < 1:
        raise ValueError(f"{op}: the images must have at least one row and one column, got "
                         f"{(h, w)} (an empty batch, n = 0, is fine)")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding must be at most half the kernel {kernel}, got {padding}")
    y_shape = pool_output_shape(x_shape, kernel, stride, padding, layout)
    _, ho, wo, _ = nhwc_shape(y_shape, layout)
    if ho < 1 or wo < 1:
        raise ValueError(f"{op}: kernel {kernel} does not fit the padded input {(h, w)} "
                         f"(padding {padding})")
    _output_fits(op, n, ho, wo, c)
    return kernel, stride, padding, y_shape


def max_pool2d(x, *, kernel, stride=None, padding=0, layout: str = "NHWC", out=None):
    """Max pooling. Returns ``(y, argmax)``.

    ``argmax`` (int64, shape of ``y``) holds, for each output, the flat index into
    ``x.reshape(-1)`` of the maximum; ties go to the first element in window order.
    ``stride`` defaults to ``kernel``; padding (at most half the kernel) never wins.
    ``out=(y, argmax)``: two C-contiguous arrays of the output shape (``x``'s dtype and
    int64) that receive the result, and are returned (as NumPy's two-output ufuncs take
    ``out``); layers pass their own buffers this way, batch after batch.

    Example
    -------
    >>> import numpy as np
    >>> y, idx = max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), kernel=2)
    >>> y[0, :, :, 0], idx.ravel()
    (array([[ 5.,  7.],
           [13., 15.]]), array([ 5,  7, 13, 15]))
    """
    op = "max_pool2d"
    layout = _layout(op, layout)
    x = _float(op, "x", x, ndim=4, layout=layout)
    kernel, stride, padding, y_shape = _pool_args(op, x.shape, kernel, stride, padding, layout)
    backend = _dispatch(op, x)
    out = _out_pair(op, out, "argmax", y_shape, x.dtype, np.dtype(np.int64), x, (("x", x),))
    return backend.max_pool2d(x, kernel=kernel, stride=stride, padding=padding, layout=layout,
                              out=out)


def max_pool2d_backward(dy, argmax, x_shape, *, out=None):
    """Gradient of :func:`max_pool2d`: scatter-add ``dy`` to ``argmax`` in an ``x_shape`` array.

    Example
    -------
    >>> import numpy as np
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), np.array([[[[3]]]]), (1, 2, 2, 1)).ravel()
    array([0., 0., 0., 1.])
    """
    op = "max_pool2d_backward"
    dy = _float(op, "dy", dy, min_ndim=1)
    argmax = _as_array(op, "argmax", argmax)
    if argmax.dtype != np.int64:
        raise TypeError(f"{op}: argmax must be int64, got {argmax.dtype}")
    _same_shape(op, "argmax", argmax, dy.shape)
    argmax = _contiguous(argmax)
    x_shape = _shape_tuple(op, "x_shape", x_shape, dy.ndim)
    if dy.shape[0] != x_shape[0]:
        raise ValueError(f"{op}: dy and x_shape must have the same batch, got {dy.shape[0]} "
                         f"and {x_shape[0]}")
    out = _out(op, out, x_shape, dy.dtype, dy, (("dy", dy), ("argmax", argmax)))
    return _dispatch(op, dy, argmax, out).max_pool2d_backward(dy, argmax, x_shape, out=out)


def avg_pool2d(x, *, kernel, stride=None, padding=0, layout: str = "NHWC",
               count_include_pad: bool = True, out=None):
    """Average pooling over ``kernel`` windows.

    With ``count_include_pad`` (the default, as PyTorch) padded zeros count in the divisor;
    otherwise each window is divided by its number of real pixels.

    Example
    -------
    >>> import numpy as np
    >>> avg_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), kernel=2)[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    op = "avg_pool2d"
    layout = _layout(op, layout)
    x = _float(op, "x", x, ndim=4, layout=layout)
    kernel, stride, padding, y_shape = _pool_args(op, x.shape, kernel, stride, padding, layout)
    out = _out(op, out, y_shape, x.dtype, x, (("x", x),))
    return _dispatch(op, x, out).avg_pool2d(x, kernel=kernel, stride=stride, padding=padding,
                                            layout=layout,
                                            count_include_pad=bool(count_include_pad), out=out)


def avg_pool2d_backward(dy, x_shape, *, kernel, stride=None, padding=0, layout: str = "NHWC",
                        count_include_pad: bool = True, out=None):
    """Gradient of :func:`avg_pool2d` with respect to its input (of shape ``x_shape``).

    Example
    -------
    >>> import numpy as np
    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 2, 2, 1), kernel=2).ravel()
    array([0.25, 0.25, 0.25, 0.25])
    """
    op = "avg_pool2d_backward"
    layout = _layout(op, layout)
    dy = _float(op, "dy", dy, ndim=4, layout=layout)
    x_shape = _shape_tuple(op, "x_shape", x_shape, 4)
    kernel, stride, padding, y_shape = _pool_args(op, x_shape, kernel, stride, padding, layout)
    _same_shape(op, "dy", dy, y_shape)
    out = _out(op, out, x_shape, dy.dtype, dy, (("dy", dy),))
    return _dispatch(op, dy, out).avg_pool2d_backward(
        dy, x_shape, kernel=kernel, stride=stride, padding=padding, layout=layout,
        count_include_pad=bool(count_include_pad), out=out)


# --------------------------------------------------------------------------- activations

def _unary(op: str, method: str, x, out):
    x = _float(op, "x", x)
    out = _out(op, out, x.shape, x.dtype, x, (("x", x),), in_place=("x",))
    return getattr(_dispatch(op, x, out), method)(x, out=out)


def _unary_backward(op: str, dy, y, out):
    dy = _float(op, "dy", dy)
    y = _float(op, "y", y, dtype=dy.dtype)
    _same_shape(op, "y", y, dy.shape)
    out = _out(op, out, dy.shape, dy.dtype, dy, (("dy", dy), ("y", y)), in_place=("dy", "y"))
    return getattr(_dispatch(op, dy, y, out), op)(dy, y, out=out)


def relu(x, *, out=None):
    """``max(x, 0)`` elementwise; NaN stays NaN.

    >>> import numpy as np
    >>> relu(np.array([-1.0, 0.5]))
    array([0. , 0.5])
    """
    return _unary("relu", "relu", x, out)


def relu_backward(dy, y, *, out=None):
    """Gradient of :func:`relu` from its output ``y``: ``dy * (y > 0)``.

    >>> import numpy as np
    >>> relu_backward(np.array([3.0, 3.0]), np.array([0.0, 2.0]))
    array([0., 3.])
    """
    return _unary_backward("relu_backward", dy, y, out)


def sigmoid(x, *, out=None):
    """Logistic function ``1 / (1 + exp(-x))`` elementwise.

    >>> import numpy as np
    >>> float(sigmoid(np.array([7.0]))[0].round(5))
    0.99909
    """
    return _unary("sigmoid", "sigmoid", x, out)


def sigmoid_backward(dy, y, *, out=None):
    """Gradient of :func:`sigmoid` from its output ``y``: ``dy * y * (1 - y)``.

    >>> import numpy as np
    >>> sigmoid_backward(np.array([1.0]), np.array([0.5]))
    array([0.25])
    """
    return _unary_backward("sigmoid_backward", dy, y, out)


def tanh(x, *, out=None):
    """Hyperbolic tangent elementwise.

    >>> import numpy as np
    >>> tanh(np.array([0.0]))
    array([0.])
    """
    return _unary("tanh", "tanh", x, out)


def tanh_backward(dy, y, *, out=None):
    """Gradient of :func:`tanh` from its output ``y``: ``dy * (1 - y**2)``.

    >>> import numpy as np
    >>> tanh_backward(np.array([2.0]), np.array([0.5]))
    array([1.5])
    """
    return _unary_backward("tanh_backward", dy, y, out)


def softmax(x, *, out=None):
    """Softmax over the last axis (max-subtracted, so large logits do not overflow).

    >>> import numpy as np
    >>> softmax(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """
    op = "softmax"
    x = _float(op, "x", x, min_ndim=1)
    out = _out(op, out, x.shape, x.dtype, x, (("x", x),))
    return _dispatch(op, x, out).softmax(x, out=out)


def softmax_backward(dy, y, *, out=None):
    """Gradient of :func:`softmax` (last axis) from its output: ``y * (dy - sum(dy * y))``.

    >>> import numpy as np
    >>> softmax_backward(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    array([[ 0.25, -0.25]])
    """
    op = "softmax_backward"
    dy = _float(op, "dy", dy, min_ndim=1)
    y = _float(op, "y", y, dtype=dy.dtype)
    _same_shape(op, "y", y, dy.shape)
    out = _out(op, out, dy.shape, dy.dtype, dy, (("dy", dy), ("y", y)))
    return _dispatch(op, dy, y, out).softmax_backward(dy, y, out=out)


def log_softmax(x, *, out=None):
    """Log of :func:`softmax` over the last axis, computed stably.

    >>> import numpy as np
    >>> log_softmax(np.array([[0.0, 0.0]])).round(4)
    array([[-0.6931, -0.6931]])
    """
    op = "log_softmax"
    x = _float(op, "x", x, min_ndim=1)
    out = _out(op, out, x.shape, x.dtype, x, (("x", x),))
    return _dispatch(op, x, out).log_softmax(x, out=out)


# --------------------------------------------------------------------------- losses

def _labels(op: str, labels, logits):
    """Class indices (int64, validated range) or float targets of the logits' shape."""
    labels = _as_array(op, "labels", labels)
    n, classes = logits.shape
    if labels.dtype.kind in "iu":
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"{op}: integer labels must have shape ({n},), got "
                             f"{tuple(labels.shape)}")
        labels = _contiguous(labels.astype(np.int64, copy=False))
        if n and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            raise ValueError(f"{op}: labels must be in [0, {classes}), got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return labels
    if labels.dtype in _FLOATS:
        labels = _float(op, "labels", labels, dtype=logits.dtype)
        _same_shape(op, "labels", labels, logits.shape)
        return labels
    raise TypeError(f"{op}: labels must be integer class indices or float targets, got "
                    f"{labels.dtype}")


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against ``labels``. Returns ``(loss, probs)``.

    Parameters
    ----------
    logits : (n, classes) float array, n >= 1
    labels : (n,) integer class indices, or (n, classes) float targets (one-hot or soft)

    Returns
    -------
    loss : 0-d array of the logits' dtype, ``-sum(labels * log_softmax(logits)) / n``
    probs : softmax(logits), which :func:`softmax_cross_entropy_backward` takes

    Example
    -------
    >>> import numpy as np
    >>> loss, probs = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> float(loss.round(4))
    1.3863
    """
    op = "softmax_cross_entropy"
    logits = _float(op, "logits", logits, ndim=2)
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"{op}: logits must have at least one row and one class, got shape "
                         f"{tuple(logits.shape)}")
    labels = _labels(op, labels, logits)
    return _dispatch(op, logits, labels).softmax_cross_entropy(logits, labels)


def softmax_cross_entropy_backward(dloss, probs, labels, *, out=None):
    """Gradient of :func:`softmax_cross_entropy` with respect to the logits.

    ``dloss * (probs * sum(labels, axis=1) - labels) / n``; for class indices or one-hot
    labels that is ``dloss * (probs - onehot) / n``.

    Example
    -------
    >>> import numpy as np
    >>> softmax_cross_entropy_backward(1.0, np.full((1, 2), 0.5), np.array([1]))
    array([[ 0.5, -0.5]])
    """
    op = "softmax_cross_entropy_backward"
    probs = _float(op, "probs", probs, ndim=2)
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"{op}: probs must have at least one row and one class, got shape "
                         f"{probs.shape}")
    dloss = _number(op, "dloss", float(dloss) if getattr(dloss, "ndim", 1) == 0 else dloss)
    labels = _labels(op, labels, probs)
    out = _out(op, out, probs.shape, probs.dtype, probs, (("probs", probs), ("labels", labels)))
    return _dispatch(op, probs, labels, out).softmax_cross_entropy_backward(
        dloss, probs, labels, out=out)


def mse_loss(prediction, target):
    """Squared error summed over features and averaged over the batch: ``(loss, gradient)``.

    ``loss = sum(diff**2) / len(diff)`` and ``gradient = 2 * diff / len(diff)`` with
    ``diff = prediction - target``: the seed framework's gradient, with the loss it is the
    exact gradient of (for one output column this is the plain mean squared error).

    Example
    -------
    >>> import numpy as np
    >>> loss, grad = mse_loss(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
    >>> float(loss), grad.ravel()
    (5.0, array([1., 3.]))
    """
    op = "mse_loss"
    prediction = _float(op, "prediction", prediction, min_ndim=1)
    target = _float(op, "target", target, dtype=prediction.dtype)
    _same_shape(op, "target", target, prediction.shape)
    if prediction.shape[0] == 0:
        raise ValueError(f"{op}: prediction must have at least one row, got shape "
                         f"{tuple(prediction.shape)}")
    return _dispatch(op, prediction, target).mse_loss(prediction, target)


# --------------------------------------------------------------------------- normalisation

def _lrn_options(op, depth_radius, bias, alpha, beta):
    if not isinstance(depth_radius, int) or isinstance(depth_radius, bool) or depth_radius < 0:
        raise ValueError(f"{op}: depth_radius must be a non-negative int, got {depth_radius!r}")
    if depth_radius >= OPTION_LIMIT:
        raise ValueError(f"{op}: depth_radius must be < 2**31, got {depth_radius!r}")
    return (depth_radius, _number(op, "bias", bias, low=0.0, low_open=True),
            _number(op, "alpha", alpha, low=0.0), _number(op, "beta", beta, low=0.0))


def local_response_norm(x, *, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1e-4,
                        beta: float = 0.75, layout: str = "NHWC", out=None):
    """Local response normalisation across channels, with TensorFlow's semantics.

    ``scale[c] = bias + alpha * sum(x[c']**2 for |c' - c| <= depth_radius)`` and
    ``y = x * scale**-beta``. Returns ``(y, scale)``; ``out=(y, scale)`` (two C-contiguous
    arrays of ``x``'s shape and dtype) receives them.

    Example
    -------
    >>> import numpy as np
    >>> y, scale = local_response_norm(np.ones((1, 1, 1, 3)), depth_radius=1, alpha=1.0, beta=1.0)
    >>> y.ravel()
    array([0.33333333, 0.25      , 0.33333333])
    """
    op = "local_response_norm"
    layout = _layout(op, layout)
    x = _float(op, "x", x, ndim=4, layout=layout)
    depth_radius, bias, alpha, beta = _lrn_options(op, depth_radius, bias, alpha, beta)
    backend = _dispatch(op, x)
    out = _out_pair(op, out, "scale", x.shape, x.dtype, x.dtype, x, (("x", x),))
    return backend.local_response_norm(x, depth_radius=depth_radius, bias=bias, alpha=alpha,
                                       beta=beta, layout=layout, out=out)


def local_response_norm_backward(dy, x, y, scale, *, depth_radius: int = 5, bias: float = 1.0,
                                 alpha: float = 1e-4, beta: float = 0.75,
                                 layout: str = "NHWC", out=None):
    """Gradient of :func:`local_response_norm` from its input, output and saved scale.

    ``dx[c] = dy[c] * scale[c]**-beta
    - 2 * alpha * beta * x[c] * sum(dy[j] * y[j] / scale[j] for |j - c| <= depth_radius)``

    Example
    -------
    >>> import numpy as np
    >>> x = np.ones((1, 1, 1, 2))
    >>> y, s = local_response_norm(x, depth_radius=0, alpha=1.0, beta=1.0)
    >>> local_response_norm_backward(np.ones_like(x), x, y, s, depth_radius=0, alpha=1.0,
    ...                              beta=1.0).ravel()
    array([0., 0.])
    """
    op = "local_response_norm_backward"
    layout = _layout(op, layout)
    dy = _float(op, "dy", dy, ndim=4, layout=layout)
    x = _float(op, "x", x, ndim=4, dtype=dy.dtype, layout=layout)
    y = _float(op, "y", y, ndim=4, dtype=dy.dtype, layout=layout)
    scale = _float(op, "scale", scale, ndim=4, dtype=dy.dtype, layout=layout)
    for name, arr in (("x", x), ("y", y), ("scale", scale)):
        _same_shape(op, name, arr, dy.shape)
    depth_radius, bias, alpha, beta = _lrn_options(op, depth_radius, bias, alpha, beta)
    out = _out(op, out, dy.shape, dy.dtype, dy,
               (("dy", dy), ("x", x), ("y", y), ("scale", scale)))
    return _dispatch(op, dy, x, y, scale, out).local_response_norm_backward(
        dy, x, y, scale, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta,
        layout=layout, out=out)


# --------------------------------------------------------------------------- dropout

def _seed(op: str, seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"{op}: seed must be an int in [0, 2**64), got {seed!r}")
    return int(seed)


def dropout(x, *, keep_prob: float, seed: int, out=None):
    """Inverted dropout: keep each element with probability ``keep_prob`` and scale it by
    ``1 / keep_prob``. Returns ``(y, mask)`` with ``mask`` a bool array (True = kept).

    The mask is a pure function of ``(seed, element index)`` (a counter-based hash), so every
    backend and every thread count draws the same mask for the same seed.

    Example
    -------
    >>> import numpy as np
    >>> y, mask = dropout(np.ones(4), keep_prob=1.0, seed=0)
    >>> y, mask
    (array([1., 1., 1., 1.]), array([ True,  True,  True,  True]))
    """
    op = "dropout"
    x = _float(op, "x", x)
    keep_prob = _number(op, "keep_prob", keep_prob, low=0.0, high=1.0, low_open=True)
    seed = _seed(op, seed)
    out = _out(op, out, x.shape, x.dtype, x, (("x", x),), in_place=("x",))
    return _dispatch(op, x, out).dropout(x, keep_prob=keep_prob, seed=seed, out=out)


def dropout_backward(dy, mask, *, keep_prob: float, out=None):
    """Gradient of :func:`dropout`: ``dy * mask / keep_prob``.

    >>> import numpy as np
    >>> dropout_backward(np.ones(2), np.array([True, False]), keep_prob=0.5)
    array([2., 0.])
    """
    op = "dropout_backward"
    dy = _float(op, "dy", dy)
    mask = _as_array(op, "mask", mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be bool, got {mask.dtype}")
    _same_shape(op, "mask", mask, dy.shape)
    mask = _contiguous(mask)
    keep_prob = _number(op, "keep_prob", keep_prob, low=0.0, high=1.0, low_open=True)
    out = _out(op, out, dy.shape, dy.dtype, dy, (("dy", dy), ("mask", mask)), in_place=("dy",))
    return _dispatch(op, dy, mask, out).dropout_backward(dy, mask, keep_prob=keep_prob, out=out)


# --------------------------------------------------------------------------- optimizers

def _param_and_grad(op: str, param, grad, *states):
    """In-place updates need the caller's own arrays: no silent copies, no two sharing
    memory (each is written)."""
    if grad is None:
        raise TypeError(f"{op}: grad must be a float32 or float64 array, got None")
    arrays = (("param", param), ("grad", grad)) + tuple(s for s in states if s[1] is not None)
    for name, arr in arrays:
        if type(arr) is np.ndarray and arr.dtype is param.dtype and (
                param.dtype is _F32 or param.dtype is _F64) and arr.shape == param.shape:
            flags = arr.flags  # the common case in one look
            if flags.c_contiguous and flags.writeable and flags.aligned:
                continue
        if not hasattr(arr, "dtype") or arr.dtype not in _FLOATS:
            raise TypeError(f"{op}: {name} must be a float32 or float64 array, got "
                            f"{getattr(arr, 'dtype', type(arr).__name__)}")
        if arr.dtype != param.dtype:
            raise TypeError(f"{op}: {name} must have the dtype of param ({param.dtype}), got "
                            f"{arr.dtype}")
        if tuple(arr.shape) != tuple(param.shape):
            raise ValueError(f"{op}: {name} must have shape {tuple(param.shape)}, got "
                             f"{tuple(arr.shape)}")
        if not arr.flags.c_contiguous or (isinstance(arr, np.ndarray)
                                          and not (arr.flags.writeable and arr.flags.aligned)):
            raise ValueError(f"{op}: {name} must be C-contiguous, aligned and writeable "
                             "(it is updated in place)")
    for i, (name, arr) in enumerate(arrays):
        for other, arr2 in arrays[i + 1:]:
            if _overlap(arr, arr2):
                raise ValueError(f"{op}: {name} and {other} share memory; each is updated in "
                                 f"place, so each needs its own array")


def sgd_update(param, grad, velocity=None, *, lr: float, momentum: float = 0.0,
               weight_decay: float = 0.0, nesterov: bool = False) -> None:
    """One SGD step, in place: ``param``, ``velocity`` updated, ``grad`` zeroed.

    ``g = grad + weight_decay * param``; with momentum ``velocity = momentum * velocity + g``
    and the step is ``velocity`` (``g + momentum * velocity`` with ``nesterov``); then
    ``param -= lr * step``. ``velocity`` is needed exactly when ``momentum != 0``.

    Example
    -------
    >>> import numpy as np
    >>> p, g = np.ones(2), np.full(2, 0.5)
    >>> sgd_update(p, g, lr=0.1)
    >>> p, g
    (array([0.95, 0.95]), array([0., 0.]))
    """
    op = "sgd_update"
    lr = _number(op, "lr", lr, low=0.0)
    momentum = _number(op, "momentum", momentum, low=0.0)
    weight_decay = _number(op, "weight_decay", weight_decay, low=0.0)
    if (momentum != 0.0) != (velocity is not None):
        given = "None" if velocity is None else "given"
        raise ValueError(f"{op}: velocity must be given exactly when momentum != 0 "
                         f"(momentum={momentum!r}, velocity={given})")
    _param_and_grad(op, param, grad, ("velocity", velocity))
    _dispatch(op, param, grad, velocity).sgd_update(
        param, grad, velocity, lr=lr, momentum=momentum, weight_decay=weight_decay,
        nesterov=bool(nesterov))


def adam_update(param, grad, m, v, *, step: int, lr: float = 1e-3, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                bias_correction: bool = True, grad_scale: float = 1.0,
                param_decay: float = 0.0, average=None, average_rate: float = 0.0) -> None:
    """One Adam step (Kingma and Ba), in place: ``param``, ``m``, ``v`` updated, ``grad`` zeroed.

    ``g = grad_scale * grad + weight_decay * param`` (L2, as TFLearn's regularizer adds it;
    ``grad_scale`` is for a clip-by-norm factor the caller computed);
    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g**2``;
    ``param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)``.
    ``step`` counts updates from 1. With ``bias_correction=False`` the two divisions by
    ``1 - beta**step`` are left out (``param -= lr * m / (sqrt(v) + eps)``), for callers
    that fold the correction into ``lr`` themselves, as Thinc's optimizer does.

    Two more parts of an optimizer's step come in the same pass over memory:
    ``param_decay`` is decoupled weight decay, ``param -= param_decay * param`` after the
    step (the factor is the caller's, for example ``lr * decay`` as Thinc applies its
    ``L2_is_weight_decay``); ``average``, an array like ``param``, is an exponential moving
    average of the parameter, moved towards the new ``param`` by ``average_rate``:
    ``average -= average_rate * (average - param)`` (``1 - decay`` for an average that
    keeps ``decay`` of itself each step).

    Example
    -------
    >>> import numpy as np
    >>> p, g, m, v = np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1)
    >>> adam_update(p, g, m, v, step=1, lr=0.1)
    >>> p.round(6)
    array([-0.1])
    >>> p, g, m, v, avg = np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1), np.zeros(1)
    >>> adam_update(p, g, m, v, step=1, lr=0.1, average=avg, average_rate=0.5)
    >>> avg.round(6)  # halfway from 0 to the new param
    array([-0.05])
    """
    op = "adam_update"
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 1:
        raise ValueError(f"{op}: step must be an int >= 1, got {step!r}")
    lr = _number(op, "lr", lr, low=0.0)
    beta1 = _number(op, "beta1", beta1, low=0.0, high=1.0, high_open=True)
    beta2 = _number(op, "beta2", beta2, low=0.0, high=1.0, high_open=True)
    eps = _number(op, "eps", eps, low=0.0)
    weight_decay = _number(op, "weight_decay", weight_decay, low=0.0)
    grad_scale = _number(op, "grad_scale", grad_scale, low=0.0)
    param_decay = _number(op, "param_decay", param_decay, low=0.0, high=1.0)
    average_rate = _number(op, "average_rate", average_rate, low=0.0, high=1.0)
    if average is None and average_rate != 0.0:
        raise ValueError(f"{op}: average_rate={average_rate!r} needs an average array "
                         "(pass average=, an array like param)")
    _param_and_grad(op, param, grad, ("m", m), ("v", v), ("average", average))
    _dispatch(op, param, grad, m, v, average).adam_update(
        param, grad, m, v, step=int(step), lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, bias_correction=bool(bias_correction),
        grad_scale=grad_scale, param_decay=param_decay,
        average=average if average_rate != 0.0 else None, average_rate=average_rate)


# --------------------------------------------------------------------------- sequences

# The hot paths of Thinc and spaCy's models (Thinc's ``Ops.maxout``, ``seq2col``,
# ``reduce_*``, ``gather_add`` and their ``backprop_*``), with Thinc 9's semantics. Index
# arrays a backward op scatters to (``which``) or a gather reads (``indices``) are checked
# by each backend while it works, as max_pool2d_backward's argmax (a pass over them up front
# would cost as much as these ops): the same ValueError, naming the first bad value.

def _size_option(op: str, name: str, value, *, minimum: int) -> int:
    """An int option (Python or NumPy integer) in ``[minimum, 2**31)``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    if value >= OPTION_LIMIT:
        raise ValueError(f"{op}: {name} must be < 2**31, got {value!r}")
    return value


def _int_array(op: str, name: str, a, *, ndim: int):
    """An integer array argument of rank ``ndim`` (any integer dtype, not yet converted;
    an empty list is taken as integers)."""
    given = a
    a = _as_array(op, name, a)
    if a.size == 0 and not hasattr(given, "dtype"):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must be an integer array, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {tuple(a.shape)}")
    return a


def _lengths(op: str, lengths, rows: Optional[int], *, positive: bool = False,
             what: str = "x"):
    """``(lengths, total)``: the sequence lengths as a C-contiguous int64 array, each >= 0
    (> 0 with ``positive``), and their sum, which must be ``rows`` (the rows of ``what``)
    unless ``rows`` is None."""
    if not (type(lengths) is np.ndarray and lengths.ndim == 1 and lengths.dtype.kind in "iu"):
        lengths = _int_array(op, "lengths", lengths, ndim=1)
    if lengths.size <= 64:  # a few sequences: Python ints are quicker than NumPy reductions
        values = lengths.tolist()
        low, total = (min(values), sum(values)) if values else (0, 0)
    else:
        low = int(lengths.min())
        if lengths.dtype.itemsize <= 4 and lengths.size < 2**32:
            total = int(lengths.sum())  # int64 sums of 32-bit values cannot wrap here
        elif int(lengths.max()) < _MAX_ELEMENTS // lengths.size:
            total = int(lengths.sum())
        else:  # the int64 sum could wrap: Python ints (only absurd lengths are so large)
            total = sum(int(v) for v in lengths.tolist())
    if lengths.size and low < (1 if positive else 0):
        rule = "> 0 (a maximum over no rows is undefined)" if positive else ">= 0"
        raise ValueError(f"{op}: lengths must all be {rule}, got {low}")
    if rows is not None and total != rows:
        raise ValueError(f"{op}: lengths must sum to the rows of {what} ({rows}), got {total}")
    if total >= _MAX_ELEMENTS:
        raise ValueError(f"{op}: lengths sum to {total}, more rows than any machine can hold")
    if type(lengths) is np.ndarray and lengths.dtype is _I64 and lengths.flags.c_contiguous \
            and lengths.flags.aligned:
        return lengths, total
    return _contiguous(lengths.astype(np.int64, copy=False)), total


def _seq_lengths(op: str, lengths, like, what: str):
    """seq2col's lengths: None is one sequence of all of ``like``'s rows."""
    rows = like.shape[0]
    if lengths is not None:
        return _lengths(op, lengths, rows, what=what)[0]
    if isinstance(like, np.ndarray):
        return np.array([rows], dtype=np.int64)
    import cupy  # only CuPy arrays reach here

    return cupy.array([rows], dtype=cupy.int64)


def _which(op: str, which, shape):
    which = _as_array(op, "which", which)
    if which.dtype != np.int32:
        raise TypeError(f"{op}: which must be int32, got {which.dtype}")
    _same_shape(op, "which", which, shape)
    return _contiguous(which.astype(np.int32, copy=False))


def _fits(op: str, shape) -> None:
    """Refuse outputs no machine could hold (before any allocation overflows)."""
    if math.prod(max(int(s), 1) for s in shape) >= _MAX_ELEMENTS:
        raise ValueError(f"{op}: the output would have shape {tuple(shape)}, more than any "
                         f"machine can hold")


def maxout(x):
    """Maxout: the largest of each unit's ``p`` pieces. Returns ``(y, which)``.

    ``x`` is ``(n, o, p)`` with ``p >= 1``; ``y`` is ``x.max(axis=-1)`` and ``which``
    (int32, ``(n, o)``) the piece that won: the first maximum, and the first NaN wins, as
    ``np.argmax`` (Thinc's ``Ops.maxout``).

    Example
    -------
    >>> import numpy as np
    >>> y, which = maxout(np.array([[[1.0, 3.0, 2.0], [5.0, 4.0, 5.0]]]))
    >>> y, which
    (array([[3., 5.]]), array([[1, 0]], dtype=int32))
    """
    op = "maxout"
    x = _float(op, "x", x, ndim=3)
    if x.shape[2] < 1:
        raise ValueError(f"{op}: x must have at least one piece (a last axis of size >= 1), "
                         f"got shape {tuple(x.shape)}")
    if x.shape[2] >= OPTION_LIMIT:
        raise ValueError(f"{op}: x must have fewer than 2**31 pieces (which is int32), got "
                         f"shape {tuple(x.shape)}")
    return _dispatch(op, x).maxout(x)


def maxout_backward(dy, which, pieces: int, *, out=None):
    """Gradient of :func:`maxout`: ``dy`` at each unit's winning piece, zero elsewhere.

    Returns ``(n, o, pieces)``. Every ``which`` must lie in ``[0, pieces)`` (ValueError
    naming the first that does not; ``out`` is then partly written).

    Example
    -------
    >>> import numpy as np
    >>> maxout_backward(np.array([[2.0, 7.0]]), np.array([[1, 0]], dtype=np.int32), 3)
    array([[[0., 2., 0.],
            [7., 0., 0.]]])
    """
    op = "maxout_backward"
    dy = _float(op, "dy", dy, ndim=2)
    which = _which(op, which, dy.shape)
    pieces = _size_option(op, "pieces", pieces, minimum=1)
    shape = (dy.shape[0], dy.shape[1], pieces)
    _fits(op, shape)
    out = _out(op, out, shape, dy.dtype, dy, (("dy", dy), ("which", which)))
    return _dispatch(op, dy, which, out).maxout_backward(dy, which, pieces, out=out)


def seq2col(x, *, nw: int, lengths=None, out=None):
    """Each row with its ``nw`` neighbours on either side: ``(n, i) -> (n, i * (2*nw + 1))``.

    Row ``j`` of the result is rows ``j - nw .. j + nw`` of ``x`` side by side, zeros for
    those outside ``j``'s sequence: windows never cross the boundaries ``lengths`` sets
    (None: one sequence of all rows). Thinc's ``Ops.seq2col``.

    Example
    -------
    >>> import numpy as np
    >>> seq2col(np.array([[1.0], [2.0], [3.0]]), nw=1, lengths=np.array([2, 1]))
    array([[0., 1., 2.],
           [1., 2., 0.],
           [0., 3., 0.]])
    """
    op = "seq2col"
    x = _float(op, "x", x, ndim=2)
    nw = _size_option(op, "nw", nw, minimum=0)
    lengths = _seq_lengths(op, lengths, x, "x")
    shape = (x.shape[0], x.shape[1] * (2 * nw + 1))
    _fits(op, shape)
    out = _out(op, out, shape, x.dtype, x, (("x", x),))
    return _dispatch(op, x, lengths, out).seq2col(x, nw=nw, lengths=lengths, out=out)


def seq2col_backward(dy, *, nw: int, lengths=None, out=None):
    """Gradient of :func:`seq2col`: each row gathers its copies from the windows it is in.

    ``dy`` is ``(n, i * (2*nw + 1))``; returns ``(n, i)``.

    Example
    -------
    >>> import numpy as np
    >>> seq2col_backward(np.ones((3, 3)), nw=1, lengths=np.array([2, 1]))
    array([[2.],
           [2.],
           [1.]])
    """
    op = "seq2col_backward"
    dy = _float(op, "dy", dy, ndim=2)
    nw = _size_option(op, "nw", nw, minimum=0)
    width = 2 * nw + 1
    if dy.shape[1] % width:
        raise ValueError(f"{op}: dy must have a multiple of 2 * nw + 1 = {width} columns, got "
                         f"shape {tuple(dy.shape)}")
    lengths = _seq_lengths(op, lengths, dy, "dy")
    shape = (dy.shape[0], dy.shape[1] // width)
    out = _out(op, out, shape, dy.dtype, dy, (("dy", dy),))
    return _dispatch(op, dy, lengths, out).seq2col_backward(dy, nw=nw, lengths=lengths, out=out)


def _reduce_args(op: str, x, lengths, out, *, positive: bool = False):
    x = _float(op, "x", x, ndim=2)
    lengths, _ = _lengths(op, lengths, x.shape[0], positive=positive)
    out = _out(op, out, (lengths.shape[0], x.shape[1]), x.dtype, x,
               (("x", x), ("lengths", lengths)))
    return x, lengths, out


def _reduce_backward_args(op: str, dy, lengths, *, positive: bool = False):
    dy = _float(op, "dy", dy, ndim=2)
    lengths, total = _lengths(op, lengths, None, positive=positive)
    if lengths.shape[0] != dy.shape[0]:
        raise ValueError(f"{op}: lengths must have one entry per row of dy ({dy.shape[0]}), "
                         f"got shape {tuple(lengths.shape)}")
    _fits(op, (total, dy.shape[1]))
    return dy, lengths, (total, dy.shape[1])


def reduce_sum(x, lengths, *, out=None):
    """Sum of each sequence's rows: ``x`` ``(t, o)`` and ``lengths`` ``(b,)`` -> ``(b, o)``.

    A sequence of length 0 sums to zeros (Thinc's ``Ops.reduce_sum``).

    Example
    -------
    >>> import numpy as np
    >>> reduce_sum(np.arange(6.0).reshape(3, 2), np.array([2, 0, 1]))
    array([[2., 4.],
           [0., 0.],
           [4., 5.]])
    """
    op = "reduce_sum"
    x, lengths, out = _reduce_args(op, x, lengths, out)
    return _dispatch(op, x, lengths, out).reduce_sum(x, lengths, out=out)


def reduce_sum_backward(dy, lengths, *, out=None):
    """Gradient of :func:`reduce_sum`: each sequence's row of ``dy`` repeated over its rows.

    Example
    -------
    >>> import numpy as np
    >>> reduce_sum_backward(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2, 1]))
    array([[1., 2.],
           [1., 2.],
           [3., 4.]])
    """
    op = "reduce_sum_backward"
    dy, lengths, shape = _reduce_backward_args(op, dy, lengths)
    out = _out(op, out, shape, dy.dtype, dy, (("dy", dy), ("lengths", lengths)))
    return _dispatch(op, dy, lengths, out).reduce_sum_backward(dy, lengths, out=out)


def reduce_mean(x, lengths, *, out=None):
    """Mean of each sequence's rows (the sum divided by the length); zeros for a sequence
    of length 0, as Thinc's ``Ops.reduce_mean``.

    Example
    -------
    >>> import numpy as np
    >>> reduce_mean(np.arange(6.0).reshape(3, 2), np.array([2, 0, 1]))
    array([[1., 2.],
           [0., 0.],
           [4., 5.]])
    """
    op = "reduce_mean"
    x, lengths, out = _reduce_args(op, x, lengths, out)
    return _dispatch(op, x, lengths, out).reduce_mean(x, lengths, out=out)


def reduce_mean_backward(dy, lengths, *, out=None):
    """Gradient of :func:`reduce_mean`: ``dy[b] / lengths[b]`` over each sequence's rows.

    Example
    -------
    >>> import numpy as np
    >>> reduce_mean_backward(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2, 1]))
    array([[0.5, 1. ],
           [0.5, 1. ],
           [3. , 4. ]])
    """
    op = "reduce_mean_backward"
    dy, lengths, shape = _reduce_backward_args(op, dy, lengths)
    out = _out(op, out, shape, dy.dtype, dy, (("dy", dy), ("lengths", lengths)))
    return _dispatch(op, dy, lengths, out).reduce_mean_backward(dy, lengths, out=out)


def reduce_max(x, lengths):
    """Maximum of each sequence's rows. Returns ``(y, which)``, ``which`` (int32, ``(b, o)``)
    the winning row within its sequence: the first maximum, and the first NaN wins, as
    ``np.argmax``. Every length must be positive (Thinc's ``Ops.reduce_max``).

    Example
    -------
    >>> import numpy as np
    >>> y, which = reduce_max(np.array([[1.0, 5.0], [3.0, 2.0], [4.0, 0.0]]), np.array([2, 1]))
    >>> y, which
    (array([[3., 5.],
           [4., 0.]]), array([[1, 0],
           [0, 0]], dtype=int32))
    """
    op = "reduce_max"
    x = _float(op, "x", x, ndim=2)
    lengths, total = _lengths(op, lengths, x.shape[0], positive=True)
    if total >= OPTION_LIMIT and int(lengths.max()) >= OPTION_LIMIT:
        raise ValueError(f"{op}: lengths must be < 2**31 (which is int32), got "
                         f"{int(lengths.max())}")
    return _dispatch(op, x, lengths).reduce_max(x, lengths)


def reduce_max_backward(dy, which, lengths, *, out=None):
    """Gradient of :func:`reduce_max`: ``dy[b, o]`` at row ``which[b, o]`` of sequence ``b``,
    zero elsewhere. Each ``which[b]`` must lie in ``[0, lengths[b])`` (ValueError naming the
    first that does not; ``out`` is then partly written).

    Example
    -------
    >>> import numpy as np
    >>> which = np.array([[1, 0], [0, 0]], dtype=np.int32)
    >>> reduce_max_backward(np.array([[1.0, 2.0], [3.0, 4.0]]), which, np.array([2, 1]))
    array([[0., 2.],
           [1., 0.],
           [3., 4.]])
    """
    op = "reduce_max_backward"
    dy, lengths, shape = _reduce_backward_args(op, dy, lengths, positive=True)
    which = _which(op, which, dy.shape)
    out = _out(op, out, shape, dy.dtype, dy,
               (("dy", dy), ("which", which), ("lengths", lengths)))
    return _dispatch(op, dy, which, lengths, out).reduce_max_backward(dy, which, lengths,
                                                                      out=out)


_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.uint32), np.dtype(np.int64))


def gather_add(table, indices, *, out=None):
    """Sum of table rows: ``out[b] = sum(table[indices[b, k]] for k)`` (Thinc's
    ``Ops.gather_add``, the hash embedding's lookup).

    ``table`` is ``(t, o)``, ``indices`` ``(b, k)`` of any integer dtype (int32, uint32 and
    int64 are used as they are, others converted to int64); every index must lie in
    ``[0, t)`` (ValueError naming the first that does not; ``out`` is then partly written).

    Example
    -------
    >>> import numpy as np
    >>> gather_add(np.array([[1.0, 2.0], [10.0, 20.0]]), np.array([[0, 1], [1, 1]]))
    array([[11., 22.],
           [20., 40.]])
    """
    op = "gather_add"
    table = _float(op, "table", table, ndim=2)
    indices = _int_array(op, "indices", indices, ndim=2)
    if indices.dtype not in _INDEX_DTYPES or not indices.dtype.isnative:
        if indices.dtype.kind == "u" and indices.size and int(indices.max()) >= 2**63:
            # beyond int64: the first index out of range (as every backend words it)
            raise index_out_of_range(op, "indices", indices, table.shape[0])
        indices = indices.astype(np.int64)
    indices = _contiguous(indices)
    out = _out(op, out, (indices.shape[0], table.shape[1]), table.dtype, table,
               (("table", table), ("indices", indices)))
    return _dispatch(op, table, indices, out).gather_add(table, indices, out=out)


def _signature_table() -> dict[str, Any]:
    """Name -> function, for the contract tests and for backends to check themselves."""
    return {name: globals()[name] for name in __all__}
