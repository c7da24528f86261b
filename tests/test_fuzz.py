"""Property-based fuzz of every op of :mod:`fastnn.ops` on every available backend.

Hypothesis draws a call (shapes with zero-sized dims, 1x1 images, kernels larger than the
input, padding, strides, dilation; float16, int, bool, complex, object and big-endian
dtypes; Fortran-order, strided, negative-stride, misaligned and read-only arrays; NaN, inf
and huge values; ``out=`` buffers that are wrong or alias an input). The reference backend
answers first; every other backend must then return the same result within the parity
tolerance (NaN and inf in the same places) or raise the same exception type with the very
same message.

A few hundred calls run by default. ``FASTNN_FUZZ_EXAMPLES=N`` runs N per op and backend
(a nightly-style run: ``FASTNN_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py``), and
``FASTNN_FUZZ_SEED`` changes the draw (the default run is derandomized, so CI repeats it).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from support import BACKEND_PARAMS, assert_close, to_backend, to_numpy

from fastnn import backends, ops
from fastnn._shapes import conv_output_size

EXAMPLES = int(os.environ.get("FASTNN_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("FASTNN_FUZZ_SEED")

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

FLOATS = ("float32", "float64")
ODD_DTYPES = ("float16", "int32", "int64", "bool", "complex64", "object", ">f4", ">f8")
LAYOUTS = ("C", "C", "C", "F", "strided", "negative", "misaligned", "readonly")
FILLS = ("normal", "normal", "normal", "nan", "inf", "huge", "zeros")


# --------------------------------------------------------------------------- arrays

@dataclass(frozen=True)
class Arr:
    """A recipe for one array argument, rebuilt afresh for every backend."""

    shape: tuple
    dtype: str = "float32"
    layout: str = "C"
    fill: str = "normal"
    seed: int = 0
    values: Any = None  # explicit values (labels, masks, argmax), already of their dtype


def _values(spec: Arr) -> np.ndarray:
    if spec.values is not None:
        return np.array(spec.values).reshape(spec.shape)  # a copy: in-place ops write it
    rng = np.random.default_rng(spec.seed)
    x = np.asarray(rng.standard_normal(spec.shape))
    if spec.fill == "zeros":
        x[...] = 0.0
    elif spec.fill == "huge":
        x *= 1e30 if spec.dtype in ("float32", ">f4", "float16") else 1e300
    elif spec.fill in ("nan", "inf") and x.size:
        hit = rng.random(spec.shape) < 0.2
        special = np.nan if spec.fill == "nan" else np.where(rng.random(spec.shape) < 0.5,
                                                             np.inf, -np.inf)
        x = np.where(hit, special, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.dtype in ("int32", "int64"):
            return np.nan_to_num(x * 3).astype(spec.dtype)
        return x.astype(spec.dtype)


@dataclass(frozen=True)
class Forward:
    """An argument the reference forward computes at build time (LRN's y and scale)."""

    op: str
    spec: Arr
    options: tuple
    index: int


def _forward(spec: Forward):
    with backends.use("reference"), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return getattr(ops, spec.op)(build(spec.spec), **dict(spec.options))[spec.index]
        except (TypeError, ValueError):
            return np.zeros(spec.spec.shape, _dt(spec.spec))


def build(spec):
    """The argument a spec describes (non-specs pass through, tuples element-wise)."""
    if isinstance(spec, tuple) and not isinstance(spec, Arr):
        return tuple(build(s) for s in spec)
    if isinstance(spec, Forward):
        return _forward(spec)
    if not isinstance(spec, Arr):
        return spec
    x = _values(spec)
    if spec.layout == "F":
        return np.asfortranarray(x)
    if spec.layout == "strided" and x.ndim:
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if spec.layout == "negative" and x.ndim:
        return np.ascontiguousarray(x[::-1])[::-1]
    if spec.layout == "misaligned" and x.dtype != object and x.dtype.itemsize > 1:
        raw = np.zeros(x.nbytes + 1, np.uint8)[1:]
        view = raw.view(x.dtype).reshape(x.shape)
        view[...] = x
        return view
    if spec.layout == "readonly":
        x.setflags(write=False)
    return x


# --------------------------------------------------------------------------- strategies

@dataclass(frozen=True)
class Case:
    op: str
    args: tuple
    kwargs: dict
    inplace: tuple = ()  # indices of args the op updates in place (optimizers)
    out_alias: Any = None  # (index of an arg, "same" or "shifted"): out= made from that arg

    def materialise(self):
        args = [build(a) for a in self.args]
        kwargs = {k: build(v) for k, v in self.kwargs.items()}
        if self.out_alias is not None:
            index, how = self.out_alias
            source = args[index]
            if how == "shifted" and isinstance(source, np.ndarray) and source.size >= 2:
                # the input moves to the tail of a buffer whose head is out: they overlap
                buffer = np.empty(source.size + 1, source.dtype)
                buffer[1:] = source.reshape(-1)
                args[index] = buffer[1:].reshape(source.shape)
                kwargs["out"] = buffer[:-1].reshape(source.shape)
            else:
                kwargs["out"] = source
        return args, kwargs


seeds = st.integers(0, 2**16)  # the arrays' value seeds
dims = st.integers(0, 4)
small = st.integers(1, 5)


@st.composite
def arrays(draw, shape, *, dtype=None, odd=0.1, layouts=LAYOUTS, fills=FILLS):
    """A float array spec of ``shape``; sometimes an odd dtype, layout or fill."""
    if dtype is None:
        dtype = draw(st.sampled_from(FLOATS))
    if draw(st.floats(0, 1)) < odd:
        dtype = draw(st.sampled_from(ODD_DTYPES))
    return Arr(tuple(shape), dtype, draw(st.sampled_from(layouts)), draw(st.sampled_from(fills)),
               draw(seeds))


def maybe(draw, value, other, p=0.08):
    """``value`` mostly, ``other`` (a strategy) now and then: the wrong thing on purpose."""
    return draw(other) if draw(st.floats(0, 1)) < p else value


bad_ints = st.sampled_from([0, -1, 2**62, True, 1.5, (1, 2, 3), "2", None])
bad_reals = st.sampled_from([float("nan"), float("inf"), -1.0, "x", None, True])


def out_spec(draw, shape, dtype):
    """None mostly; sometimes a right buffer, sometimes a wrong one."""
    pick = draw(st.sampled_from(["none", "none", "good", "good", "bad"]))
    if pick == "none":
        return None
    if pick == "good":
        return Arr(tuple(shape), dtype, "C", "nan", draw(seeds))
    wrong = draw(st.sampled_from(["shape", "dtype", "layout", "readonly"]))
    if wrong == "shape":
        return Arr(tuple(shape) + (1,), dtype, "C", "zeros")
    if wrong == "dtype":
        return Arr(tuple(shape), "float64" if dtype == "float32" else "float32", "C", "zeros")
    return Arr(tuple(shape), dtype, "strided" if wrong == "layout" else "readonly", "zeros")


def _dt(spec):
    return spec.dtype if spec.dtype in FLOATS else "float32"


def _with_alias(draw, case: Case, candidates) -> Case:
    """Now and then make out= one of the inputs (or overlap one) instead."""
    if not candidates or draw(st.floats(0, 1)) >= 0.12:
        return case
    index = draw(st.sampled_from(candidates))
    kwargs = {k: v for k, v in case.kwargs.items() if k != "out"}
    return Case(case.op, case.args, kwargs, case.inplace,
                (index, draw(st.sampled_from(["same", "shifted"]))))


# ---- dense

@st.composite
def gemm_case(draw):
    m, k, n = draw(dims), draw(dims), draw(dims)
    ta, tb = draw(st.booleans()), draw(st.booleans())
    a = draw(arrays((k, m) if ta else (m, k)))
    b = draw(arrays((n, k) if tb else (k, n), dtype=_dt(a)))
    beta = draw(st.sampled_from([0.0, 0.0, 1.0, -0.5]))
    out = out_spec(draw, (m, n), _dt(a))
    if beta and out is None:
        out = draw(st.sampled_from([None, Arr((m, n), _dt(a), "C", "normal", 3)]))
    kwargs = {"trans_a": ta, "trans_b": tb, "alpha": maybe(draw, draw(st.sampled_from(
        [1.0, 2.0, -1.0, 0.0])), bad_reals), "beta": beta, "out": out}
    return _with_alias(draw, Case("gemm", (a, b), kwargs), [0, 1] if m * n == m * k else [])


@st.composite
def linear_case(draw):
    n, k, m = draw(dims), draw(dims), draw(dims)
    x = draw(arrays((n, k)))
    w = draw(arrays((k, maybe(draw, m, st.just(m + 1))), dtype=_dt(x)))
    b = draw(st.sampled_from([None, Arr((m,), _dt(x), "C", "normal", 7)]))
    activation = maybe(draw, draw(st.sampled_from([None, "relu", "sigmoid", "tanh"])),
                       st.sampled_from(["gelu", 1]))
    case = Case("linear", (x, w, b), {"activation": activation,
                                       "out": out_spec(draw, (n, m), _dt(x))})
    return _with_alias(draw, case, [0] if k == m else [])


# ---- convolution

@st.composite
def conv_geometry(draw):
    layout = maybe(draw, draw(st.sampled_from(["NHWC", "NCHW"])), st.just("NWHC"), p=0.03)
    n, h, w = draw(st.integers(0, 3)), draw(st.integers(0, 7)), draw(st.integers(0, 7))
    c_in, c_out = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 1, 2, 3, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 1, 1, 2, (2, 1)]))
    padding = draw(st.sampled_from([0, 0, 1, 2, "same", "valid", (1, 0), ((0, 1), (2, 0))]))
    stride = maybe(draw, stride, bad_ints, p=0.04)
    dilation = maybe(draw, dilation, bad_ints, p=0.04)
    padding = maybe(draw, padding, st.sampled_from([-1, "full", 2**62, (1, 2, 3)]), p=0.04)
    return layout, (n, h, w, c_in, c_out, kh, kw), stride, padding, dilation


