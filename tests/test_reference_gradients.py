"""Central finite-difference checks, in float64, of every backward op of the reference backend.

The reference backend is the oracle every other backend is compared with, so its gradients
are checked here against the definition: for a forward ``f`` and a random upstream gradient
``dy``, the gradient of the scalar ``sum(dy * f(x))`` by central differences must equal what
the backward op returns. Inputs stay away from the points where an op is not differentiable
(relu at 0, ties inside a max-pool window).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastnn import backends, ops

RTOL = 1e-6
ATOL = 1e-8


@pytest.fixture(autouse=True)
def _reference_backend():
    with backends.use("reference"):
        yield


def numerical_gradient(f, x, eps=1e-6):
    """Gradient of the scalar function ``f`` at ``x`` by central differences, element by element."""
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + eps
        above = float(f(x))
        flat_x[i] = saved - eps
        below = float(f(x))
        flat_x[i] = saved
        flat_grad[i] = (above - below) / (2 * eps)
    return grad


def assert_gradient(f, x, analytic, *, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(analytic, numerical_gradient(f, x), rtol=rtol, atol=atol)


def rng_for(*key):
    """A generator seeded from ``key`` the same way in every run (``hash`` is salted)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def nchw(shape_nhwc):
    n, h, w, c = shape_nhwc
    return (n, c, h, w)


def oihw(shape_hwio):
    kh, kw, i, o = shape_hwio
    return (o, i, kh, kw)


# --------------------------------------------------------------------------- convolution

# (x NHWC shape, w HWIO shape, stride, padding, dilation)
CONV_CASES = [
    ((2, 5, 6, 3), (3, 2, 3, 4), 1, 0, 1),
    ((1, 7, 6, 2), (3, 3, 2, 3), 2, 1, 1),
    ((2, 6, 7, 2), (2, 3, 2, 2), (1, 2), "same", 1),
    ((1, 8, 7, 2), (3, 2, 2, 2), 2, "same", 2),
    ((2, 5, 5, 2), (2, 2, 2, 3), 1, "valid", 2),
    ((1, 6, 5, 2), (3, 3, 2, 2), (2, 1), ((1, 2), (0, 1)), (2, 1)),
    ((1, 4, 3, 1), (2, 2, 1, 2), 2, (1, 0), 1),
    ((2, 1, 1, 3), (1, 1, 3, 2), 1, 0, 1),
    ((1, 1, 1, 2), (3, 3, 2, 2), 1, "same", 1),
]


def _conv_ids(case):
    x_shape, w_shape, stride, padding, dilation = case
    return f"x{x_shape}-w{w_shape}-s{stride}-p{padding}-d{dilation}".replace(" ", "")


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[_conv_ids(c) for c in CONV_CASES])
def test_conv2d_gradients(case, layout):
    x_shape, w_shape, stride, padding, dilation = case
    if layout == "NCHW":
        x_shape, w_shape = nchw(x_shape), oihw(w_shape)
    rng = rng_for("conv", case, layout)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[3] if layout == "NHWC" else w_shape[0])
    options = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    y = ops.conv2d(x, w, b, **options)
    dy = rng.standard_normal(y.shape)

    dx = ops.conv2d_backward_data(dy, w, x.shape, **options)
    dw = ops.conv2d_backward_weights(dy, x, w.shape, **options)
    db = ops.bias_backward(dy, layout=layout)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape

    assert_gradient(lambda v: np.sum(dy * ops.conv2d(v, w, b, **options)), x, dx)
    assert_gradient(lambda v: np.sum(dy * ops.conv2d(x, v, b, **options)), w, dw)
    assert_gradient(lambda v: np.sum(dy * ops.conv2d(x, w, v, **options)), b, db)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_conv2d_fused_activation_gradients(activation, layout):
    rng = rng_for("conv-activation", activation, layout)
    x_shape, w_shape = (2, 5, 4, 2), (3, 3, 2, 3)
    if layout == "NCHW":
        x_shape, w_shape = nchw(x_shape), oihw(w_shape)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(3)
    options = dict(stride=1, padding="same", layout=layout)
    pre = ops.conv2d(x, w, b, **options)
    if activation == "relu":
        assert np.min(np.abs(pre)) > 1e-4  # no kink within reach of the differences
    y = ops.conv2d(x, w, b, activation=activation, **options)
    dy = rng.standard_normal(y.shape)
    g = dy if activation is None else getattr(ops, f"{activation}_backward")(dy, y)
    dx = ops.conv2d_backward_data(g, w, x.shape, **options)
    dw = ops.conv2d_backward_weights(g, x, w.shape, **options)

    def loss(xv=x, wv=w):
        return np.sum(dy * ops.conv2d(xv, wv, b, activation=activation, **options))

    assert_gradient(lambda v: loss(xv=v), x, dx)
    assert_gradient(lambda v: loss(wv=v), w, dw)


