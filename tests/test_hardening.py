"""Regression tests for defects found by fuzzing and attacking the op contract: each case
below once crashed, computed garbage or disagreed between backends. Every backend must now
give the reference's answer, or the reference's exception with the same message."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from support import ALL_BACKEND_PARAMS, assert_close, to_backend, to_numpy

from fastnn import backends, ops

f32 = np.float32
nan, inf = np.nan, np.inf


def call(name, op, *args, **kwargs):
    args = [to_backend(name, a) for a in args]
    kwargs = {k: to_backend(name, v) for k, v in kwargs.items()}
    with backends.use(name), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return to_numpy(getattr(ops, op)(*args, **kwargs))


def raises_everywhere(name, exc, pattern, op, *args, **kwargs):
    """``op`` raises ``exc`` on backend ``name`` with the reference's very message."""
    with pytest.raises(exc) as info:
        call(name, op, *args, **kwargs)
    with pytest.raises(exc) as reference:
        call("reference", op, *args, **kwargs)
    assert str(info.value) == str(reference.value)
    assert str(info.value).startswith(f"{op}: ")
    assert re.search(pattern, str(info.value)), str(info.value)


# --------------------------------------------------------------------------- empty input

@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_max_pool_of_an_empty_image_with_padding_is_refused(name):
    # once a segfault on cpu (the max seeded from a window with no real pixel)
    x = np.zeros((1, 0, 4_000_000, 16), f32)
    raises_everywhere(name, ValueError, r"at least one row and one column, got \(0, 4000000\)",
                      "max_pool2d", x, kernel=2, stride=1, padding=1)
    raises_everywhere(name, ValueError, "at least one row and one column", "max_pool2d",
                      np.zeros((1, 3, 0, 2), f32), kernel=2, padding=1, layout="NCHW")
    raises_everywhere(name, ValueError, "at least one row and one column", "avg_pool2d",
                      np.zeros((1, 0, 3, 2), f32), kernel=2, padding=1)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_an_empty_batch_or_channel_axis_gives_an_empty_result(name):
    y, argmax = call(name, "max_pool2d", np.zeros((0, 4, 4, 3), f32), kernel=2, padding=1)
    assert y.shape == argmax.shape == (0, 3, 3, 3)
    y, argmax = call(name, "max_pool2d", np.zeros((2, 4, 4, 0), f32), kernel=2)
    assert y.shape == (2, 2, 2, 0)
    y, scale = call(name, "local_response_norm", np.zeros((2, 3, 3, 0), f32), depth_radius=2)
    assert y.shape == scale.shape == (2, 3, 3, 0)
    dx = call(name, "local_response_norm_backward", *(np.zeros((1, 0, 2, 2), f32),) * 4,
              layout="NCHW")
    assert dx.shape == (1, 0, 2, 2)
    db = call(name, "bias_backward", np.zeros((0, 0, 0, 0), f32), layout="NCHW")
    assert db.shape == (0,)
    db = call(name, "bias_backward", np.zeros((0, 3, 2, 2), f32), layout="NCHW")
    assert_close(db, np.zeros(3, f32))


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_convolutions_without_input_channels_or_pixels_are_refused(name):
    x0, w0 = np.zeros((1, 4, 4, 0), f32), np.zeros((3, 3, 0, 2), f32)
    for op in ("conv2d", "conv2d_relu_max_pool2d"):  # the fused op names itself, once
        raises_everywhere(name, ValueError, rf"^{op}: w must have a non-empty kernel and at "
                          r"least one input and one output channel", op, x0, w0)
    raises_everywhere(name, ValueError, "at least one row and one column", "conv2d",
                      np.zeros((1, 0, 5, 2), f32), np.zeros((3, 3, 2, 2), f32), padding=1)
    raises_everywhere(name, ValueError, "at least one input", "conv2d_backward_weights",
                      np.zeros((1, 2, 2, 2), f32), x0, (3, 3, 0, 2), padding=1)


# --------------------------------------------------------------------------- options