def _image(layout, n, h, w, c):
    return (n, h, w, c) if layout != "NCHW" else (n, c, h, w)


def _weights(layout, kh, kw, c_in, c_out):
    return (kh, kw, c_in, c_out) if layout != "NCHW" else (c_out, c_in, kh, kw)


def _conv_out_shape(layout, geom, stride, padding, dilation):
    """The convolution's output shape, or None where the options are invalid."""
    from fastnn._shapes import pair, resolve_padding

    n, h, w, c_in, c_out, kh, kw = geom
    try:
        s = pair("f", "s", stride, minimum=1)
        d = pair("f", "d", dilation, minimum=1)
        p = resolve_padding("f", padding, (h, w), (kh, kw), s, d)
    except (TypeError, ValueError):
        return None
    ho = conv_output_size(h, kh, s[0], *p[0], d[0])
    wo = conv_output_size(w, kw, s[1], *p[1], d[1])
    if max(ho, wo) > 64:  # huge padding: the ops refuse or compute tiny, no need to build it
        return None
    return _image(layout, n, max(ho, 0), max(wo, 0), c_out)


CONV_FILLS = ("normal", "normal", "zeros", "huge", "nan", "inf")


@st.composite
def conv2d_case(draw, fused=False):
    layout, geom, stride, padding, dilation = draw(conv_geometry())
    n, h, w, c_in, c_out, kh, kw = geom
    x = draw(arrays(_image(layout, n, h, w, c_in), fills=CONV_FILLS))
    # finite weights: padded taps are skipped on cpu, multiplied on the reference (ops.conv2d)
    wt = draw(arrays(_weights(layout, kh, kw, maybe(draw, c_in, st.just(c_in + 1), p=0.03),
                              c_out), dtype=_dt(x), fills=("normal", "zeros")))
    b = draw(st.sampled_from([None, Arr((c_out,), _dt(x), "C", "normal", 5)]))
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "layout": layout}
    if fused:
        return Case("conv2d_relu_max_pool2d", (x, wt, b), kwargs)
    kwargs["activation"] = draw(st.sampled_from([None, "relu", "sigmoid", "tanh"]))
    y_shape = _conv_out_shape(layout, geom, stride, padding, dilation)
    kwargs["out"] = out_spec(draw, y_shape, _dt(x)) if y_shape else None
    same = y_shape == _image(layout, n, h, w, c_in)
    return _with_alias(draw, Case("conv2d", (x, wt, b), kwargs), [0] if same else [])


