"""The reference backend against PyTorch, an independent implementation, in float64.

Forwards are compared with ``torch.nn.functional`` and backwards with torch's autograd.
PyTorch works in NCHW with OIHW weights, so NHWC inputs are transposed on the torch side.
The whole module is skipped where torch is not installed.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastnn import backends, ops

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-10
ATOL = 1e-12


@pytest.fixture(autouse=True)
def _reference_backend():
    with backends.use("reference"):
        yield


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def tensor(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


def to_nchw(a, layout):
    """An image array in ``layout`` as NCHW (what torch takes)."""
    return a if layout == "NCHW" else a.transpose(0, 3, 1, 2)


def from_nchw(a, layout):
    return a if layout == "NCHW" else a.transpose(0, 2, 3, 1)


def to_oihw(w, layout):
    return w if layout == "NCHW" else w.transpose(3, 2, 0, 1)


def from_oihw(w, layout):
    return w if layout == "NCHW" else w.transpose(2, 3, 1, 0)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def explicit_padding(padding, in_hw, kernel_hw, stride_hw, dilation_hw):
    """Padding as ((top, bottom), (left, right)), written independently of fastnn._shapes.

    "same" is TensorFlow's rule: output ceil(input / stride), the odd pixel at the end.
    """
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        pads = []
        for size, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw):
            needed = (int(np.ceil(size / s)) - 1) * s + d * (k - 1) + 1 - size
            needed = max(needed, 0)
            pads.append((needed // 2, needed - needed // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# --------------------------------------------------------------------------- convolution

def check_conv2d(x_shape_nhwc, w_shape_hwio, stride, padding, dilation, layout, rng):
    n, h, w_, c = x_shape_nhwc
    kh, kw, _, c_out = w_shape_hwio
    x = from_nchw(rng.standard_normal((n, c, h, w_)), layout).copy()
    w = from_oihw(rng.standard_normal((c_out, c, kh, kw)), layout).copy()
    b = rng.standard_normal(c_out)
    options = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)

    (top, bottom), (left, right) = explicit_padding(padding, (h, w_), (kh, kw), as_pair(stride),
                                                    as_pair(dilation))
    xt, wt, bt = tensor(to_nchw(x, layout), True), tensor(to_oihw(w, layout), True), tensor(b, True)
    yt = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride=stride,
                  dilation=dilation)
    y = ops.conv2d(x, w, b, **options)
    close(to_nchw(y, layout), yt)

    dy = rng.standard_normal(y.shape)
    yt.backward(tensor(to_nchw(dy, layout)))
    close(to_nchw(ops.conv2d_backward_data(dy, w, x.shape, **options), layout), xt.grad)
    close(to_oihw(ops.conv2d_backward_weights(dy, x, w.shape, **options), layout), wt.grad)
    close(ops.bias_backward(dy, layout=layout), bt.grad)


CONV_CASES = [
    # (x NHWC, w HWIO, stride, padding, dilation)
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, 0, 1),
    ((2, 7, 6, 3), (3, 3, 3, 4), 2, 1, 1),
    ((1, 8, 9, 2), (5, 3, 2, 3), 1, "same", 1),
    ((1, 8, 9, 2), (3, 2, 2, 3), 2, "same", 1),
    ((2, 9, 8, 2), (3, 3, 2, 2), (2, 1), "same", 2),
    ((1, 9, 9, 1), (2, 3, 1, 2), 1, "valid", (2, 3)),
    ((1, 6, 7, 2), (3, 3, 2, 2), 2, ((0, 2), (1, 0)), 1),
    ((1, 1, 1, 3), (1, 1, 3, 5), 1, 0, 1),
    ((2, 28, 28, 1), (5, 5, 1, 8), 1, "same", 1),  # the seed network's first layer
]


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_matches_torch(case, layout):
    check_conv2d(*case, layout, rng_for("conv", case, layout))


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c_in=st.integers(1, 4),
    c_out=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.one_of(st.sampled_from(["same", "valid"]),
                      st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                st.tuples(st.integers(0, 2), st.integers(0, 2)))),
    layout=st.sampled_from(["NHWC", "NCHW"]),
    seed=st.integers(0, 2**16),
)
def test_conv2d_matches_torch_drawn_shapes(n, h, w, c_in, c_out, kh, kw, stride, dilation,
                                           padding, layout, seed):
    (top, bottom), (left, right) = explicit_padding(padding, (h, w), (kh, kw), stride, dilation)
    assume(h + top + bottom >= dilation[0] * (kh - 1) + 1)
    assume(w + left + right >= dilation[1] * (kw - 1) + 1)
    with backends.use("reference"):
        check_conv2d((n, h, w, c_in), (kh, kw, c_in, c_out), stride, padding, dilation, layout,
                     np.random.default_rng(seed))


def test_conv2d_fused_activation_matches_torch():
    rng = rng_for("conv-activation")
    x, w, b = (rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4)),
               rng.standard_normal(4))
    yt = F.conv2d(tensor(to_nchw(x, "NHWC")), tensor(to_oihw(w, "NHWC")), tensor(b), padding=1)
    for name in ("relu", "sigmoid", "tanh"):
        expected = getattr(torch, name)(yt)
        close(to_nchw(ops.conv2d(x, w, b, padding=1, activation=name), "NHWC"), expected)


# --------------------------------------------------------------------------- pooling

POOL_CASES = [
    # (x NHWC, kernel, stride, padding)
    ((2, 6, 6, 3), 2, None, 0),
    ((2, 7, 7, 3), 3, 2, 1),  # overlapping windows with padding
    ((1, 9, 8, 2), (3, 2), (2, 1), (1, 1)),
    ((1, 5, 6, 2), 3, 1, 0),
    ((1, 1, 1, 4), 1, None, 0),
    ((3, 4, 5, 1), (2, 4), (1, 3), (1, 2)),
]


def distinct_values(rng, shape):
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.01 - size * 0.005).reshape(shape)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_max_pool2d_matches_torch(case, layout):
    shape, kernel, stride, padding = case
    n, h, w, c = shape
    rng = rng_for("max_pool", case, layout)
    x = from_nchw(distinct_values(rng, (n, c, h, w)), layout).copy()
    xt = tensor(to_nchw(x, layout), True)
    yt, plane_index = F.max_pool2d(xt, kernel, stride, padding, return_indices=True)
    y, argmax = ops.max_pool2d(x, kernel=kernel, stride=stride, padding=padding, layout=layout)
    close(to_nchw(y, layout), yt)

    # torch's indices count within one (n, c) plane; ours index x.reshape(-1).
    plane_index = plane_index.numpy()
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, :, None, None]
    if layout == "NCHW":
        expected_index = (batch * c + channel) * h * w + plane_index
    else:
        row, col = plane_index // w, plane_index % w
        expected_index = ((batch * h + row) * w + col) * c + channel
    np.testing.assert_array_equal(to_nchw(argmax, layout), expected_index)

    dy = rng.standard_normal(y.shape)
    yt.backward(tensor(to_nchw(dy, layout)))
    close(to_nchw(ops.max_pool2d_backward(dy, argmax, x.shape), layout), xt.grad)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_avg_pool2d_matches_torch(case, layout, count_include_pad):
    shape, kernel, stride, padding = case
    n, h, w, c = shape
    rng = rng_for("avg_pool", case, layout, count_include_pad)
    x = from_nchw(rng.standard_normal((n, c, h, w)), layout).copy()
    options = dict(kernel=kernel, stride=stride, padding=padding, layout=layout,
                   count_include_pad=count_include_pad)
    xt = tensor(to_nchw(x, layout), True)
    yt = F.avg_pool2d(xt, kernel, stride, padding, count_include_pad=count_include_pad)
    y = ops.avg_pool2d(x, **options)
    close(to_nchw(y, layout), yt)
    dy = rng.standard_normal(y.shape)
    yt.backward(tensor(to_nchw(dy, layout)))
    close(to_nchw(ops.avg_pool2d_backward(dy, x.shape, **options), layout), xt.grad)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 2), h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 3),
    kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
    pad_h=st.booleans(), pad_w=st.booleans(), seed=st.integers(0, 2**16),
)
def test_pools_match_torch_drawn_shapes(n, h, w, c, kh, kw, sh, sw, pad_h, pad_w, seed):
    padding = (kh // 2 if pad_h else 0, kw // 2 if pad_w else 0)
    assume(h + 2 * padding[0] >= kh and w + 2 * padding[1] >= kw)
    x = distinct_values(np.random.default_rng(seed), (n, c, h, w))
    options = dict(kernel=(kh, kw), stride=(sh, sw), padding=padding, layout="NCHW")
    with backends.use("reference"):
        y, argmax = ops.max_pool2d(x, **options)
        close(y, F.max_pool2d(tensor(x), (kh, kw), (sh, sw), padding))
        for count_include_pad in (True, False):
            expected = F.avg_pool2d(tensor(x), (kh, kw), (sh, sw), padding,
                                    count_include_pad=count_include_pad)
            close(ops.avg_pool2d(x, **options, count_include_pad=count_include_pad), expected)


# --------------------------------------------------------------------------- LRN

def torch_lrn_tf(xt, depth_radius, bias, alpha, beta):
    """TensorFlow's LRN from torch primitives, NCHW: a ones-kernel conv1d sums the squares
    over a window of ``2 * depth_radius + 1`` channels (zero beyond the edges)."""
    n, c, h, w = xt.shape
    squares = (xt * xt).permute(0, 2, 3, 1).reshape(n * h * w, 1, c)
    ones = torch.ones(1, 1, 2 * depth_radius + 1, dtype=xt.dtype)
    window_sum = F.conv1d(squares, ones, padding=depth_radius)
    scale = bias + alpha * window_sum.reshape(n, h, w, c).permute(0, 3, 1, 2)
    return xt * scale ** -beta, scale


LRN_CASES = [(0, 4), (1, 5), (2, 8), (5, 3), (5, 16)]  # (depth_radius, channels)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("depth_radius,channels", LRN_CASES)
def test_local_response_norm_matches_torch(depth_radius, channels, layout):
    rng = rng_for("lrn", depth_radius, channels, layout)
    x = from_nchw(rng.standard_normal((2, channels, 3, 4)), layout).copy()
    options = dict(depth_radius=depth_radius, bias=2.0, alpha=0.2, beta=0.75)
    xt = tensor(to_nchw(x, layout), True)
    yt, scale_t = torch_lrn_tf(xt, **options)
    y, scale = ops.local_response_norm(x, **options, layout=layout)
    close(to_nchw(y, layout), yt)
    close(to_nchw(scale, layout), scale_t)

    dy = rng.standard_normal(y.shape)
    yt.backward(tensor(to_nchw(dy, layout)))
    dx = ops.local_response_norm_backward(dy, x, y, scale, **options, layout=layout)
    close(to_nchw(dx, layout), xt.grad)


@pytest.mark.parametrize("depth_radius", [0, 2, 5])
def test_torch_local_response_norm_is_tf_lrn_with_alpha_times_size(depth_radius):
    """torch.nn.functional.local_response_norm divides alpha by the window size (it averages
    the squares, TensorFlow sums them), so TF's alpha is torch's alpha / size."""
    size = 2 * depth_radius + 1
    x = rng_for("lrn-torch", depth_radius).standard_normal((2, 9, 3, 3))
    y, _ = ops.local_response_norm(x, depth_radius=depth_radius, bias=1.5, alpha=0.1,
                                   beta=0.6, layout="NCHW")
    expected = F.local_response_norm(tensor(x), size, alpha=0.1 * size, beta=0.6, k=1.5)
    close(y, expected)


# --------------------------------------------------------------------------- losses

@pytest.mark.parametrize("kind", ["indices", "one-hot", "soft"])
def test_softmax_cross_entropy_matches_torch(kind):
    rng = rng_for("sce", kind)
    logits = rng.standard_normal((6, 5)) * 3
    if kind == "indices":
        labels = rng.integers(0, 5, size=6)
        target = torch.tensor(labels)
    else:
        labels = (np.eye(5)[rng.integers(0, 5, size=6)] if kind == "one-hot"
                  else rng.dirichlet(np.ones(5), size=6))
        target = tensor(labels)
    lt = tensor(logits, True)
    loss_t = F.cross_entropy(lt, target)
    loss_t.backward()
    loss, probs = ops.softmax_cross_entropy(logits, labels)
    close(loss, loss_t)
    close(probs, F.softmax(lt, dim=1))
    close(ops.softmax_cross_entropy_backward(1.0, probs, labels), lt.grad)
    close(ops.softmax_cross_entropy_backward(0.5, probs, labels), 0.5 * lt.grad)


def test_mse_loss_matches_torch():
    rng = rng_for("mse")
    prediction, target = rng.standard_normal((8, 1)), rng.standard_normal((8, 1))
    pt = tensor(prediction, True)
    loss_t = F.mse_loss(pt, tensor(target))  # one output column: the plain mean
    loss_t.backward()
    loss, grad = ops.mse_loss(prediction, target)
    close(loss, loss_t)
    close(grad, pt.grad)


# --------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_dropout_scaling_matches_torch(keep_prob):
    x = np.full(10**6, 3.0)
    y, mask = ops.dropout(x, keep_prob=keep_prob, seed=42)
    assert mask.dtype == np.bool_ and mask.shape == x.shape
    assert abs(mask.mean() - keep_prob) < 3e-3
    # Kept values are scaled by 1 / keep_prob, as torch's (inverted) dropout does.
    torch.manual_seed(0)
    torch_kept = F.dropout(tensor(x), p=1 - keep_prob, training=True)
    torch_scale = torch_kept[torch_kept != 0].unique().numpy()
    np.testing.assert_allclose(np.unique(y[mask]), torch_scale, rtol=1e-15)
    np.testing.assert_array_equal(y[~mask], 0.0)

    dy = rng_for("dropout", keep_prob).standard_normal(x.shape)
    xt = tensor(x, True)
    (xt * torch.tensor(mask) / keep_prob).backward(tensor(dy))
    close(ops.dropout_backward(dy, mask, keep_prob=keep_prob), xt.grad)


def test_dropout_mask_depends_on_seed_only():
    x = np.ones((50, 40))
    _, first = ops.dropout(x, keep_prob=0.5, seed=7)
    _, again = ops.dropout(2 * x, keep_prob=0.5, seed=7)
    _, other = ops.dropout(x, keep_prob=0.5, seed=8)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


# --------------------------------------------------------------------------- optimizers

STEPS = 4


def _gradients(key, shape):
    rng = rng_for(*key)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(STEPS)]


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [
    (0.0, False, 0.0), (0.0, False, 0.05), (0.9, False, 0.0), (0.9, True, 0.0),
    (0.8, False, 0.01), (0.8, True, 0.01),
])
def test_sgd_update_matches_torch(momentum, nesterov, weight_decay):
    start, grads = _gradients(("sgd", momentum, nesterov, weight_decay), (3, 4))
    param = start.copy()
    velocity = np.zeros_like(param) if momentum else None
    pt = tensor(start, True)
    optimizer = torch.optim.SGD([pt], lr=0.1, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay)
    for g in grads:
        grad = g.copy()
        ops.sgd_update(param, grad, velocity, lr=0.1, momentum=momentum,
                       weight_decay=weight_decay, nesterov=nesterov)
        np.testing.assert_array_equal(grad, 0.0)
        pt.grad = tensor(g)
        optimizer.step()
        close(param, pt)


@pytest.mark.parametrize("betas,weight_decay", [((0.9, 0.999), 0.0), ((0.8, 0.99), 0.01)])
def test_adam_update_matches_torch(betas, weight_decay):
    start, grads = _gradients(("adam", betas, weight_decay), (5,))
    param, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    pt = tensor(start, True)
    optimizer = torch.optim.Adam([pt], lr=0.01, betas=betas, eps=1e-8,
                                 weight_decay=weight_decay)
    for step, g in enumerate(grads, start=1):
        grad = g.copy()
        ops.adam_update(param, grad, m, v, step=step, lr=0.01, beta1=betas[0], beta2=betas[1],
                        eps=1e-8, weight_decay=weight_decay)
        np.testing.assert_array_equal(grad, 0.0)
        pt.grad = tensor(g)
        optimizer.step()
        close(param, pt)