@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_huge_options_are_refused_alike(name):
    x, w = np.ones((1, 5, 5, 2), f32), np.ones((3, 3, 2, 2), f32)
    raises_everywhere(name, ValueError, r"stride must be < 2\*\*31, got 4611686018427387904",
                      "conv2d", x, w, stride=2**62)
    raises_everywhere(name, ValueError, r"padding must be < 2\*\*31", "conv2d", x, w,
                      padding=2**62)
    raises_everywhere(name, ValueError, "more than any machine can hold", "conv2d", x, w,
                      padding=2**30)
    raises_everywhere(name, ValueError, r"dilation must be < 2\*\*31", "conv2d", x, w,
                      dilation=(1, 2**40))
    raises_everywhere(name, ValueError, r"stride must be < 2\*\*31", "max_pool2d", x,
                      kernel=2, stride=2**62)
    raises_everywhere(name, ValueError, r"depth_radius must be < 2\*\*31",
                      "local_response_norm", x, depth_radius=2**62)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_an_lrn_window_wider_than_the_channels_sums_them_all(name):
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4)).astype(f32)
    wide = call(name, "local_response_norm", x, depth_radius=1000)
    assert_close(wide, call("reference", "local_response_norm", x, depth_radius=3))


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_big_endian_floats_compute_like_native_ones(name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 6, 3)).astype(">f4")
    w = rng.standard_normal((3, 3, 3, 4)).astype(">f4")
    assert_close(call(name, "conv2d", x, w, padding=1),
                 call("reference", "conv2d", x.astype(f32), w.astype(f32), padding=1))
    assert_close(call(name, "relu", x.astype(">f8")), np.maximum(x.astype(np.float64), 0))
    raises_everywhere(name, TypeError, "out must have dtype float32, got >f4", "relu",
                      x.astype(f32), out=np.zeros(x.shape, ">f4"))


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_argmax_outside_the_input_is_refused(name):
    dy = np.ones((1, 2, 2, 1), f32)
    for bad, first in ((-1, -1), (16, 16), (2**40, 2**40)):
        argmax = np.array([0, 5, bad, 3], np.int64).reshape(dy.shape)
        raises_everywhere(name, ValueError,
                          rf"^max_pool2d_backward: argmax holds {first}, outside \[0, 16\)$",
                          "max_pool2d_backward", dy, argmax, (1, 4, 4, 1))


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op", ["sgd_update", "adam_update"])
def test_optimizers_refuse_a_missing_gradient(name, op):
    param = np.ones(3, f32)
    state = (np.zeros(3, f32), np.zeros(3, f32)) if op == "adam_update" else ()
    options = {"step": 1, "lr": 0.1} if op == "adam_update" else {"lr": 0.1}
    raises_everywhere(name, TypeError, "grad must be a float32 or float64 array, got None",
                      op, param, None, *state, **options)


# --------------------------------------------------------------------------- aliasing

rng = np.random.default_rng(3)
A = rng.standard_normal((80, 80)).astype(f32)
X4 = rng.standard_normal((2, 6, 6, 4)).astype(f32)
W4 = rng.standard_normal((3, 3, 4, 4)).astype(f32)

# (op, inputs, options, index of the input also passed as out=)
OVERLAPS = [
    ("gemm", (A, A.T.copy()), {}, 0),
    ("gemm", (A, A.T.copy()), {"beta": 1.0}, 1),
    ("linear", (A, A.copy()), {}, 1),
    ("linear", (A, A.copy()), {"activation": "relu"}, 0),
    ("log_softmax", (A,), {}, 0),
    ("softmax", (A,), {}, 0),
    ("softmax_backward", (A, A.copy()), {}, 0),
    ("conv2d", (X4, W4), {"padding": 1}, 0),
    ("conv2d_backward_data", (X4, W4, X4.shape), {"padding": 1}, 0),
    ("max_pool2d_backward", (X4, np.arange(X4.size).reshape(X4.shape), X4.shape), {}, 0),
    ("avg_pool2d_backward", (X4, X4.shape), {"kernel": 3, "stride": 1, "padding": 1}, 0),
]
LRN = [X4, X4.copy(), X4.copy(), np.abs(X4) + 1]
OVERLAPS += [("local_response_norm_backward", tuple(LRN), {}, i) for i in range(4)]


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op, inputs, options, index", OVERLAPS,
                         ids=[f"{c[0]}-{c[3]}" for c in OVERLAPS])
def test_out_sharing_memory_with_an_input_is_refused(name, op, inputs, options, index):
    inputs = [a.copy() if isinstance(a, np.ndarray) else a for a in inputs]
    raises_everywhere(name, ValueError, r"shares memory with .*does not work in place", op,
                      *inputs, **options, out=inputs[index])


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_out_overlapping_part_of_an_input_is_refused(name):
    buffer = rng.standard_normal(101).astype(f32)
    x, out = buffer[1:], buffer[:-1]  # the same memory, shifted by one element
    raises_everywhere(name, ValueError, "out overlaps x without being the same array", "relu",
                      x, out=out)
    raises_everywhere(name, ValueError, "shares memory with x", "softmax", x, out=out)