@st.composite
def conv2d_backward_case(draw, which):
    layout, geom, stride, padding, dilation = draw(conv_geometry())
    n, h, w, c_in, c_out, kh, kw = geom
    y_shape = _conv_out_shape(layout, geom, stride, padding, dilation) or (1, 1, 1, 1)
    dy = draw(arrays(maybe(draw, y_shape, st.just((1, 2, 3, 4)), p=0.03), fills=CONV_FILLS))
    x_shape = _image(layout, n, h, w, c_in)
    w_shape = _weights(layout, kh, kw, c_in, c_out)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "layout": layout}
    if which == "data":
        wt = draw(arrays(w_shape, dtype=_dt(dy), fills=("normal", "zeros")))
        kwargs["out"] = out_spec(draw, x_shape, _dt(dy))
        case = Case("conv2d_backward_data", (dy, wt, x_shape), kwargs)
        return _with_alias(draw, case, [0] if tuple(y_shape) == x_shape else [])
    x = draw(arrays(x_shape, dtype=_dt(dy), fills=CONV_FILLS))
    kwargs["out"] = out_spec(draw, w_shape, _dt(dy))
    return Case("conv2d_backward_weights", (dy, x, w_shape), kwargs)


@st.composite
def bias_backward_case(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(dims, min_size=ndim, max_size=ndim)))
    layout = draw(st.sampled_from(["NHWC", "NCHW"]))
    dy = draw(arrays(shape))
    channels = shape[1] if (layout == "NCHW" and ndim == 4) else (shape[-1] if ndim else 0)
    return Case("bias_backward", (dy,), {"layout": layout,
                                         "out": out_spec(draw, (channels,), _dt(dy))})


