"""Every ``fastnn._C`` entry point, called directly with bad arguments, raises TypeError or
ValueError naming the op (and, for a bad array, the argument); it never reads or writes
out of bounds. fastnn.ops validates first; these guard callers that bypass it.

The table has one row per entry point: a builder of good arguments (which must run), the
positions of its array arguments with the names their messages use, which of those it
writes, and cases of bad options. Each array argument is then replaced in turn by a wrong
dtype, a strided view, a misaligned view, a wrong shape, None, and (outputs) a read-only
array. ``test_the_table_covers_every_entry_point`` fails for a binding without a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from fastnn import _compat

C, _why = _compat.native()
pytestmark = pytest.mark.skipif(C is None, reason=f"fastnn._C unavailable: {_why}")

f32 = np.float32
HUGE = 2**62


def _rand(*shape, dtype=f32):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)


def _argmax_of_pool():
    x = _rand(2, 6, 6, 3)
    y, argmax = np.empty((2, 3, 3, 3), f32), np.empty((2, 3, 3, 3), np.int64)
    C.max_pool2d(x, y, argmax, (2, 2), (2, 2), (0, 0), False)
    return argmax


@dataclass
class Entry:
    good: Callable[[], list]          # fresh good arguments
    arrays: dict = field(default_factory=dict)   # position -> name in the messages
    outputs: tuple = ()               # positions the binding writes
    bad: list = field(default_factory=list)      # (id, {position: value}) option cases
    op: str = ""                      # the op named in messages (default: the entry's name)
    shape_cases: dict = field(default_factory=dict)  # position -> wrong shape (default: last + 1)
    optional: tuple = ()              # array positions that also take None
    wrong_dtypes: dict = field(default_factory=dict)  # position -> a dtype it refuses


def _unary(name):
    return Entry(lambda: [_rand(4, 5), np.empty((4, 5), f32)], {0: "x", 1: "out"}, (1,))


def _unary_backward(name):
    return Entry(lambda: [_rand(4, 5), _rand(4, 5), np.empty((4, 5), f32)],
                 {0: "dy", 1: "y", 2: "out"}, (2,))


def _no_args():
    return Entry(lambda: [], bad=[("extra-argument", {0: 1})])


def _conv_args():
    return [_rand(2, 5, 5, 4), _rand(3, 3, 4, 6), _rand(6), (1, 1), ((1, 1), (1, 1)), (1, 1),
            "relu", np.empty((2, 5, 5, 6), f32)]


CONV_OPTION_CASES = [
    ("stride-0", {3: (0, 1)}), ("stride-huge", {3: (HUGE, 1)}),
    ("padding-negative", {4: ((-1, 0), (0, 0))}), ("padding-huge", {4: ((HUGE, HUGE), (0, 0))}),
    ("padding-changes-the-output-size", {4: ((1, 0), (1, 1))}),
    ("dilation-0", {5: (1, 0)}), ("dilation-huge", {5: (2**40, 1)}),
]


def _conv_bad(stride, padding, dilation):
    return [(i, {stride if k == 3 else padding if k == 4 else dilation: v
                 for k, v in case.items()}) for i, case in CONV_OPTION_CASES]


POOL_OPTION_CASES = [
    ("kernel-0", {"kernel": (0, 2)}), ("kernel-huge", {"kernel": (HUGE, 2)}),
    ("stride-0", {"stride": (2, 0)}), ("stride-negative", {"stride": (-2, 2)}),
    ("padding-not-below-kernel", {"padding": (2, 0)}), ("padding-negative", {"padding": (0, -1)}),
    ("stride-changes-the-output-size", {"stride": (1, 1)}),
]


def _pool_bad(kernel, stride, padding):
    where = {"kernel": kernel, "stride": stride, "padding": padding}
    return [(i, {where[k]: v for k, v in case.items()}) for i, case in POOL_OPTION_CASES]


TABLE: dict[str, Entry] = {
    "relu": _unary("relu"), "sigmoid": _unary("sigmoid"), "tanh": _unary("tanh"),
    "relu_backward": _unary_backward("relu"), "sigmoid_backward": _unary_backward("sigmoid"),
    "tanh_backward": _unary_backward("tanh"),
    "gemm": Entry(lambda: [_rand(6, 4), _rand(4, 5), np.empty((6, 5), f32), False, False, 1.0, 0.0],
                  {0: "a", 1: "b", 2: "out"}, (2,),
                  [("trans-a-mismatch", {3: True}), ("trans-not-bool", {4: "no"})]),
    "linear": Entry(lambda: [_rand(6, 4), _rand(4, 5), _rand(5), np.empty((6, 5), f32), "relu"],
                    {0: "x", 1: "w", 2: "b", 3: "out"}, (3,),
                    optional=(2,), bad=[("activation-unknown", {4: "gelu"}),
                                        ("activation-not-str", {4: 3}),
                                        ("bias-not-array", {2: [1.0] * 5})]),
    "max_pool2d": Entry(
        lambda: [_rand(2, 6, 6, 3), np.empty((2, 3, 3, 3), f32), np.empty((2, 3, 3, 3), np.int64),
                 (2, 2), (2, 2), (0, 0), False],
        {0: "x", 1: "y", 2: "argmax"}, (1, 2), _pool_bad(3, 4, 5)),
    "max_pool2d_backward": Entry(
        lambda: [_rand(2, 3, 3, 3), _argmax_of_pool(), np.empty((2, 6, 6, 3), f32)],
        {0: "dy", 1: "argmax", 2: "out"}, (2,),
        [("argmax-out-of-range", {1: np.full((2, 3, 3, 3), 10**6, np.int64)}),
         ("argmax-negative", {1: np.full((2, 3, 3, 3), -1, np.int64)})],
        shape_cases={2: (3, 6, 6, 3)}),
    "avg_pool2d": Entry(
        lambda: [_rand(2, 6, 6, 3), np.empty((2, 3, 3, 3), f32), (2, 2), (2, 2), (0, 0), True],
        {0: "x", 1: "out"}, (1,), _pool_bad(2, 3, 4)),
    "avg_pool2d_backward": Entry(
        lambda: [_rand(2, 3, 3, 3), np.empty((2, 6, 6, 3), f32), (2, 2), (2, 2), (0, 0), True],
        {0: "dy", 1: "out"}, (1,), _pool_bad(2, 3, 4)),
    "local_response_norm": Entry(
        lambda: [_rand(2, 3, 3, 8), np.empty((2, 3, 3, 8), f32), np.empty((2, 3, 3, 8), f32),
                 2, 1.0, 1e-3, 0.75],
        {0: "x", 1: "y", 2: "scale"}, (1, 2),
        [("radius-negative", {3: -1}), ("radius-huge", {3: HUGE}), ("bias-0", {4: 0.0}),
         ("alpha-negative", {5: -1.0}), ("beta-nan", {6: float("nan")})]),
    "local_response_norm_backward": Entry(
        lambda: [_rand(2, 3, 3, 8), _rand(2, 3, 3, 8), _rand(2, 3, 3, 8),
                 np.abs(_rand(2, 3, 3, 8)) + 1, np.empty((2, 3, 3, 8), f32), 2, 1e-3, 0.75],
        {0: "dy", 1: "x", 2: "y", 3: "scale", 4: "out"}, (4,),
        [("radius-negative", {5: -1}), ("alpha-negative", {6: -1.0})]),
    "bias_backward": Entry(lambda: [_rand(8, 5), False, np.empty(5, f32)],
                           {0: "dy", 2: "out"}, (2,),
                           [("nchw-channels", {1: True, 0: _rand(2, 3, 4, 5)})]),
    "softmax": Entry(lambda: [_rand(4, 3), False, np.empty((4, 3), f32)], {0: "x", 2: "out"}, (2,)),
    "softmax_cross_entropy": Entry(
        lambda: [_rand(4, 3), np.array([0, 1, 2, 0]), np.empty((4, 3), f32)],
        {0: "logits", 1: "labels", 2: "probs"}, (2,),
        [("label-too-big", {1: np.array([0, 1, 3, 0])}),
         ("label-negative", {1: np.array([0, -1, 2, 0])}),
         ("targets-other-dtype", {1: np.ones((4, 3), np.float64)}),
         ("empty-rows", {0: np.empty((0, 3), f32), 1: np.empty(0, np.int64),
                         2: np.empty((0, 3), f32)})]),
    "softmax_cross_entropy_backward": Entry(
        lambda: [1.0, _rand(4, 3), np.array([0, 1, 2, 0]), np.empty((4, 3), f32)],
        {1: "probs", 2: "labels", 3: "out"}, (3,),
        [("label-too-big", {2: np.array([0, 1, 3, 0])}),
         ("targets-wrong-shape", {2: np.ones((4, 2), f32)})]),
    "mse_loss": Entry(lambda: [_rand(4, 3), _rand(4, 3), np.empty((4, 3), f32)],
                      {0: "prediction", 1: "target", 2: "grad"}, (2,),
                      [("empty-batch", {0: np.empty((0, 3), f32), 1: np.empty((0, 3), f32),
                                        2: np.empty((0, 3), f32)})]),
    "dropout": Entry(lambda: [_rand(4, 6), 3, 2**23, 2.0, np.empty((4, 6), f32),
                              np.empty((4, 6), bool)],
                     {0: "x", 4: "out", 5: "mask"}, (4, 5),
                     [("seed-negative", {1: -1}), ("threshold-negative", {2: -5})]),
    "dropout_backward": Entry(lambda: [_rand(4, 6), np.ones((4, 6), bool), 2.0,
                                       np.empty((4, 6), f32)],
                              {0: "dy", 1: "mask", 3: "out"}, (3,)),
    "sgd_update": Entry(lambda: [_rand(4, 6), _rand(4, 6), _rand(4, 6), 0.1, 0.9, 0.0, False],
                        {0: "param", 1: "grad", 2: "velocity"}, (0, 1, 2),
                        [("velocity-not-array", {2: 3.0})], optional=(2,)),
    "adam_update": Entry(lambda: [_rand(4, 6), _rand(4, 6), _rand(4, 6), np.abs(_rand(4, 6)),
                                  1e-3, 0.9, 0.999, 1e-8, 0.0, 10.0, 1000.0],
                         {0: "param", 1: "grad", 2: "m", 3: "v"}, (0, 1, 2, 3)),
    "conv2d": Entry(_conv_args, {0: "x", 1: "w", 2: "b", 7: "out"}, (7,), optional=(2,),
                    bad=_conv_bad(3, 4, 5) + [("activation-unknown", {6: "gelu"}),
                                          ("activation-not-str", {6: 1}),
                                          ("empty-kernel", {1: np.empty((0, 3, 4, 6), f32)})]),
    "conv2d_backward_data": Entry(
        lambda: [_rand(2, 5, 5, 6), _rand(3, 3, 4, 6), (1, 1), ((1, 1), (1, 1)), (1, 1),
                 np.empty((2, 5, 5, 4), f32)],
        {0: "dy", 1: "w", 5: "out"}, (5,), _conv_bad(2, 3, 4)),
    "conv2d_backward_weights": Entry(
        lambda: [_rand(2, 5, 5, 6), _rand(2, 5, 5, 4), (1, 1), ((1, 1), (1, 1)), (1, 1),
                 np.empty((3, 3, 4, 6), f32)],
        {0: "dy", 1: "x", 5: "out"}, (5,), _conv_bad(2, 3, 4)),
    "conv2d_relu_max_pool2d": Entry(
        lambda: [_rand(2, 8, 8, 3), _rand(3, 3, 3, 32), _rand(32), (1, 1), ((1, 1), (1, 1)), (1, 1),
                 np.empty((2, 4, 4, 32), f32), np.empty((2, 4, 4, 32), np.int64)],
        {0: "x", 1: "w", 2: "b", 6: "y", 7: "argmax"}, (6, 7), optional=(2,),
        bad=[(i, c) for i, c in _conv_bad(3, 4, 5) if i != "padding-changes-the-output-size"]),
    "measure_peak_flops": Entry(lambda: [0.0], bad=[("negative", {0: -1.0}),
                                                   ("nan", {0: float("nan")}),
                                                   ("huge", {0: 1e9})]),
    "measure_triad_bandwidth": Entry(
        lambda: [np.empty(1000, f32), _rand(1000), _rand(1000), 1], {0: "a", 1: "b", 2: "c"}, (0,),
        [("repeats-0", {3: 0}), ("repeats-negative", {3: -4})]),
    "gemm_blocking": Entry(lambda: [64, 128, 3136, "float32", 0],
                           bad=[("m-zero", {0: 0}), ("n-negative", {1: -1}), ("k-huge", {2: HUGE}),
                                ("dtype", {3: "int8"}), ("threads-negative", {4: -1})]),
    "set_num_threads": Entry(lambda: [C.get_num_threads()],
                             bad=[("zero", {0: 0}), ("negative", {0: -3}), ("too-many", {0: 10**6}),
                                  ("not-int", {0: "2"}), ("overflow", {0: 2**40})]),
    "set_flush_denormals": Entry(lambda: [C.get_flush_denormals()], bad=[("not-bool", {0: "yes"})]),
}


def _lengths(*values):
    return np.array(values, np.int64)


def _reduce_entry(backward=False):
    if backward:
        return Entry(lambda: [_rand(3, 4), _lengths(2, 0, 4), np.empty((6, 4), f32)],
                     {0: "dy", 1: "lengths", 2: "out"}, (2,),
                     [("lengths-negative", {1: _lengths(2, -1, 4)}),
                      ("lengths-overflow", {1: _lengths(2**62, 2**62, 2**62)})],
                     shape_cases={0: (4, 4), 1: (3, 1)})
    return Entry(lambda: [_rand(6, 4), _lengths(2, 0, 4), np.empty((3, 4), f32)],
                 {0: "x", 1: "lengths", 2: "out"}, (2,),
                 [("lengths-negative", {1: _lengths(7, -1, 0)}),
                  ("lengths-sum", {1: _lengths(2, 0, 3)}),
                  ("lengths-overflow", {1: _lengths(2**62, 2**62, 2**62)})],
                 shape_cases={0: (7, 4), 1: (3, 1)})


TABLE.update({
    "maxout": Entry(lambda: [_rand(4, 5, 3), np.empty((4, 5), f32), np.empty((4, 5), np.int32)],
                    {0: "x", 1: "y", 2: "which"}, (1, 2), shape_cases={0: (4, 5, 0)},
                    wrong_dtypes={2: np.int64}),
    "maxout_backward": Entry(
        lambda: [_rand(4, 5), np.zeros((4, 5), np.int32), 3, np.empty((4, 5, 3), f32)],
        {0: "dy", 1: "which", 3: "out"}, (3,),
        [("pieces-0", {2: 0}), ("pieces-huge", {2: 2**31}),
         ("which-past-end", {1: np.full((4, 5), 3, np.int32)}),
         ("which-negative", {1: np.full((4, 5), -1, np.int32)})],
        shape_cases={0: (4, 5, 1)}, wrong_dtypes={1: np.int64}),
    "seq2col": Entry(
        lambda: [_rand(6, 4), _lengths(2, 0, 4), 1, np.empty((6, 12), f32)],
        {0: "x", 1: "lengths", 3: "out"}, (3,),
        [("nw-negative", {2: -1}), ("nw-huge", {2: HUGE}), ("lengths-sum", {1: _lengths(2, 2)}),
         ("lengths-negative", {1: _lengths(7, -1)}),
         ("lengths-overflow", {1: _lengths(2**62, 2**62, 2**62, 6)})],
        shape_cases={0: (7, 4), 1: (3, 1)}),
    "seq2col_backward": Entry(
        lambda: [_rand(6, 12), _lengths(2, 0, 4), 1, np.empty((6, 4), f32)],
        {0: "dy", 1: "lengths", 3: "out"}, (3,),
        [("nw-negative", {2: -1}), ("columns-not-a-multiple", {2: 2}),
         ("lengths-sum", {1: _lengths(9)})],
        shape_cases={1: (3, 1)}),
    "reduce_sum": _reduce_entry(), "reduce_mean": _reduce_entry(),
    "reduce_sum_backward": _reduce_entry(backward=True),
    "reduce_mean_backward": _reduce_entry(backward=True),
    "reduce_max": Entry(
        lambda: [_rand(6, 4), _lengths(2, 1, 3), np.empty((3, 4), f32),
                 np.empty((3, 4), np.int32)],
        {0: "x", 1: "lengths", 2: "y", 3: "which"}, (2, 3),
        [("zero-length", {1: _lengths(2, 0, 4)}), ("length-past-int32", {1: _lengths(2**31, 1)})],
        shape_cases={0: (7, 4), 1: (3, 1)}, wrong_dtypes={3: np.int64}),
    "reduce_max_backward": Entry(
        lambda: [_rand(3, 4), np.zeros((3, 4), np.int32), _lengths(2, 1, 3),
                 np.empty((6, 4), f32)],
        {0: "dy", 1: "which", 2: "lengths", 3: "out"}, (3,),
        [("which-past-end", {1: np.ones((3, 4), np.int32)}),
         ("which-negative", {1: np.full((3, 4), -1, np.int32)}),
         ("zero-length", {2: _lengths(2, 0, 4)}), ("out-is-zero-not-bool", {4: "yes"})],
        shape_cases={0: (4, 4), 2: (3, 1)}, wrong_dtypes={1: np.int64}),
    "gather_add": Entry(
        lambda: [_rand(5, 4), np.array([[0, 4], [1, 1], [3, 2]], np.int32),
                 np.empty((3, 4), f32)],
        {0: "table", 1: "indices", 2: "out"}, (2,),
        [("index-past-end", {1: np.array([[0, 5], [1, 1], [3, 2]], np.uint32)}),
         ("index-negative", {1: np.array([[0, 1], [1, -1], [3, 2]], np.int64)}),
         ("indices-int16", {1: np.zeros((3, 2), np.int16)})],
        shape_cases={0: (5,), 1: (3,)}, wrong_dtypes={1: np.float32}),
})
for _name in ("get_num_threads", "openmp_enabled", "get_flush_denormals", "detected_isa",
              "selected_isa", "gemm_kernel", "cache_sizes", "gemm_workspace_bytes",
              "workspace_bytes", "release_memory"):
    TABLE[_name] = _no_args()


def test_the_table_covers_every_entry_point():
    entry_points = {n for n in dir(C) if not n.startswith("_") and callable(getattr(C, n))}
    assert entry_points == set(TABLE), (
        f"without cases: {sorted(entry_points - set(TABLE))}; "
        f"not entry points: {sorted(set(TABLE) - entry_points)}")


@pytest.mark.parametrize("name", sorted(TABLE))
def test_good_arguments_run(name):
    before = C.get_num_threads()
    try:
        result = getattr(C, name)(*TABLE[name].good())
    finally:
        C.set_num_threads(before)
    if name == "conv2d_relu_max_pool2d":
        assert result is True  # the pool fits the output, so y and argmax are checked


@pytest.mark.parametrize("c_in", [3, 32])  # the fused direct kernel; Winograd, then the pool
def test_conv_relu_pool_runs_every_convolution_and_refuses_only_a_pool_that_does_not_fit(c_in):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 6, 6, c_in), f32), rng.standard_normal((3, 3, c_in, 32), f32)
    y, argmax = np.full((2, 3, 3, 32), np.nan, f32), np.full((2, 3, 3, 32), -1, np.int64)
    assert C.conv2d_relu_max_pool2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), y, argmax)
    z = np.empty((2, 6, 6, 32), f32)
    C.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), "relu", z)
    assert np.array_equal(y, z.reshape(2, 3, 2, 3, 2, 32).max(axis=(2, 4)))
    assert np.array_equal(z.reshape(-1)[argmax], y)
    # A 1-pixel output has no 2x2 window: False (ops then composes, and max_pool2d says why).
    one_y, one_a = np.full((2, 0, 0, 32), 7.0, f32), np.full((2, 0, 0, 32), 7, np.int64)
    assert not C.conv2d_relu_max_pool2d(x, w, None, (4, 4), ((0, 0), (0, 0)), (1, 1), one_y,
                                        one_a)


# --------------------------------------------------------------------------- bad arrays

def _wrong_dtype(a):
    return np.zeros(a.shape, {"f": np.int32, "i": np.int32, "b": np.uint8}[a.dtype.kind])


def _strided(a):
    wide = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
    view = wide[::2]
    view[...] = a
    assert not view.flags.c_contiguous
    return view


def _misaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    view[...] = a
    return view


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _wrong_shape(a, shape=None):
    return np.zeros(shape if shape is not None else a.shape[:-1] + (a.shape[-1] + 1,), a.dtype)


def _array_cases():
    for name, entry in sorted(TABLE.items()):
        for pos, arg in entry.arrays.items():
            yield pytest.param(name, pos, "dtype", TypeError, arg, id=f"{name}-{arg}-dtype")
            yield pytest.param(name, pos, "strided", ValueError, arg, id=f"{name}-{arg}-strided")
            if entry.good()[pos].itemsize > 1:  # (a bool mask is never misaligned)
                yield pytest.param(name, pos, "misaligned", ValueError, arg,
                                   id=f"{name}-{arg}-misaligned")
            yield pytest.param(name, pos, "shape", ValueError, None, id=f"{name}-{arg}-shape")
            yield pytest.param(name, pos, "list" if pos in entry.optional else "none",
                               TypeError, None, id=f"{name}-{arg}-not-an-array")
            if pos in entry.outputs:
                yield pytest.param(name, pos, "read-only", ValueError, arg,
                                   id=f"{name}-{arg}-read-only")


MUTATIONS = {
    "dtype": _wrong_dtype, "strided": _strided, "misaligned": _misaligned,
    "read-only": _read_only, "none": lambda a: None, "list": lambda a: a.tolist(),
}


@pytest.mark.parametrize("name, pos, kind, error, arg", list(_array_cases()))
def test_bad_arrays_raise(name, pos, kind, error, arg):
    entry = TABLE[name]
    args = entry.good()
    if kind == "shape":
        args[pos] = _wrong_shape(args[pos], entry.shape_cases.get(pos))
    elif kind == "dtype" and pos in entry.wrong_dtypes:
        args[pos] = np.zeros(args[pos].shape, entry.wrong_dtypes[pos])
    else:
        args[pos] = MUTATIONS[kind](args[pos])
    with pytest.raises(error) as info:
        getattr(C, name)(*args)
    if kind in ("none", "list"):
        return  # pybind11's own message: incompatible function arguments
    message = str(info.value)
    assert message.startswith(f"{entry.op or name}: "), message
    if arg is not None:
        assert f" {arg} " in f" {message.split(':', 1)[1]} ", message


def _option_cases():
    for name, entry in sorted(TABLE.items()):
        for case_id, change in entry.bad:
            yield pytest.param(name, change, id=f"{name}-{case_id}")


@pytest.mark.parametrize("name, change", list(_option_cases()))
def test_bad_options_raise(name, change):
    args = TABLE[name].good()
    before = C.get_num_threads()
    try:
        for pos, value in change.items():
            if pos == len(args):
                args.append(value)
            else:
                args[pos] = value
        with pytest.raises((TypeError, ValueError)):
            getattr(C, name)(*args)
    finally:
        C.set_num_threads(before)


def test_a_refused_output_is_left_untouched():
    """fastnn.ops' fast path relies on a refusal writing nothing."""
    for name, entry in sorted(TABLE.items()):
        for pos in entry.outputs:
            args = entry.good()
            for other in entry.outputs:
                if other != pos and isinstance(args[other], np.ndarray):
                    args[other] = np.full_like(args[other], 7)
            kept = {o: args[o].copy() for o in entry.outputs if o != pos}
            args[pos] = _read_only(args[pos])
            with pytest.raises(ValueError):
                getattr(C, name)(*args)
            for o, before in kept.items():
                np.testing.assert_array_equal(args[o], before, err_msg=f"{name} wrote {o}")