# element-wise ops, where in place is exact: (op, inputs, options, index of out=)
IN_PLACE = [
    ("relu", (X4,), {}, 0), ("sigmoid", (X4,), {}, 0), ("tanh", (X4,), {}, 0),
    ("relu_backward", (X4, X4.copy()), {}, 0), ("relu_backward", (X4, X4.copy()), {}, 1),
    ("sigmoid_backward", (X4, X4.copy()), {}, 1), ("tanh_backward", (X4, X4.copy()), {}, 0),
    ("dropout_backward", (X4, X4 > 0), {"keep_prob": 0.5}, 0),
]


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op, inputs, options, index", IN_PLACE,
                         ids=[f"{c[0]}-{c[3]}" for c in IN_PLACE])
def test_elementwise_ops_work_in_place(name, op, inputs, options, index):
    expected = call("reference", op, *inputs, **options)
    inputs = [to_backend(name, a.copy()) for a in inputs]
    result = call(name, op, *inputs, **options, out=inputs[index])
    assert_close(result, expected)
    assert_close(inputs[index], expected)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_dropout_works_in_place(name):
    expected, mask = call("reference", "dropout", X4, keep_prob=0.5, seed=4)
    x = to_backend(name, X4.copy())
    y, _ = call(name, "dropout", x, keep_prob=0.5, seed=4, out=x)
    assert_close(y, expected)
    assert_close(x, expected)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_optimizer_arrays_must_not_share_memory(name):
    p = np.ones(4, f32)
    raises_everywhere(name, ValueError, "param and grad share memory", "sgd_update", p, p,
                      lr=0.1)
    m = np.zeros(4, f32)
    raises_everywhere(name, ValueError, "m and v share memory", "adam_update",
                      np.ones(4, f32), np.ones(4, f32), m, m, step=1)


# --------------------------------------------------------------------------- NaN and inf

@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_masks_multiply_so_nan_and_inf_propagate(name):
    dy = np.array([nan, inf, nan, 2.0, -inf], f32)
    y = np.array([0.0, -1.0, 1.0, nan, 0.0], f32)
    assert_close(call(name, "relu_backward", dy, y), np.array([nan, nan, nan, 0.0, nan], f32))
    x = np.full(256, nan, f32)
    x[::2] = inf
    out, mask = call(name, "dropout", x, keep_prob=0.5, seed=7)
    assert 0 < mask.sum() < x.size
    assert np.isnan(out[~mask]).all()  # dropped: nan * 0 and inf * 0 are NaN
    assert_close(out[mask], x[mask] * f32(2))
    assert np.isnan(call(name, "dropout_backward", x, mask, keep_prob=0.5)[~mask]).all()


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op", ["sgd_update", "adam_update"])
def test_an_infinite_parameter_without_weight_decay_stays_infinite(name, op):
    for weight_decay, expected in ((0.0, [inf, -inf]), (0.1, [nan, nan])):
        param, grad = np.array([inf, -inf], f32), np.ones(2, f32)
        state = (np.zeros(2, f32), np.zeros(2, f32)) if op == "adam_update" else ()
        options = {"step": 1} if op == "adam_update" else {}
        call(name, op, param, grad, *state, lr=0.1, weight_decay=weight_decay, **options)
        assert_close(param, np.array(expected, f32))


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("special", [inf, -inf, nan, 3e38])
@pytest.mark.parametrize("beta", [0.75, 0.5])  # the default's own kernel, and the general one
def test_lrn_of_non_finite_values_matches_the_reference(name, dtype, layout, special, beta):
    # channel counts around the vector widths, so the vector kernels and their tails both
    # meet an infinite scale (inf**-beta is 0, inf * 0 is NaN)
    rng = np.random.default_rng(5)
    options = {"depth_radius": 2, "beta": beta, "layout": layout}
    for channels in (3, 17, 40):
        shape = (2, 3, 5, channels) if layout == "NHWC" else (2, channels, 3, 5)
        x = rng.standard_normal(shape).astype(dtype)
        x[rng.random(shape) < 0.1] = special
        y, scale = call("reference", "local_response_norm", x, **options)
        dy = np.ones_like(x)
        dx = call("reference", "local_response_norm_backward", dy, x, y, scale, **options)
        got = call(name, "local_response_norm", x, **options)
        assert_close(got, (y, scale))
        assert_close(call(name, "local_response_norm_backward", dy, x, y, scale, **options), dx)