# ---- pooling

@st.composite
def pool_geometry(draw):
    layout = draw(st.sampled_from(["NHWC", "NCHW"]))
    n, h, w, c = draw(st.integers(0, 3)), draw(st.integers(0, 6)), draw(st.integers(0, 6)), \
        draw(st.integers(0, 4))
    kernel = maybe(draw, draw(st.sampled_from([1, 2, 2, 3, (2, 3), (3, 1), 7])), bad_ints)
    stride = draw(st.sampled_from([None, None, 1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 0, 1, (1, 0), 2]))
    return layout, (n, h, w, c), kernel, stride, padding


def _pool_out_shape(layout, nhwc, kernel, stride, padding):
    from fastnn._shapes import pair

    n, h, w, c = nhwc
    try:
        k = pair("f", "k", kernel, minimum=1)
        s = k if stride is None else pair("f", "s", stride, minimum=1)
        p = pair("f", "p", padding, minimum=0)
    except (TypeError, ValueError):
        return None
    ho = conv_output_size(h, k[0], s[0], p[0], p[0])
    wo = conv_output_size(w, k[1], s[1], p[1], p[1])
    if max(ho, wo) > 64:
        return None
    return _image(layout, n, max(ho, 0), max(wo, 0), c)


@st.composite
def max_pool2d_case(draw):
    layout, nhwc, kernel, stride, padding = draw(pool_geometry())
    x = draw(arrays(_image(layout, *nhwc)))
    return Case("max_pool2d", (x,), {"kernel": kernel, "stride": stride, "padding": padding,
                                     "layout": layout})


@st.composite
def max_pool2d_backward_case(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=4, max_size=4)))
    x_shape = (shape[0],) + tuple(s + draw(st.integers(0, 2)) for s in shape[1:])
    dy = draw(arrays(shape))
    size = int(np.prod(x_shape))
    rng = np.random.default_rng(draw(seeds))
    kind = draw(st.sampled_from(["own-batch", "own-batch", "anywhere", "negative", "past-end"]))
    per = size // max(shape[0], 1)
    if kind == "own-batch" and size:
        batch = np.arange(shape[0]).reshape(-1, 1, 1, 1) * per
        idx = batch + rng.integers(0, max(per, 1), shape)
    else:
        idx = rng.integers(0, max(size, 1), shape)
    if kind == "negative" and idx.size:
        idx.flat[rng.integers(idx.size)] = -1
    if kind == "past-end" and idx.size:
        idx.flat[rng.integers(idx.size)] = size
    argmax = Arr(shape, "int64", draw(st.sampled_from(LAYOUTS)), values=idx.astype(np.int64))
    if draw(st.floats(0, 1)) < 0.05:
        argmax = Arr(shape, "int32", "C", values=idx.astype(np.int32))
    case = Case("max_pool2d_backward", (dy, argmax, x_shape),
                {"out": out_spec(draw, x_shape, _dt(dy))})
    return _with_alias(draw, case, [0] if shape == x_shape else [])


@st.composite
def avg_pool2d_case(draw, backward=False):
    layout, nhwc, kernel, stride, padding = draw(pool_geometry())
    y_shape = _pool_out_shape(layout, nhwc, kernel, stride, padding)
    kwargs = {"kernel": kernel, "stride": stride, "padding": padding, "layout": layout,
              "count_include_pad": draw(st.booleans())}
    x_shape = _image(layout, *nhwc)
    if backward:
        dy = draw(arrays(y_shape or (1, 1, 1, 1)))
        kwargs["out"] = out_spec(draw, x_shape, _dt(dy))
        case = Case("avg_pool2d_backward", (dy, x_shape), kwargs)
        return _with_alias(draw, case, [0] if y_shape == x_shape else [])
    x = draw(arrays(x_shape))
    kwargs["out"] = out_spec(draw, y_shape, _dt(x)) if y_shape else None
    return _with_alias(draw, Case("avg_pool2d", (x,), kwargs), [0] if y_shape == x_shape else [])


# ---- activations, softmax

def _any_shape(draw, min_ndim=0):
    ndim = draw(st.integers(min_ndim, 4))
    return tuple(draw(st.lists(dims, min_size=ndim, max_size=ndim)))


