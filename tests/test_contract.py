"""The op contract: same signatures, same errors, same ``out=`` behaviour on every backend."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from support import ALL_BACKEND_PARAMS, to_backend

from fastnn import backends, ops

f32 = np.float32


def _signature(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op", ops.__all__)
def test_backend_signature_matches_ops(name, op):
    backend = backends.get(name)
    assert _signature(getattr(backend, op)) == _signature(getattr(ops, op)), (
        f"{name}.{op} drifted from fastnn.ops.{op}")


def test_every_registered_backend_is_reported():
    available = backends.available()
    assert "reference" in available
    assert set(available) | set(backends.unavailable()) == set(backends.names())
    for why in backends.unavailable().values():
        assert why  # every missing backend says why


def test_cpu_backend_is_built():
    """The C++ backend is part of every install; only FASTNN_DISABLE_NATIVE hides it."""
    import os

    if os.environ.get("FASTNN_DISABLE_NATIVE", "") in ("", "0"):
        assert "cpu" in backends.available(), backends.unavailable().get("cpu")
        assert backends.default_for().name == "cpu"


# Bad input: (id, op, args, kwargs, exception type, message pattern)
x4 = np.zeros((2, 5, 5, 3), f32)
w4 = np.zeros((3, 3, 3, 4), f32)


def _adam_arrays():
    """param, grad, m and v for adam_update, each its own array of 3."""
    return tuple(np.zeros(3, f32) for _ in range(4))


_ADAM_ARRAYS = _adam_arrays()
BAD = [
    ("relu-int", "relu", (np.arange(3),), {}, TypeError,
     "relu: x must be float32 or float64, got int64"),
    ("relu-complex", "relu", (np.zeros(2, complex),), {}, TypeError, "relu: x must be float32"),
    ("relu-none", "relu", (None,), {}, TypeError, "relu: x must be an array, got None"),
    ("relu-out-shape", "relu", (np.zeros(3, f32),), {"out": np.zeros(4, f32)}, ValueError,
     r"relu: out must have shape \(3,\), got \(4,\)"),
    ("relu-out-dtype", "relu", (np.zeros(3, f32),), {"out": np.zeros(3)}, TypeError,
     "relu: out must have dtype float32, got float64"),
    ("relu-out-strided", "relu", (np.zeros(3, f32),), {"out": np.zeros(6, f32)[::2]},
     ValueError, "relu: out must be C-contiguous"),
    ("relu-out-readonly", "relu", (np.zeros(3, f32),),
     {"out": np.broadcast_to(np.zeros(1, f32), (3,))}, ValueError, "relu: out must be"),
    ("tanh_backward-shape", "tanh_backward", (np.zeros(3, f32), np.zeros(4, f32)), {},
     ValueError, r"tanh_backward: y must have shape \(3,\), got \(4,\)"),
    ("sigmoid_backward-dtype", "sigmoid_backward", (np.zeros(3, f32), np.zeros(3)), {},
     TypeError, "sigmoid_backward: y must be float32 like the other inputs, got float64"),
    ("gemm-1d", "gemm", (np.zeros(3, f32), np.zeros((3, 3), f32)), {}, ValueError,
     r"gemm: a must be 2-D, got shape \(3,\)"),
    ("gemm-inner", "gemm", (np.zeros((2, 3), f32), np.zeros((4, 5), f32)), {}, ValueError,
     "gemm: inner dimensions differ"),
    ("gemm-beta", "gemm", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)), {"beta": 1.0},
     ValueError, "gemm: beta must be 0 when out is None"),
    ("gemm-alpha-nan", "gemm", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"alpha": float("nan")}, ValueError, "gemm: alpha must be finite"),
    # With out= given, the cpu backend first offers the call to its binding; what that
    # refuses must still get the ops layer's own words.
    ("gemm-out-inner", "gemm", (np.zeros((2, 3), f32), np.zeros((4, 5), f32)),
     {"out": np.zeros((2, 5), f32)}, ValueError, "gemm: inner dimensions differ"),
    ("gemm-out-shape", "gemm", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"out": np.zeros((5, 2), f32)}, ValueError, r"gemm: out must have shape \(2, 5\)"),
    ("gemm-out-dtype", "gemm", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"out": np.zeros((2, 5))}, TypeError, "gemm: out must have dtype float32"),
    ("gemm-out-int", "gemm", (np.zeros((2, 3), int), np.zeros((3, 5), int)),
     {"out": np.zeros((2, 5), f32)}, TypeError, "gemm: a must be float32 or float64"),
    ("gemm-out-beta-inf", "gemm", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"out": np.zeros((2, 5), f32), "beta": float("inf")}, ValueError,
     "gemm: beta must be finite"),
    ("linear-out-bias", "linear", (np.zeros((2, 3), f32), np.zeros((3, 5), f32),
                                   np.zeros(4, f32)), {"out": np.zeros((2, 5), f32)},
     ValueError, r"linear: b must have shape \(5,\)"),
    ("linear-out-activation", "linear", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"out": np.zeros((2, 5), f32), "activation": "gelu"}, ValueError,
     "linear: activation must be"),
    ("linear-rows", "linear", (np.zeros((2, 3), f32), np.zeros((4, 5), f32)), {}, ValueError,
     r"linear: w must have 3 rows to match x, got shape \(4, 5\)"),
    ("linear-bias", "linear", (np.zeros((2, 3), f32), np.zeros((3, 5), f32), np.zeros(4, f32)),
     {}, ValueError, r"linear: b must have shape \(5,\), got \(4,\)"),
    ("linear-activation", "linear", (np.zeros((2, 3), f32), np.zeros((3, 5), f32)),
     {"activation": "gelu"}, ValueError, "linear: activation must be None, 'relu'"),
    ("conv2d_relu_max_pool2d-small", "conv2d_relu_max_pool2d",
     (np.zeros((2, 1, 5, 3), f32), w4), {"padding": "same"}, ValueError,
     r"conv2d_relu_max_pool2d: the 2x2 pool does not fit the convolution's \(1, 5\) output"),
    ("conv2d_relu_max_pool2d-channels", "conv2d_relu_max_pool2d",
     (x4, np.zeros((3, 3, 2, 4), f32)), {}, ValueError,
     "conv2d_relu_max_pool2d: w must have 3 input channels to match x, got 2"),
    ("conv2d_relu_max_pool2d-bias-dtype", "conv2d_relu_max_pool2d", (x4, w4, np.zeros(4)), {},
     TypeError, "conv2d_relu_max_pool2d: b must be float32 like the other inputs, got float64"),
    ("conv2d-rank", "conv2d", (np.zeros((28, 28), f32), w4), {}, ValueError,
     r"conv2d: x must be 4-D NHWC, got shape \(28, 28\)"),
    ("conv2d-rank-nchw", "conv2d", (np.zeros((28, 28), f32), w4), {"layout": "NCHW"},
     ValueError, r"conv2d: x must be 4-D NCHW, got shape \(28, 28\)"),
    ("conv2d-layout", "conv2d", (x4, w4), {"layout": "NWHC"}, ValueError,
     "conv2d: layout must be 'NHWC' or 'NCHW', got 'NWHC'"),
    ("conv2d-channels", "conv2d", (x4, np.zeros((3, 3, 2, 4), f32)), {}, ValueError,
     "conv2d: w must have 3 input channels to match x, got 2"),
    ("conv2d-w-dtype", "conv2d", (x4, w4.astype(np.float64)), {}, TypeError,
     "conv2d: w must be float32 like the other inputs, got float64"),
    ("conv2d-bias", "conv2d", (x4, w4, np.zeros(3, f32)), {}, ValueError,
     r"conv2d: b must have shape \(4,\), got \(3,\)"),
    ("conv2d-too-big", "conv2d", (x4, np.zeros((7, 7, 3, 4), f32)), {}, ValueError,
     "conv2d: the kernel .* does not fit the padded input"),
    ("conv2d-stride0", "conv2d", (x4, w4), {"stride": 0}, ValueError,
     "conv2d: stride must be >= 1, got 0"),
    ("conv2d-stride-float", "conv2d", (x4, w4), {"stride": 1.5}, TypeError,
     "conv2d: stride must be an int or a pair of ints, got 1.5"),
    ("conv2d-padding", "conv2d", (x4, w4), {"padding": "full"}, ValueError,
     "conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    ("conv2d-padding-negative", "conv2d", (x4, w4), {"padding": -1}, ValueError,
     "conv2d: padding must be >= 0, got -1"),
    ("conv2d-dilation", "conv2d", (x4, w4), {"dilation": 0}, ValueError,
     "conv2d: dilation must be >= 1, got 0"),
    ("conv2d-empty-kernel", "conv2d", (x4, np.zeros((3, 3, 3, 0), f32)), {}, ValueError,
     "conv2d: w must have a non-empty kernel"),
    ("conv2d_backward_data-dy", "conv2d_backward_data",
     (np.zeros((2, 4, 4, 4), f32), w4, x4.shape), {}, ValueError,
     r"conv2d_backward_data: dy must have shape \(2, 3, 3, 4\), got \(2, 4, 4, 4\)"),
    ("conv2d_backward_data-x_shape", "conv2d_backward_data",
     (np.zeros((2, 3, 3, 4), f32), w4, (2, 5, 5)), {}, ValueError,
     "conv2d_backward_data: x_shape must be a tuple of 4 non-negative ints"),
    ("conv2d_backward_weights-w_shape", "conv2d_backward_weights",
     (np.zeros((2, 3, 3, 4), f32), x4, (3, 3, 2, 4)), {}, ValueError,
     "conv2d_backward_weights: w must have 3 input channels to match x, got 2"),
    ("bias_backward-0d", "bias_backward", (np.zeros((), f32),), {}, ValueError,
     "bias_backward: dy must be at least 1-D"),
    ("max_pool2d-kernel0", "max_pool2d", (x4,), {"kernel": 0}, ValueError,
     "max_pool2d: kernel must be >= 1, got 0"),
    ("max_pool2d-padding", "max_pool2d", (x4,), {"kernel": 2, "padding": 2}, ValueError,
     "max_pool2d: padding must be at most half the kernel"),
    ("max_pool2d-too-big", "max_pool2d", (x4,), {"kernel": 6}, ValueError,
     r"max_pool2d: kernel \(6, 6\) does not fit the padded input"),
    ("max_pool2d-rank", "max_pool2d", (np.zeros((5, 5, 3), f32),), {"kernel": 2}, ValueError,
     r"max_pool2d: x must be 4-D NHWC, got shape \(5, 5, 3\)"),
    ("max_pool2d_backward-argmax-dtype", "max_pool2d_backward",
     (np.zeros((2, 2, 2, 3), f32), np.zeros((2, 2, 2, 3), np.int32), x4.shape), {}, TypeError,
     "max_pool2d_backward: argmax must be int64, got int32"),
    ("avg_pool2d_backward-dy", "avg_pool2d_backward", (np.zeros((2, 3, 3, 3), f32), x4.shape),
     {"kernel": 2}, ValueError, r"avg_pool2d_backward: dy must have shape \(2, 2, 2, 3\)"),
    ("softmax-0d", "softmax", (np.zeros((), f32),), {}, ValueError,
     "softmax: x must be at least 1-D"),
    ("sce-range", "softmax_cross_entropy", (np.zeros((2, 3), f32), np.array([0, 3])), {},
     ValueError, r"softmax_cross_entropy: labels must be in \[0, 3\), got values in \[0, 3\]"),
    ("sce-negative", "softmax_cross_entropy", (np.zeros((2, 3), f32), np.array([-1, 0])), {},
     ValueError, r"softmax_cross_entropy: labels must be in \[0, 3\)"),
    ("sce-length", "softmax_cross_entropy", (np.zeros((2, 3), f32), np.array([0, 1, 2])), {},
     ValueError, r"softmax_cross_entropy: integer labels must have shape \(2,\)"),
    ("sce-labels-str", "softmax_cross_entropy", (np.zeros((2, 3), f32), np.array(["a", "b"])),
     {}, TypeError, "softmax_cross_entropy: labels must be integer class indices"),
    ("sce-empty", "softmax_cross_entropy", (np.zeros((0, 3), f32), np.zeros(0, np.int64)), {},
     ValueError, "softmax_cross_entropy: logits must have at least one row"),
    ("sce-onehot-shape", "softmax_cross_entropy", (np.zeros((2, 3), f32), np.zeros((2, 4), f32)),
     {}, ValueError, r"softmax_cross_entropy: labels must have shape \(2, 3\)"),
    ("sce_backward-dloss", "softmax_cross_entropy_backward",
     ("x", np.zeros((2, 3), f32), np.array([0, 1])), {}, TypeError,
     "softmax_cross_entropy_backward: dloss must be a real number"),
    ("mse-shape", "mse_loss", (np.zeros((3, 1), f32), np.zeros((3,), f32)), {}, ValueError,
     r"mse_loss: target must have shape \(3, 1\), got \(3,\)"),
    ("mse-empty", "mse_loss", (np.zeros((0, 1), f32), np.zeros((0, 1), f32)), {}, ValueError,
     "mse_loss: prediction must have at least one row"),
    ("lrn-radius", "local_response_norm", (x4,), {"depth_radius": -1}, ValueError,
     "local_response_norm: depth_radius must be a non-negative int, got -1"),
    ("lrn-beta", "local_response_norm", (x4,), {"beta": -0.5}, ValueError,
     "local_response_norm: beta must be >= 0.0, got -0.5"),
    ("lrn-bias", "local_response_norm", (x4,), {"bias": 0.0}, ValueError,
     "local_response_norm: bias must be > 0.0, got 0.0"),
    ("lrn_backward-scale", "local_response_norm_backward",
     (x4, x4, x4, np.zeros((2, 5, 5, 4), f32)), {}, ValueError,
     r"local_response_norm_backward: scale must have shape \(2, 5, 5, 3\)"),
    ("dropout-keep0", "dropout", (x4,), {"keep_prob": 0.0, "seed": 1}, ValueError,
     "dropout: keep_prob must be > 0.0, got 0.0"),
    ("dropout-keep-big", "dropout", (x4,), {"keep_prob": 1.5, "seed": 1}, ValueError,
     "dropout: keep_prob must be <= 1.0, got 1.5"),
    ("dropout-seed", "dropout", (x4,), {"keep_prob": 0.5, "seed": -1}, ValueError,
     r"dropout: seed must be an int in \[0, 2\*\*64\), got -1"),
    ("dropout_backward-mask", "dropout_backward", (x4, np.ones(x4.shape, f32)),
     {"keep_prob": 0.5}, TypeError, "dropout_backward: mask must be bool, got float32"),
    ("sgd-velocity", "sgd_update", (np.zeros(3, f32), np.zeros(3, f32)),
     {"lr": 0.1, "momentum": 0.9}, ValueError,
     "sgd_update: velocity must be given exactly when momentum != 0"),
    ("sgd-grad-shape", "sgd_update", (np.zeros(3, f32), np.zeros(4, f32)), {"lr": 0.1},
     ValueError, r"sgd_update: grad must have shape \(3,\), got \(4,\)"),
    ("sgd-param-strided", "sgd_update", (np.zeros(6, f32)[::2], np.zeros(3, f32)), {"lr": 0.1},
     ValueError, "sgd_update: param must be C-contiguous, aligned and writeable"),
    ("sgd-lr", "sgd_update", (np.zeros(3, f32), np.zeros(3, f32)), {"lr": -1.0}, ValueError,
     "sgd_update: lr must be >= 0.0, got -1.0"),
    ("sgd-list", "sgd_update", ([1.0, 2.0], np.zeros(2, f32)), {"lr": 0.1}, TypeError,
     "sgd_update: param must be a float32 or float64 array"),
    ("adam-step", "adam_update", (np.zeros(3, f32),) * 4, {"step": 0}, ValueError,
     "adam_update: step must be an int >= 1, got 0"),
    ("adam-m-dtype", "adam_update", (np.zeros(3, f32), np.zeros(3, f32), np.zeros(3),
                                     np.zeros(3, f32)), {"step": 1}, TypeError,
     r"adam_update: m must have the dtype of param \(float32\), got float64"),
    ("adam-average-rate-alone", "adam_update", _adam_arrays(), {"step": 1, "average_rate": 0.1},
     ValueError, r"adam_update: average_rate=0.1 needs an average array \(pass average="),
    ("adam-average-shape", "adam_update", _adam_arrays(),
     {"step": 1, "average": np.zeros(4, f32), "average_rate": 0.1}, ValueError,
     r"adam_update: average must have shape \(3,\), got \(4,\)"),
    ("adam-average-is-param", "adam_update", _ADAM_ARRAYS,
     {"step": 1, "average": _ADAM_ARRAYS[0], "average_rate": 0.1}, ValueError,
     "adam_update: param and average share memory"),
    ("adam-param-decay", "adam_update", _adam_arrays(), {"step": 1, "param_decay": 2.0},
     ValueError, "adam_update: param_decay must be <= 1.0, got 2.0"),
    ("adam-grad-scale", "adam_update", _adam_arrays(), {"step": 1, "grad_scale": float("nan")},
     ValueError, "adam_update: grad_scale must be finite, got nan"),
    # The sequence ops (Thinc's): lengths, windows, pieces and index arrays.
    ("maxout-rank", "maxout", (np.zeros((2, 3), f32),), {}, ValueError,
     r"maxout: x must be 3-D, got shape \(2, 3\)"),
    ("maxout-no-pieces", "maxout", (np.zeros((2, 3, 0), f32),), {}, ValueError,
     "maxout: x must have at least one piece"),
    ("maxout_backward-which-dtype", "maxout_backward",
     (np.zeros((2, 3), f32), np.zeros((2, 3), np.int64), 4), {}, TypeError,
     "maxout_backward: which must be int32, got int64"),
    ("maxout_backward-which-shape", "maxout_backward",
     (np.zeros((2, 3), f32), np.zeros((3, 2), np.int32), 4), {}, ValueError,
     r"maxout_backward: which must have shape \(2, 3\), got \(3, 2\)"),
    ("maxout_backward-pieces", "maxout_backward",
     (np.zeros((2, 3), f32), np.zeros((2, 3), np.int32), 0), {}, ValueError,
     "maxout_backward: pieces must be >= 1, got 0"),
    ("maxout_backward-pieces-float", "maxout_backward",
     (np.zeros((2, 3), f32), np.zeros((2, 3), np.int32), 2.0), {}, TypeError,
     "maxout_backward: pieces must be an int, got 2.0"),
    ("maxout_backward-which-range", "maxout_backward",
     (np.zeros((2, 3), f32), np.array([[0, 1, 2], [3, 0, 5]], np.int32), 3), {}, ValueError,
     r"maxout_backward: which holds 3, outside \[0, 3\)"),
    ("seq2col-nw", "seq2col", (np.zeros((5, 2), f32),), {"nw": -1}, ValueError,
     "seq2col: nw must be >= 0, got -1"),
    ("seq2col-nw-huge", "seq2col", (np.zeros((5, 2), f32),), {"nw": 2**31}, ValueError,
     r"seq2col: nw must be < 2\*\*31"),
    ("seq2col-lengths-sum", "seq2col", (np.zeros((5, 2), f32),),
     {"nw": 1, "lengths": np.array([2, 2], np.int32)}, ValueError,
     r"seq2col: lengths must sum to the rows of x \(5\), got 4"),
    ("seq2col-lengths-float", "seq2col", (np.zeros((5, 2), f32),),
     {"nw": 1, "lengths": np.array([2.0, 3.0])}, TypeError,
     "seq2col: lengths must be an integer array, got float64"),
    ("seq2col_backward-columns", "seq2col_backward", (np.zeros((5, 7), f32),), {"nw": 1},
     ValueError, r"seq2col_backward: dy must have a multiple of 2 \* nw \+ 1 = 3 columns"),
    ("reduce_sum-lengths-negative", "reduce_sum", (np.zeros((5, 2), f32), np.array([6, -1])),
     {}, ValueError, "reduce_sum: lengths must all be >= 0, got -1"),
    ("reduce_sum-lengths-sum", "reduce_sum", (np.zeros((5, 2), f32), np.array([2, 2])), {},
     ValueError, r"reduce_sum: lengths must sum to the rows of x \(5\), got 4"),
    ("reduce_mean-lengths-2d", "reduce_mean", (np.zeros((5, 2), f32), np.array([[5]])), {},
     ValueError, r"reduce_mean: lengths must be 1-D, got shape \(1, 1\)"),
    ("reduce_max-zero-length", "reduce_max", (np.zeros((5, 2), f32), np.array([5, 0])), {},
     ValueError, r"reduce_max: lengths must all be > 0 \(a maximum over no rows is undefined\)"),
    ("reduce_sum_backward-lengths-count", "reduce_sum_backward",
     (np.zeros((3, 2), f32), np.array([1, 2])), {}, ValueError,
     r"reduce_sum_backward: lengths must have one entry per row of dy \(3\), got shape \(2,\)"),
    ("reduce_mean_backward-lengths-negative", "reduce_mean_backward",
     (np.zeros((2, 2), f32), np.array([1, -2])), {}, ValueError,
     "reduce_mean_backward: lengths must all be >= 0, got -2"),
    ("reduce_max_backward-zero-length", "reduce_max_backward",
     (np.zeros((2, 2), f32), np.zeros((2, 2), np.int32), np.array([1, 0])), {}, ValueError,
     "reduce_max_backward: lengths must all be > 0"),
    ("reduce_max_backward-which-range", "reduce_max_backward",
     (np.zeros((2, 2), f32), np.array([[0, 1], [2, 0]], np.int32), np.array([2, 2])), {},
     ValueError,
     r"reduce_max_backward: which holds 2 in row 1, outside \[0, 2\) \(the length of sequence 1\)"),
    ("gather_add-range", "gather_add", (np.zeros((4, 3), f32), np.array([[0, 4], [1, 2]])), {},
     ValueError, r"gather_add: indices holds 4, outside \[0, 4\)"),
    ("gather_add-negative", "gather_add",
     (np.zeros((4, 3), f32), np.array([[0, 1], [-1, 2]], np.int32)), {}, ValueError,
     r"gather_add: indices holds -1, outside \[0, 4\)"),
    ("gather_add-float-indices", "gather_add", (np.zeros((4, 3), f32), np.zeros((2, 2), f32)),
     {}, TypeError, "gather_add: indices must be an integer array, got float32"),
    ("gather_add-rank", "gather_add", (np.zeros((4, 3), f32), np.zeros(2, np.int32)), {},
     ValueError, r"gather_add: indices must be 2-D, got shape \(2,\)"),
]


def _call(name, op, args, kwargs):
    args = [to_backend(name, a) for a in args]
    kwargs = {k: to_backend(name, v) for k, v in kwargs.items()}
    with backends.use(name):
        getattr(ops, op)(*args, **kwargs)


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("id_, op, args, kwargs, exc, pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_the_same_clear_error(name, id_, op, args, kwargs, exc, pattern):
    with pytest.raises(exc) as info:
        _call(name, op, args, kwargs)
    message = str(info.value)
    assert message.startswith(f"{op}: "), message
    assert re.search(pattern, message), message
    # The very same message on the reference backend: nothing backend-specific leaks out.
    with pytest.raises(exc) as reference_info:
        _call("reference", op, args, kwargs)
    assert str(reference_info.value) == message


def test_bad_input_cases_cover_every_op_family():
    covered = {b[1] for b in BAD}
    families = {"gemm", "linear", "conv2d", "conv2d_backward_data", "conv2d_backward_weights",
                "conv2d_relu_max_pool2d",
                "bias_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d_backward",
                "relu", "tanh_backward", "sigmoid_backward", "softmax",
                "softmax_cross_entropy", "softmax_cross_entropy_backward", "mse_loss",
                "local_response_norm", "local_response_norm_backward", "dropout",
                "dropout_backward", "sgd_update", "adam_update", "maxout", "maxout_backward",
                "seq2col", "seq2col_backward", "reduce_sum", "reduce_sum_backward",
                "reduce_mean", "reduce_mean_backward", "reduce_max", "reduce_max_backward",
                "gather_add"}
    assert families <= covered, families - covered


# out=: the op writes into the caller's buffer and returns that very object.
OUT_CASES = [
    ("relu", (np.ones(5, f32),), {}, (5,)),
    ("sigmoid", (np.ones(5, f32),), {}, (5,)),
    ("tanh", (np.ones(5, f32),), {}, (5,)),
    ("relu_backward", (np.ones(5, f32), np.ones(5, f32)), {}, (5,)),
    ("sigmoid_backward", (np.ones(5, f32), np.ones(5, f32)), {}, (5,)),
    ("tanh_backward", (np.ones(5, f32), np.ones(5, f32)), {}, (5,)),
    ("gemm", (np.ones((2, 3), f32), np.ones((3, 4), f32)), {}, (2, 4)),
    ("linear", (np.ones((2, 3), f32), np.ones((3, 4), f32), np.ones(4, f32)), {}, (2, 4)),
    ("conv2d", (x4, w4), {"padding": "same"}, (2, 5, 5, 4)),
    ("conv2d_backward_data", (np.ones((2, 5, 5, 4), f32), w4, x4.shape), {"padding": 1},
     x4.shape),
    ("conv2d_backward_weights", (np.ones((2, 5, 5, 4), f32), x4, w4.shape), {"padding": 1},
     w4.shape),
    ("bias_backward", (x4,), {}, (3,)),
    ("avg_pool2d", (x4,), {"kernel": 2}, (2, 2, 2, 3)),
    ("avg_pool2d_backward", (np.ones((2, 2, 2, 3), f32), x4.shape), {"kernel": 2}, x4.shape),
    ("max_pool2d_backward", (np.ones((2, 2, 2, 3), f32), np.zeros((2, 2, 2, 3), np.int64),
                             x4.shape), {}, x4.shape),
    ("softmax", (np.ones((2, 3), f32),), {}, (2, 3)),
    ("log_softmax", (np.ones((2, 3), f32),), {}, (2, 3)),
    ("softmax_cross_entropy_backward", (1.0, np.full((2, 3), 1 / 3, f32), np.array([0, 2])), {},
     (2, 3)),
    ("local_response_norm_backward", (x4, x4, x4, np.ones(x4.shape, f32)), {}, x4.shape),
    ("dropout_backward", (x4, np.ones(x4.shape, bool)), {"keep_prob": 0.5}, x4.shape),
    ("maxout_backward", (np.ones((3, 4), f32), np.ones((3, 4), np.int32), 2), {}, (3, 4, 2)),
    ("seq2col", (np.ones((5, 2), f32),), {"nw": 1, "lengths": np.array([2, 3])}, (5, 6)),
    ("seq2col_backward", (np.ones((5, 6), f32),), {"nw": 1}, (5, 2)),
    ("reduce_sum", (np.ones((5, 2), f32), np.array([2, 0, 3])), {}, (3, 2)),
    ("reduce_mean", (np.ones((5, 2), f32), np.array([2, 0, 3])), {}, (3, 2)),
    ("reduce_sum_backward", (np.ones((3, 2), f32), np.array([2, 0, 3])), {}, (5, 2)),
    ("reduce_mean_backward", (np.ones((3, 2), f32), np.array([2, 0, 3])), {}, (5, 2)),
    ("reduce_max_backward", (np.ones((2, 2), f32), np.ones((2, 2), np.int32), np.array([2, 3])),
     {}, (5, 2)),
    ("gather_add", (np.ones((4, 3), f32), np.array([[0, 3], [1, 1]])), {}, (2, 3)),
]


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("op, args, kwargs, shape", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_out_returns_the_very_object(name, op, args, kwargs, shape):
    out = to_backend(name, np.full(shape, np.nan, f32))
    args = [to_backend(name, a) for a in args]
    with backends.use(name):
        result = getattr(ops, op)(*args, **kwargs, out=out)
    assert result is out
    assert not np.isnan(result.sum() if name != "cuda" else float(result.sum()))


def test_dropout_out_is_the_first_result():
    out = np.empty(x4.shape, f32)
    y, mask = ops.dropout(np.ones(x4.shape, f32), keep_prob=0.5, seed=3, out=out)
    assert y is out and mask.dtype == np.bool_


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
def test_inputs_are_not_modified_or_kept(name):
    import gc
    import weakref

    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(f32)
    before = x.copy()
    with backends.use(name):
        ops.conv2d(x, w4 + 1, padding=1, activation="relu")
        ops.max_pool2d(x, kernel=2)
        ops.relu(x)
    np.testing.assert_array_equal(x, before)
    ref = weakref.ref(x)
    del x
    gc.collect()
    assert ref() is None


def test_numpy_arrays_to_a_gpu_backend_get_a_clear_error(monkeypatch):
    """A backend that computes on another array type names what it takes."""
    from fastnn.backends.base import Backend

    class FakeGpu(Backend):
        name = "fake-gpu"
        array_kind = "CuPy"

        def accepts(self, array):
            return False

    backends.register("fake-gpu", FakeGpu)
    try:
        with backends.use("fake-gpu"), pytest.raises(
                TypeError, match="relu: the fake-gpu backend takes CuPy arrays, got numpy.ndarray"):
            ops.relu(np.ones(3, f32))
    finally:
        backends._factories.pop("fake-gpu")
        backends._instances.pop("fake-gpu", None)