# --------------------------------------------------------------------------- sequence ops

@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_sequence_ops_on_empty_batches_and_empty_sequences(name):
    none = np.zeros((0, 3), f32)
    for op in ("reduce_sum", "reduce_mean"):
        np.testing.assert_array_equal(call(name, op, none, np.array([0, 0], np.int32)),
                                      np.zeros((2, 3), f32))
        assert call(name, op, none, np.array([], np.int32)).shape == (0, 3)
        assert call(name, f"{op}_backward", np.ones((2, 3), f32), np.array([0, 0])).shape == (0, 3)
    y, which = call(name, "reduce_max", none, np.array([], np.int32))
    assert y.shape == which.shape == (0, 3) and which.dtype == np.int32
    assert call(name, "reduce_max_backward", np.zeros((0, 3), f32), np.zeros((0, 3), np.int32),
                np.array([], np.int32)).shape == (0, 3)
    assert call(name, "seq2col", np.zeros((0, 4), f32), nw=2).shape == (0, 20)
    assert call(name, "seq2col", np.zeros((0, 4), f32), nw=1, lengths=[0, 0]).shape == (0, 12)
    assert call(name, "seq2col_backward", np.zeros((0, 9), f32), nw=1).shape == (0, 3)
    y, which = call(name, "maxout", np.zeros((0, 3, 2), f32))
    assert y.shape == which.shape == (0, 3)
    assert call(name, "maxout_backward", np.zeros((4, 0), f32), np.zeros((4, 0), np.int32),
                3).shape == (4, 0, 3)
    np.testing.assert_array_equal(call(name, "gather_add", none, np.zeros((2, 0), np.int32)),
                                  np.zeros((2, 3), f32))
    # A sequence of no rows sums to zeros between others, and gets no gradient rows.
    x = np.arange(8, dtype=f32).reshape(4, 2)
    np.testing.assert_array_equal(call(name, "reduce_mean", x, np.array([1, 0, 3])),
                                  [[0, 1], [0, 0], [4, 5]])


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_index_arrays_outside_their_range_are_refused_alike(name):
    # The native kernels read and write through these: a bad one must never reach memory.
    dy = np.ones((3, 4), f32)
    for bad in (-1, 3, 2**31 - 1):
        which = np.zeros((3, 4), np.int32)
        which[1, 2], which[2, 0] = bad, 7
        raises_everywhere(name, ValueError, rf"which holds {bad}, outside \[0, 3\)",
                          "maxout_backward", dy, which, 3)
        which = np.zeros((3, 4), np.int32)
        which[2, 1] = bad if bad != 3 else 4
        raises_everywhere(name, ValueError, r"in row 2, outside \[0, 4\) \(the length of "
                          r"sequence 2\)", "reduce_max_backward", dy, which,
                          np.array([3, 1, 4]))
    # Past the first vector of units, and two bad ones: the first in flat order is named.
    for pieces in (2, 3, 4, 6):
        which = np.zeros((5, 40), np.int32)
        which[3, 17], which[4, 2] = pieces + 1, -2
        raises_everywhere(name, ValueError, rf"which holds {pieces + 1}, outside \[0, {pieces}\)",
                          "maxout_backward", np.ones((5, 40), f32), which, pieces)
    table = np.ones((5, 2), f32)
    for indices in (np.array([[0, 1], [5, -1]]), np.array([[0, -3], [5, 9]], np.int32),
                    np.array([[4, 5]], np.uint32), np.array([[2**63 + 5]], np.uint64)):
        first = int(next(v for v in indices.reshape(-1).tolist() if not 0 <= v < 5))
        raises_everywhere(name, ValueError, rf"gather_add: indices holds {first}, outside",
                          "gather_add", table, indices)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_a_window_wider_than_every_sequence(name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3)).astype(f32)
    lengths = np.array([2, 0, 3, 4])
    for nw in (4, 50):
        assert_close(call(name, "seq2col", x, nw=nw, lengths=lengths),
                     call("reference", "seq2col", x, nw=nw, lengths=lengths))
        dy = rng.standard_normal((9, 3 * (2 * nw + 1))).astype(f32)
        assert_close(call(name, "seq2col_backward", dy, nw=nw, lengths=lengths),
                     call("reference", "seq2col_backward", dy, nw=nw, lengths=lengths))
    # No columns: a window of 2**32 - 1 slots is still an empty row.
    assert call(name, "seq2col", np.zeros((3, 0), f32), nw=2**31 - 1).shape == (3, 0)