@st.composite
def unary_case(draw, op):
    shape = _any_shape(draw, 1 if op in ("softmax", "log_softmax") else 0)
    x = draw(arrays(shape))
    return _with_alias(draw, Case(op, (x,), {"out": out_spec(draw, shape, _dt(x))}), [0])


@st.composite
def unary_backward_case(draw, op):
    shape = _any_shape(draw, 1 if op == "softmax_backward" else 0)
    dy = draw(arrays(shape))
    y_shape = maybe(draw, shape, st.just(shape + (1,)), p=0.03)
    y = draw(arrays(y_shape, dtype=_dt(dy)))
    case = Case(op, (dy, y), {"out": out_spec(draw, shape, _dt(dy))})
    return _with_alias(draw, case, [0, 1])


# ---- losses

@st.composite
def sce_case(draw, backward=False):
    n, classes = draw(dims), draw(dims)
    logits = draw(arrays((n, classes)))
    kind = draw(st.sampled_from(["ints", "ints", "onehot", "bad"]))
    rng = np.random.default_rng(draw(seeds))
    if kind == "ints":
        values = rng.integers(-1 if draw(st.floats(0, 1)) < 0.1 else 0, max(classes, 1), n)
        labels = Arr((n,), "int64", "C", values=values.astype(np.int64))
    elif kind == "onehot":
        labels = draw(arrays((n, classes), dtype=_dt(logits), fills=("normal", "zeros", "nan")))
    else:
        labels = draw(st.sampled_from([Arr((n,), "float16", "C"), Arr((n + 1,), "int64", "C",
                                       values=np.zeros(n + 1, np.int64)), None]))
    if not backward:
        return Case("softmax_cross_entropy", (logits, labels), {})
    dloss = maybe(draw, draw(st.sampled_from([1.0, 0.5, np.float32(2.0)])), bad_reals)
    return Case("softmax_cross_entropy_backward", (dloss, logits, labels),
                {"out": out_spec(draw, (n, classes), _dt(logits))})


@st.composite
def mse_case(draw):
    shape = _any_shape(draw, 1)
    p = draw(arrays(shape))
    return Case("mse_loss", (p, draw(arrays(shape, dtype=_dt(p)))), {})


# ---- LRN

@st.composite
def lrn_options(draw):
    return {"depth_radius": maybe(draw, draw(st.integers(0, 3)), bad_ints),
            "bias": maybe(draw, draw(st.sampled_from([1.0, 2.0, 1e-3])), bad_reals),
            "alpha": draw(st.sampled_from([1e-4, 0.5, 0.0])),
            "beta": draw(st.sampled_from([0.75, 0.5, 1.0, 0.0])),
            "layout": draw(st.sampled_from(["NHWC", "NCHW"]))}


@st.composite
def lrn_case(draw, backward=False):
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=4, max_size=4)))
    shape = shape[:3] + (draw(st.integers(0, 9)),)
    options = draw(lrn_options())
    x = draw(arrays(shape))
    if not backward:
        return Case("local_response_norm", (x,), options)
    dy = draw(arrays(shape, dtype=_dt(x)))
    # y and scale as the forward gives them (scale > 0), now and then arbitrary
    if draw(st.floats(0, 1)) < 0.8:
        y, scale = (Forward("local_response_norm", x, tuple(sorted(options.items())), i)
                    for i in (0, 1))
    else:
        y, scale = draw(arrays(shape, dtype=_dt(x))), draw(arrays(shape, dtype=_dt(x)))
    options["out"] = out_spec(draw, shape, _dt(x))
    case = Case("local_response_norm_backward", (dy, x, y, scale), options)
    return _with_alias(draw, case, [0, 1, 2, 3])


# ---- dropout

@st.composite
def dropout_case(draw, backward=False):
    shape = _any_shape(draw)
    keep = maybe(draw, draw(st.sampled_from([0.5, 0.9, 1.0, 0.01])),
                 st.sampled_from([0.0, 1.5, float("nan")]))
    x = draw(arrays(shape))
    if not backward:
        mask_seed = maybe(draw, draw(st.integers(0, 2**64 - 1)),
                          st.sampled_from([-1, 2**64, 1.5]))
        case = Case("dropout", (x,), {"keep_prob": keep, "seed": mask_seed,
                                      "out": out_spec(draw, shape, _dt(x))})
        return _with_alias(draw, case, [0])
    rng = np.random.default_rng(draw(seeds))
    mask = Arr(shape, "bool", draw(st.sampled_from(LAYOUTS)), values=rng.random(shape) < 0.5)
    if draw(st.floats(0, 1)) < 0.05:
        mask = Arr(shape, "float32", "C", values=np.ones(shape, np.float32))
    case = Case("dropout_backward", (x, mask), {"keep_prob": keep,
                                                "out": out_spec(draw, shape, _dt(x))})
    return _with_alias(draw, case, [0])