# --------------------------------------------------------------------------- pooling

# (x NHWC shape, kernel, stride, padding)
POOL_CASES = [
    ((2, 4, 6, 3), 2, None, 0),
    ((1, 7, 7, 2), 3, 2, 1),  # overlapping windows and padding
    ((2, 5, 6, 2), (3, 2), (1, 2), (1, 1)),
    ((1, 3, 3, 2), 3, 1, 0),
    ((1, 6, 5, 1), (2, 3), 1, (1, 0)),
    ((2, 1, 1, 2), 1, None, 0),
    ((1, 2, 2, 1), 3, 1, 1),  # every window includes padding
]


def _pool_ids(case):
    x_shape, kernel, stride, padding = case
    return f"x{x_shape}-k{kernel}-s{stride}-p{padding}".replace(" ", "")


def distinct_values(rng, shape):
    """Values at least 0.01 apart, so no max-pool window has a near tie."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.01 - size * 0.005).reshape(shape)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[_pool_ids(c) for c in POOL_CASES])
def test_max_pool2d_gradient(case, layout):
    x_shape, kernel, stride, padding = case
    x_shape = x_shape if layout == "NHWC" else nchw(x_shape)
    rng = rng_for("max_pool", case, layout)
    x = distinct_values(rng, x_shape)
    options = dict(kernel=kernel, stride=stride, padding=padding, layout=layout)
    y, argmax = ops.max_pool2d(x, **options)
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(x.reshape(-1)[argmax], y)
    dy = rng.standard_normal(y.shape)
    dx = ops.max_pool2d_backward(dy, argmax, x.shape)
    assert_gradient(lambda v: np.sum(dy * ops.max_pool2d(v, **options)[0]), x, dx)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[_pool_ids(c) for c in POOL_CASES])
def test_avg_pool2d_gradient(case, layout, count_include_pad):
    x_shape, kernel, stride, padding = case
    x_shape = x_shape if layout == "NHWC" else nchw(x_shape)
    rng = rng_for("avg_pool", case, layout, count_include_pad)
    x = rng.standard_normal(x_shape)
    options = dict(kernel=kernel, stride=stride, padding=padding, layout=layout,
                   count_include_pad=count_include_pad)
    y = ops.avg_pool2d(x, **options)
    dy = rng.standard_normal(y.shape)
    dx = ops.avg_pool2d_backward(dy, x.shape, **options)
    assert_gradient(lambda v: np.sum(dy * ops.avg_pool2d(v, **options)), x, dx)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 3),
    kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
    pad_h=st.booleans(), pad_w=st.booleans(), layout=st.sampled_from(["NHWC", "NCHW"]),
    seed=st.integers(0, 2**16),
)
def test_pool_gradients_drawn_shapes(n, h, w, c, kh, kw, sh, sw, pad_h, pad_w, layout, seed):
    padding = (kh // 2 if pad_h else 0, kw // 2 if pad_w else 0)
    assume(h + 2 * padding[0] >= kh and w + 2 * padding[1] >= kw)  # the kernel fits
    shape = (n, h, w, c) if layout == "NHWC" else (n, c, h, w)
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, shape)
    options = dict(kernel=(kh, kw), stride=(sh, sw), padding=padding, layout=layout)
    with backends.use("reference"):
        y, argmax = ops.max_pool2d(x, **options)
        dy = rng.standard_normal(y.shape)
        dx = ops.max_pool2d_backward(dy, argmax, x.shape)
        assert_gradient(lambda v: np.sum(dy * ops.max_pool2d(v, **options)[0]), x, dx)
        dx = ops.avg_pool2d_backward(dy, x.shape, **options, count_include_pad=False)
        assert_gradient(
            lambda v: np.sum(dy * ops.avg_pool2d(v, **options, count_include_pad=False)), x, dx)


# --------------------------------------------------------------------------- LRN

@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("channels", [3, 7])
@pytest.mark.parametrize("depth_radius", [0, 1, 5])
def test_local_response_norm_gradient(depth_radius, channels, layout):
    rng = rng_for("lrn", depth_radius, channels, layout)
    shape = (2, 3, 2, channels) if layout == "NHWC" else (2, channels, 3, 2)
    x = rng.standard_normal(shape)
    # Large alpha so the cross-channel terms weigh as much as the diagonal ones.
    options = dict(depth_radius=depth_radius, bias=1.5, alpha=0.3, beta=0.75, layout=layout)
    y, scale = ops.local_response_norm(x, **options)
    dy = rng.standard_normal(y.shape)
    dx = ops.local_response_norm_backward(dy, x, y, scale, **options)
    assert_gradient(lambda v: np.sum(dy * ops.local_response_norm(v, **options)[0]), x, dx)


# --------------------------------------------------------------------------- activations

def test_relu_gradient():
    rng = rng_for("relu")
    x = rng.choice([-1.0, 1.0], size=(4, 5)) * rng.uniform(0.1, 1.0, size=(4, 5))
    dy = rng.standard_normal(x.shape)
    dx = ops.relu_backward(dy, ops.relu(x))
    assert_gradient(lambda v: np.sum(dy * ops.relu(v)), x, dx)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_smooth_activation_gradient(name):
    rng = rng_for(name)
    x = rng.standard_normal((4, 5)) * 2
    dy = rng.standard_normal(x.shape)
    forward, backward = getattr(ops, name), getattr(ops, f"{name}_backward")
    dx = backward(dy, forward(x))
    assert_gradient(lambda v: np.sum(dy * forward(v)), x, dx)


# --------------------------------------------------------------------------- losses

def _labels(kind, rng, n, classes):
    if kind == "indices":
        return rng.integers(0, classes, size=n)
    if kind == "one-hot":
        return np.eye(classes)[rng.integers(0, classes, size=n)]
    if kind == "soft":
        soft = rng.uniform(0.1, 1.0, size=(n, classes))
        return soft / soft.sum(axis=1, keepdims=True)
    # Soft targets whose rows do not sum to 1: the backward's probs * sum(labels) term.
    return rng.uniform(0.0, 1.0, size=(n, classes))


@pytest.mark.parametrize("dloss", [1.0, 2.5])
@pytest.mark.parametrize("kind", ["indices", "one-hot", "soft", "unnormalised"])
def test_softmax_cross_entropy_gradient(kind, dloss):
    rng = rng_for("sce", kind)
    logits = rng.standard_normal((5, 4)) * 2
    labels = _labels(kind, rng, 5, 4)
    _, probs = ops.softmax_cross_entropy(logits, labels)
    dx = ops.softmax_cross_entropy_backward(dloss, probs, labels)
    assert_gradient(lambda v: dloss * ops.softmax_cross_entropy(v, labels)[0], logits, dx)


@pytest.mark.parametrize("shape", [(6,), (4, 3), (2, 3, 2)])
def test_mse_loss_gradient(shape):
    rng = rng_for("mse", shape)
    prediction, target = rng.standard_normal(shape), rng.standard_normal(shape)
    _, grad = ops.mse_loss(prediction, target)
    assert_gradient(lambda v: ops.mse_loss(v, target)[0], prediction, grad)


# --------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("keep_prob", [0.3, 0.8, 1.0])
def test_dropout_gradient(keep_prob):
    rng = rng_for("dropout", keep_prob)
    x = rng.standard_normal((6, 7))
    y, mask = ops.dropout(x, keep_prob=keep_prob, seed=1234)
    dy = rng.standard_normal(y.shape)
    dx = ops.dropout_backward(dy, mask, keep_prob=keep_prob)
    assert_gradient(lambda v: np.sum(dy * ops.dropout(v, keep_prob=keep_prob, seed=1234)[0]),
                    x, dx)


# --------------------------------------------------------------------------- linear

@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
def test_linear_gradients_through_gemm_and_bias_backward(activation):
    rng = rng_for("linear", activation)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    if activation == "relu":
        assert np.min(np.abs(x @ w + b)) > 1e-4
    y = ops.linear(x, w, b, activation=activation)
    dy = rng.standard_normal(y.shape)
    g = dy if activation is None else getattr(ops, f"{activation}_backward")(dy, y)
    dx = ops.gemm(g, w, trans_b=True)
    dw = ops.gemm(x, g, trans_a=True)
    db = ops.bias_backward(g)

    def loss(xv=x, wv=w, bv=b):
        return np.sum(dy * ops.linear(xv, wv, bv, activation=activation))

    assert_gradient(lambda v: loss(xv=v), x, dx)
    assert_gradient(lambda v: loss(wv=v), w, dw)
    assert_gradient(lambda v: loss(bv=v), b, db)


@pytest.mark.parametrize("shape", [(4, 6), (1, 1), (2, 3, 5)])
def test_softmax_gradient(shape):
    rng = rng_for("softmax", shape)
    x = rng.standard_normal(shape) * 2
    dy = rng.standard_normal(shape)
    dx = ops.softmax_backward(dy, ops.softmax(x))
    assert_gradient(lambda v: np.sum(dy * ops.softmax(v)), x, dx)


# --------------------------------------------------------------------------- sequences

SEQ_LENGTHS = [[3, 0, 1, 4], [8], [1, 1, 1], [0, 2, 0, 5, 0]]


@pytest.mark.parametrize("pieces", [1, 2, 3, 5])
def test_maxout_gradient(pieces):
    rng = rng_for("maxout", pieces)
    x = distinct_values(rng, (4, 3, pieces))
    y, which = ops.maxout(x)
    dy = rng.standard_normal(y.shape)
    dx = ops.maxout_backward(dy, which, pieces)
    assert_gradient(lambda v: np.sum(dy * ops.maxout(v)[0]), x, dx)


@pytest.mark.parametrize("nw", [0, 1, 2, 3])
@pytest.mark.parametrize("lengths", SEQ_LENGTHS + [None], ids=str)
def test_seq2col_gradient(lengths, nw):
    rng = rng_for("seq2col", lengths, nw)
    rows = 8 if lengths is None else sum(lengths)
    x = rng.standard_normal((rows, 3))
    lengths = None if lengths is None else np.array(lengths)
    dy = rng.standard_normal((rows, 3 * (2 * nw + 1)))
    dx = ops.seq2col_backward(dy, nw=nw, lengths=lengths)
    assert_gradient(lambda v: np.sum(dy * ops.seq2col(v, nw=nw, lengths=lengths)), x, dx)


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_mean"])
@pytest.mark.parametrize("lengths", SEQ_LENGTHS, ids=str)
def test_reduce_sum_and_mean_gradients(name, lengths):
    rng = rng_for(name, lengths)
    lengths = np.array(lengths)
    x = rng.standard_normal((int(lengths.sum()), 4))
    forward, backward = getattr(ops, name), getattr(ops, f"{name}_backward")
    dy = rng.standard_normal((lengths.size, 4))
    assert_gradient(lambda v: np.sum(dy * forward(v, lengths)), x, backward(dy, lengths))


@pytest.mark.parametrize("lengths", [[3, 1, 4], [8], [1, 1, 1], [2, 5, 1, 6]], ids=str)
def test_reduce_max_gradient(lengths):
    rng = rng_for("reduce_max", lengths)
    lengths = np.array(lengths)
    x = distinct_values(rng, (int(lengths.sum()), 4))
    y, which = ops.reduce_max(x, lengths)
    dy = rng.standard_normal(y.shape)
    dx = ops.reduce_max_backward(dy, which, lengths)
    assert_gradient(lambda v: np.sum(dy * ops.reduce_max(v, lengths)[0]), x, dx)


def test_gather_add_gradient_is_the_scatter_add_of_dy():
    """gather_add is linear in the table; its gradient is what Thinc's HashEmbed builds with
    scatter_add: every row of dy added to each table row it gathered."""
    rng = rng_for("gather_add")
    table = rng.standard_normal((6, 3))
    indices = np.array([[0, 2, 2], [5, 0, 1], [2, 2, 2], [4, 3, 0]])
    dy = rng.standard_normal((4, 3))
    d_table = np.zeros_like(table)
    for k in range(indices.shape[1]):
        np.add.at(d_table, indices[:, k], dy)
    assert_gradient(lambda v: np.sum(dy * ops.gather_add(v, indices)), table, d_table)