# ---- optimizers

@st.composite
def optimizer_case(draw, op):
    shape = _any_shape(draw)
    inplace_layouts = ("C", "C", "C", "C", "strided", "readonly", "F")
    param = draw(arrays(shape, layouts=inplace_layouts))
    dt = _dt(param)
    state = [draw(arrays(shape, dtype=dt, layouts=inplace_layouts, fills=("normal", "zeros")))
             for _ in range(2)]
    state = [Arr(s.shape, s.dtype, s.layout, s.fill, s.seed, values=np.abs(_values(s)))
             for s in state]  # v >= 0
    grad = draw(st.sampled_from([draw(arrays(shape, dtype=dt, layouts=inplace_layouts)),
                                 None])) if draw(st.floats(0, 1)) < 0.05 else draw(
        arrays(shape, dtype=dt, layouts=inplace_layouts))
    wd = draw(st.sampled_from([0.0, 0.0, 1e-3]))
    lr = maybe(draw, draw(st.sampled_from([1e-3, 0.1, 0.0])), bad_reals)
    if op == "sgd_update":
        momentum = draw(st.sampled_from([0.0, 0.9]))
        velocity = state[0] if momentum or draw(st.floats(0, 1)) < 0.05 else None
        return Case(op, (param, grad, velocity), {"lr": lr, "momentum": momentum,
                                                  "weight_decay": wd,
                                                  "nesterov": draw(st.booleans())}, (0, 1, 2))
    step = maybe(draw, draw(st.integers(1, 1000)), st.sampled_from([0, -1, 1.5, True]))
    return Case(op, (param, grad, state[0], state[1]),
                {"step": step, "lr": lr, "beta1": draw(st.sampled_from([0.9, 0.0])),
                 "beta2": draw(st.sampled_from([0.999, 0.5])),
                 "eps": draw(st.sampled_from([1e-8, 0.0])), "weight_decay": wd,
                 "bias_correction": draw(st.booleans())}, (0, 1, 2, 3))


# ---- sequences (Thinc's ops)

INDEX_LAYOUTS = ("C", "C", "C", "F", "strided", "negative", "misaligned", "readonly")


def _compose(rng, total, parts, positive=False):
    """``parts`` lengths summing to ``total`` (zeros allowed unless ``positive``)."""
    if parts == 0:
        return np.zeros(0, np.int64)
    if positive:
        cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False)) \
            if total > parts - 1 >= 0 and total > 1 else np.arange(1, parts)
        return np.diff(np.concatenate(([0], cuts, [total]))).astype(np.int64)
    cuts = np.sort(rng.integers(0, total + 1, parts - 1))
    return np.diff(np.concatenate(([0], cuts, [total]))).astype(np.int64)


@st.composite
def lengths_spec(draw, total, positive=False, parts=None):
    """A lengths argument for ``total`` rows: mostly right (int32 like Thinc's, or another
    integer dtype, any layout), now and then wrong (negative, zero where positive, summing
    to another total, 2-D, float)."""
    rng = np.random.default_rng(draw(seeds))
    if parts is None:
        parts = draw(st.integers(0 if total == 0 else 1, max(total, 1) + 2))
        if positive:
            parts = min(parts, total) if total else 0
    values = _compose(rng, total, parts, positive)
    dtype = draw(st.sampled_from(["int32", "int32", "int64", "uint8", "int16"]))
    kind = draw(st.sampled_from(["good"] * 8 + ["negative", "zero", "sum", "2d", "float"]))
    if kind == "negative" and values.size:
        values[0], dtype = -1, "int64"
    elif kind == "zero" and values.size:
        values[-1] = 0
    elif kind == "sum":
        values = np.append(values, 1)
    elif kind == "2d":
        return Arr((values.size, 1), dtype, "C", values=values.astype(dtype).reshape(-1, 1))
    elif kind == "float":
        return Arr(values.shape, "float32", "C", values=values.astype(np.float32))
    if dtype == "uint8" and (values.min(initial=0) < 0 or values.max(initial=0) > 255):
        dtype = "int64"
    return Arr(values.shape, dtype, draw(st.sampled_from(INDEX_LAYOUTS)),
               values=values.astype(dtype))


def _true_lengths(spec):
    """The values a lengths spec holds (for shaping the other arguments)."""
    return np.asarray(spec.values).reshape(-1).astype(np.int64)


bad_sizes = st.sampled_from([-1, 2**31, True, 1.5, "2", None])


@st.composite
def maxout_case(draw):
    n, o, p = draw(dims), draw(dims), draw(st.integers(0, 5))
    shape = maybe(draw, (n, o, p), st.just((n, o)), p=0.03)
    return Case("maxout", (draw(arrays(shape)),), {})


@st.composite
def maxout_backward_case(draw):
    n, o, p = draw(dims), draw(dims), draw(st.integers(1, 5))
    dy = draw(arrays((n, o)))
    rng = np.random.default_rng(draw(seeds))
    values = rng.integers(0, p, (n, o))
    kind = draw(st.sampled_from(["good"] * 6 + ["negative", "past-end", "int64"]))
    if kind in ("negative", "past-end") and values.size:
        values.flat[rng.integers(values.size)] = -1 if kind == "negative" else p
    which = Arr((n, o), "int64" if kind == "int64" else "int32",
                draw(st.sampled_from(INDEX_LAYOUTS)),
                values=values.astype(np.int64 if kind == "int64" else np.int32))
    pieces = maybe(draw, p, bad_sizes)
    return Case("maxout_backward", (dy, which, pieces),
                {"out": out_spec(draw, (n, o, p), _dt(dy))})


@st.composite
def seq2col_case(draw, backward=False):
    n, i = draw(st.integers(0, 9)), draw(dims)
    nw = draw(st.integers(0, 3))
    lengths = draw(st.one_of(st.none(), lengths_spec(n)))
    width = 2 * nw + 1
    nw = maybe(draw, nw, bad_sizes, p=0.05)
    if backward:
        columns = maybe(draw, i * width, st.just(i * width + 1), p=0.05)
        x = draw(arrays((n, columns)))
        out_shape = (n, i)
    else:
        x = draw(arrays((n, i)))
        out_shape = (n, i * width)
    op = "seq2col_backward" if backward else "seq2col"
    return Case(op, (x,), {"nw": nw, "lengths": lengths,
                           "out": out_spec(draw, out_shape, _dt(x))})


@st.composite
def reduce_case(draw, op):
    t, o = draw(st.integers(0, 9)), draw(dims)
    positive = op == "reduce_max"
    lengths = draw(lengths_spec(t, positive=positive))
    x = draw(arrays((t, o)))
    kwargs = {} if positive else {"out": out_spec(draw, (lengths.shape[0], o), _dt(x))}
    return Case(op, (x, lengths), kwargs)


@st.composite
def reduce_backward_case(draw, op):
    b, o = draw(st.integers(0, 5)), draw(dims)
    positive = op == "reduce_max_backward"
    rng = np.random.default_rng(draw(seeds))
    parts = _compose(rng, draw(st.integers(b if positive else 0, 9)), b, positive)
    lengths = draw(lengths_spec(int(parts.sum()), positive=positive, parts=b))
    dy = draw(arrays((maybe(draw, b, st.just(b + 1), p=0.05), o)))
    true = _true_lengths(lengths)
    total = int(true.sum()) if true.size and true.min() >= 0 else 0
    args = (dy, lengths)
    if positive:
        bounds = np.maximum(np.resize(true, b) if true.size else np.ones(b, np.int64), 1)
        values = (rng.integers(0, 2**20, (b, o)) % bounds[:, None]).astype(np.int32)
        kind = draw(st.sampled_from(["good"] * 6 + ["negative", "past-end", "int64"]))
        if kind in ("negative", "past-end") and values.size:
            spot = rng.integers(values.size)
            values.flat[spot] = -1 if kind == "negative" else bounds[spot // max(o, 1)]
        which = Arr((b, o), "int64" if kind == "int64" else "int32",
                    draw(st.sampled_from(INDEX_LAYOUTS)),
                    values=values.astype(np.int64 if kind == "int64" else np.int32))
        args = (dy, which, lengths)
    return Case(op, args, {"out": out_spec(draw, (total, o), _dt(dy))})


@st.composite
def gather_add_case(draw):
    t, o, b, k = draw(st.integers(0, 7)), draw(dims), draw(dims), draw(dims)
    table = draw(arrays((t, o)))
    rng = np.random.default_rng(draw(seeds))
    values = rng.integers(0, max(t, 1), (b, k))
    kind = draw(st.sampled_from(["good"] * 6 + ["negative", "past-end"]))
    if kind in ("negative", "past-end") and values.size:
        values.flat[rng.integers(values.size)] = -1 if kind == "negative" else t
    dtype = draw(st.sampled_from(["int32", "uint32", "int64", "int64", "uint16", "uint64",
                                  "int8", "bool", "float32"]))
    if dtype[0] == "u" or dtype == "bool":
        values = np.abs(values)
    if dtype == "int8":
        values = np.clip(values, -128, 127)
    indices = Arr((b, k), dtype, draw(st.sampled_from(INDEX_LAYOUTS)),
                  values=values.astype(dtype))
    return Case("gather_add", (table, indices), {"out": out_spec(draw, (b, o), _dt(table))})


STRATEGIES: dict[str, Callable[[], st.SearchStrategy]] = {
    "gemm": gemm_case,
    "linear": linear_case,
    "conv2d": conv2d_case,
    "conv2d_relu_max_pool2d": lambda: conv2d_case(fused=True),
    "conv2d_backward_data": lambda: conv2d_backward_case("data"),
    "conv2d_backward_weights": lambda: conv2d_backward_case("weights"),
    "bias_backward": bias_backward_case,
    "max_pool2d": max_pool2d_case,
    "max_pool2d_backward": max_pool2d_backward_case,
    "avg_pool2d": avg_pool2d_case,
    "avg_pool2d_backward": lambda: avg_pool2d_case(backward=True),
    "softmax_cross_entropy": sce_case,
    "softmax_cross_entropy_backward": lambda: sce_case(backward=True),
    "mse_loss": mse_case,
    "local_response_norm": lrn_case,
    "local_response_norm_backward": lambda: lrn_case(backward=True),
    "dropout": dropout_case,
    "dropout_backward": lambda: dropout_case(backward=True),
    "sgd_update": lambda: optimizer_case("sgd_update"),
    "adam_update": lambda: optimizer_case("adam_update"),
    "maxout": maxout_case,
    "maxout_backward": maxout_backward_case,
    "seq2col": seq2col_case,
    "seq2col_backward": lambda: seq2col_case(backward=True),
    "gather_add": gather_add_case,
}
for _op in ("relu", "sigmoid", "tanh", "softmax", "log_softmax"):
    STRATEGIES[_op] = lambda _op=_op: unary_case(_op)
for _op in ("relu_backward", "sigmoid_backward", "tanh_backward", "softmax_backward"):
    STRATEGIES[_op] = lambda _op=_op: unary_backward_case(_op)
for _op in ("reduce_sum", "reduce_mean", "reduce_max"):
    STRATEGIES[_op] = lambda _op=_op: reduce_case(_op)
    STRATEGIES[f"{_op}_backward"] = lambda _op=_op: reduce_backward_case(f"{_op}_backward")


# --------------------------------------------------------------------------- the property

def run(name: str, case: Case):
    """(result, the in-place arrays afterwards) or the exception, on backend ``name``."""
    args, kwargs = case.materialise()
    args = [to_backend(name, a) for a in args]
    kwargs = {k: to_backend(name, v) for k, v in kwargs.items()}
    try:
        with backends.use(name), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = getattr(ops, case.op)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared with the reference's
        return exc
    return to_numpy(result), tuple(to_numpy(args[i]) for i in case.inplace)


def check_against_reference(name: str, case: Case) -> None:
    expected = run("reference", case)
    actual = run(name, case)
    if isinstance(expected, Exception) or isinstance(actual, Exception):
        assert type(actual) is type(expected) and str(actual) == str(expected), (
            f"{case.op} on {name}: {type(actual).__name__}: {actual}\n"
            f"reference: {type(expected).__name__}: {expected}")
        assert isinstance(expected, (TypeError, ValueError)), (
            f"{case.op}: the reference raised {type(expected).__name__}: {expected}")
        return
    (result, inplace), (ref_result, ref_inplace) = actual, expected
    assert_close(result, ref_result)
    for a, e in zip(inplace, ref_inplace):
        assert_close(a, e)


OPS_FUZZED = sorted(STRATEGIES)


def test_every_op_is_fuzzed():
    assert set(OPS_FUZZED) == set(ops.__all__), set(ops.__all__) ^ set(OPS_FUZZED)


@pytest.mark.parametrize("name", BACKEND_PARAMS)
@pytest.mark.parametrize("op", OPS_FUZZED)
def test_fuzz_against_reference(name, op):
    @FUZZ
    @given(case=STRATEGIES[op]())
    def prop(case):
        check_against_reference(name, case)

    if SEED is not None:
        prop = seed(int(SEED))(prop)
    prop()


@pytest.mark.parametrize("op", OPS_FUZZED)
def test_reference_raises_only_clear_errors(op):
    """The oracle itself never crashes on a fuzzed call: a result, or TypeError/ValueError."""
    @FUZZ
    @given(case=STRATEGIES[op]())
    def prop(case):
        outcome = run("reference", case)
        if isinstance(outcome, Exception):
            assert isinstance(outcome, (TypeError, ValueError)), repr(outcome)
            assert str(outcome).startswith(f"{op}: "), str(outcome)

    prop()
