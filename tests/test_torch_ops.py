"""fastnn.torch: the custom ops (opcheck, gradcheck, parity with torch.nn.functional), the
modules against torch's own, swap(), torch.compile, and the errors for bad input.

The whole module is skipped where PyTorch is not installed (CI installs it).
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: fastnn.torch needs it")

import fastnn.torch as ft  # noqa: E402
from fastnn.torch import _ops  # noqa: E402
from fastnn.torch import nn as fnn  # noqa: E402

F = torch.nn.functional
CL = torch.channels_last
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.float64: {"rtol": 1e-10, "atol": 1e-10}}


@pytest.fixture(params=["fast_path", "dispatcher"])
def path(request):
    """The functions and modules run eagerly straight into the ops' implementations (the
    fast path) or through PyTorch's dispatcher: both are tested."""
    previous = ft.use_dispatcher(request.param == "dispatcher")
    yield request.param
    ft.use_dispatcher(previous)


def rand(*shape, dtype=torch.float64, grad=False, cl=False, seed=0):
    g = torch.Generator().manual_seed(seed + 7 * len(shape) + sum(shape))
    t = torch.randn(*shape, generator=g, dtype=dtype)
    if cl:
        t = t.contiguous(memory_format=CL)
    return t.requires_grad_(grad)


def grads(fn, inputs, seed=99):
    """The output of ``fn(*inputs)`` and the gradients of a random projection of it."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    y = fn(*inputs)
    dy = rand(*y.shape, dtype=y.dtype, seed=seed)
    y.backward(dy)
    return y.detach(), [t.grad for t in inputs]


def assert_same(fn_a, fn_b, inputs, dtype):
    ya, ga = grads(fn_a, inputs)
    yb, gb = grads(fn_b, inputs)
    torch.testing.assert_close(ya, yb, **TOL[dtype])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, **TOL[dtype])


# --------------------------------------------------------------------------- opcheck

def _op_samples(dtype, grad):
    """(op, args) for every registered op, small shapes with odd sizes and options."""
    x = rand(2, 3, 7, 6, dtype=dtype, grad=grad, cl=True)
    x_plain = rand(2, 3, 7, 6, dtype=dtype, grad=grad, seed=1)
    w = rand(4, 3, 3, 2, dtype=dtype, grad=grad)
    b = rand(4, dtype=dtype, grad=grad)
    geo = ([1, 2], [1, 0, 1, 1], [1, 1])
    xl, wl, bl = (rand(5, 6, dtype=dtype, grad=grad), rand(3, 6, dtype=dtype, grad=grad),
                  rand(3, dtype=dtype, grad=grad))
    o = torch.ops.fastnn
    samples = [
        ("conv2d", o.conv2d.default, (x, w, b, *geo)),
        ("conv2d_nobias_plain", o.conv2d.default, (x_plain, w, None, [2, 1], [0, 1], [2, 1])),
        ("conv2d_relu_max_pool2d", o.conv2d_relu_max_pool2d.default, (x, w, b, [1, 1],
                                                                      [1, 1], [1, 1])),
        ("max_pool2d", o.max_pool2d.default, (x_plain, [3, 2], [2, 1], [1, 1])),
        ("local_response_norm", o.local_response_norm.default, (x, 1, 2.0, 0.3, 0.75)),
        ("linear", o.linear.default, (xl, wl, bl, "tanh")),
        ("linear_nobias", o.linear.default, (xl, wl, None, None)),
        ("dropout", o.dropout.default, (xl, 0.3, 11)),
        ("dropout_channels_last", o.dropout.default, (x, 0.5, 2**63 - 1)),
        ("dropout_strided", o.dropout.default, (xl.t(), 0.25, 0)),
    ]
    if not grad:
        with torch.no_grad():
            y = _ops.conv2d(x, w, b, *geo)
            yp, idx = _ops.conv2d_relu_max_pool2d(x, w, b, [1, 1], [1, 1], [1, 1])
            ym, idxm = _ops.max_pool2d(x_plain, [3, 2], [2, 1], [1, 1])
            yn, scale = _ops.local_response_norm(x, 1, 2.0, 0.3, 0.75)
            yl = _ops.linear(xl, wl, bl, "sigmoid")
            _, keep = _ops.dropout(x, 0.5, 4)
        dy, dyp, dym, dyn, dyl, dyd = (rand(*t.shape, dtype=dtype, seed=3)
                                       for t in (y, yp, ym, yn, yl, keep))
        samples += [
            ("conv2d_backward", o.conv2d_backward.default, (dy, x, w, *geo, [True] * 3)),
            ("conv2d_backward_dw_only", o.conv2d_backward.default,
             (dy, x, w, *geo, [False, True, False])),
            ("conv2d_relu_max_pool2d_backward", o.conv2d_relu_max_pool2d_backward.default,
             (dyp, yp, idx, x, w, [1, 1], [1, 1], [1, 1], [True] * 3)),
            ("max_pool2d_backward", o.max_pool2d_backward.default, (dym, idxm, [2, 3, 7, 6])),
            ("local_response_norm_backward", o.local_response_norm_backward.default,
             (dyn, x, yn, scale, 1, 2.0, 0.3, 0.75)),
            ("linear_backward", o.linear_backward.default,
             (dyl, xl, wl, yl, "sigmoid", [True, True, True])),
            ("dropout_backward", o.dropout_backward.default, (dyd, keep, 0.5)),
        ]
    return samples


SAMPLE_IDS = [s[0] for s in _op_samples(torch.float64, False)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_opcheck(name, dtype):
    """torch.library.opcheck: schema, fake tensors, autograd registration, AOT dispatch
    with dynamic shapes (forward ops with inputs requiring grad and without)."""
    for grad in (False, True):
        samples = {n: (op, args) for n, op, args in _op_samples(dtype, grad)}
        if name in samples:
            op, args = samples[name]
            torch.library.opcheck(op, args)


# --------------------------------------------------------------------------- gradcheck

GRADCHECK_CASES = {
    "conv2d": (lambda x, w, b: ft.conv2d(x, w, b, stride=(2, 1), padding=(0, 1, 1, 0),
                                         dilation=(1, 2)), [(2, 3, 6, 7), (4, 3, 3, 2), (4,)]),
    "conv2d_same_even_kernel": (lambda x, w: ft.conv2d(x, w, padding="same"),
                                [(1, 2, 5, 5), (3, 2, 2, 4)]),
    "conv2d_relu_max_pool2d": (lambda x, w, b: ft.conv2d_relu_max_pool2d(x, w, b, padding=1),
                               [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    "max_pool2d": (lambda x: ft.max_pool2d(x, 3, 2, 1), [(2, 3, 7, 6)]),
    "local_response_norm": (lambda x: ft.local_response_norm(x, 3, 0.5, 0.75, 2.0),
                            [(2, 7, 3, 4)]),
    "linear": (lambda x, w, b: ft.linear(x, w, b), [(5, 7), (3, 7), (3,)]),
    "linear_relu": (lambda x, w, b: ft.linear(x, w, b, "relu"), [(5, 7), (3, 7), (3,)]),
    "linear_tanh_3d": (lambda x, w, b: ft.linear(x, w, b, "tanh"), [(2, 5, 7), (3, 7), (3,)]),
    "linear_sigmoid": (lambda x, w: ft.linear(x, w, None, "sigmoid"), [(5, 7), (3, 7)]),
    "dropout": (lambda x: ft.dropout(x, 0.3, seed=5), [(6, 7)]),
    "dropout_channels_last": (lambda x: ft.dropout(x, 0.5, seed=6), [(2, 3, 4, 5)]),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_gradcheck_float64(name, path):
    fn, shapes = GRADCHECK_CASES[name]
    inputs = [rand(*s, grad=True, seed=i, cl=(len(s) == 4 and i == 0))
              for i, s in enumerate(shapes)]
    if name == "max_pool2d":  # distinct values: no ties for the finite differences
        inputs = [torch.randperm(inputs[0].numel(), generator=torch.Generator().manual_seed(0))
                  .reshape(inputs[0].shape).double().div(10).requires_grad_()]
    if "relu" in name:  # keep pre-activations away from the kink
        inputs[-1] = (inputs[-1].detach() + 0.3).requires_grad_()
    assert torch.autograd.gradcheck(fn, inputs)


# --------------------------------------------------------------------------- parity

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cl", [True, False], ids=["channels_last", "contiguous"])
@pytest.mark.parametrize("stride, padding, dilation", [
    (1, 1, 1), ((2, 1), (0, 2), 1), (1, "same", 2), (2, "valid", (1, 2))])
def test_conv2d_matches_torch(dtype, cl, stride, padding, dilation):
    x = rand(2, 5, 9, 8, dtype=dtype, cl=cl)
    w, b = rand(6, 5, 3, 3, dtype=dtype, seed=1), rand(6, dtype=dtype, seed=2)
    y = ft.conv2d(x, w, b, stride, padding, dilation)
    assert y.is_contiguous(memory_format=CL)
    assert_same(lambda x, w, b: ft.conv2d(x, w, b, stride, padding, dilation),
                lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), [x, w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(3, 1, 12, 12, 8), (2, 6, 9, 7, 5)], ids=["c1", "odd"])
def test_conv2d_relu_max_pool2d_matches_torch(dtype, shape):
    n, c, h, w_, o = shape
    x = rand(n, c, h, w_, dtype=dtype, cl=True)
    w, b = rand(o, c, 3, 3, dtype=dtype, seed=1), rand(o, dtype=dtype, seed=2)
    assert_same(lambda x, w, b: ft.conv2d_relu_max_pool2d(x, w, b, padding=1),
                lambda x, w, b: F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2),
                [x, w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2),
                                                                               (1, 0))])
def test_max_pool2d_matches_torch(dtype, kernel, stride, padding):
    x = rand(2, 4, 9, 8, dtype=dtype)
    assert_same(lambda x: ft.max_pool2d(x, kernel, stride, padding),
                lambda x: F.max_pool2d(x, kernel, stride, padding), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.6, 2.0),
                                                  (11, 11e-4, 0.75, 1.0), (1, 0.2, 1.0, 1.5)])
def test_local_response_norm_matches_torch_module(dtype, size, alpha, beta, k):
    """PyTorch divides alpha by size: fastnn.torch maps its parameters to TensorFlow's."""
    x = rand(2, 13, 4, 3, dtype=dtype, cl=True) * 3
    ours, theirs = (fnn.LocalResponseNorm(size, alpha, beta, k),
                    torch.nn.LocalResponseNorm(size, alpha, beta, k))
    assert_same(ours, theirs, [x], dtype)
    assert_same(lambda x: ft.local_response_norm(x, size, alpha, beta, k),
                lambda x: F.local_response_norm(x, size, alpha, beta, k), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
def test_linear_matches_torch(dtype, activation):
    act = {None: lambda t: t, "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
    x, w, b = rand(6, 9, dtype=dtype), rand(4, 9, dtype=dtype, seed=1), rand(4, dtype=dtype)
    assert_same(lambda x, w, b: ft.linear(x, w, b, activation),
                lambda x, w, b: act[activation](F.linear(x, w, b)), [x, w, b], dtype)
    # a transposed (non-contiguous) input and a 3-D one
    assert_same(lambda x, w: ft.linear(x.t(), w, None, activation),
                lambda x, w: act[activation](F.linear(x.t(), w)),
                [rand(9, 6, dtype=dtype), w], dtype)
    assert_same(lambda x, w, b: ft.linear(x, w, b, activation),
                lambda x, w, b: act[activation](F.linear(x, w, b)),
                [rand(2, 3, 9, dtype=dtype), w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_dropout_matches_fastnn_ops_dropout(dtype, layout, path):
    """The mask is fastnn.ops.dropout's for the same seed over the elements in memory
    order; y = x * mask / (1 - p); the gradient is the same scaling of dy; the mask keeps
    about 1 - p of the elements."""
    from fastnn import ops

    x = rand(8, 6, 30, 40, dtype=dtype, cl=(layout == "channels_last"), grad=True)
    if layout == "strided":
        x = x.detach()[:, :, ::2].requires_grad_()
    p, seed = 0.3, 12345
    y = ft.dropout(x, p, seed=seed)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=CL)
        memory = x.detach().permute(0, 2, 3, 1).numpy()
        mask = ops.dropout(memory, keep_prob=1 - p, seed=seed)[1]
        mask = torch.from_numpy(mask).permute(0, 3, 1, 2)
    else:
        assert y.is_contiguous()
        mask = torch.from_numpy(ops.dropout(np.ascontiguousarray(x.detach().numpy()),
                                            keep_prob=1 - p, seed=seed)[1])
    torch.testing.assert_close(y, x.detach() * mask / (1 - p), rtol=1e-6, atol=0)
    assert abs(mask.double().mean().item() - (1 - p)) < 0.01
    dy = rand(*x.shape, dtype=dtype, seed=4)
    y.backward(dy)
    torch.testing.assert_close(x.grad, dy * mask / (1 - p), rtol=1e-6, atol=0)


def test_dropout_seeds_modes_and_module():
    x = rand(50, 40, dtype=torch.float32)
    torch.manual_seed(3)
    first = ft.dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(ft.dropout(x, 0.5), first)  # seeds come from torch's generator
    assert not torch.equal(ft.dropout(x, 0.5), first)
    assert torch.equal(ft.dropout(x, 0.5, seed=9), ft.dropout(x, 0.5, seed=9))
    assert ft.dropout(x, 0.5, training=False) is x and ft.dropout(x, 0.0) is x
    assert torch.equal(ft.dropout(x, 1.0), torch.zeros_like(x))
    layer = fnn.Dropout(0.25)
    assert type(layer(x)) is torch.Tensor and (layer(x) == 0).any()
    assert layer.eval()(x) is x and repr(layer) == "Dropout(p=0.25, inplace=False)"
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1),
                                torch.nn.Dropout(0.1, inplace=True))
    fnn.swap(model)
    assert type(model[1]) is fnn.Dropout and type(model[2]) is torch.nn.Dropout
    assert fnn.unsupported(model[2]).startswith("inplace=True")
    with pytest.raises(ValueError, match="inplace=True is not supported"):
        ft.dropout(x, 0.5, inplace=True)
    with pytest.raises(ValueError, match="Dropout: inplace=True"):
        fnn.Dropout(0.5, inplace=True)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        ft.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\), got -1"):
        ft.dropout(x, 0.5, seed=-1)
    with pytest.raises(TypeError, match="fastnn::dropout: x must be float32 or float64, got "
                                        "torch.int64"):
        ft.dropout(torch.ones(3, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="mask must be a bool tensor of dy's shape"):
        _ops.dropout_backward(x, torch.ones(3, dtype=torch.bool), 0.5)


def test_fast_path_and_dispatcher_agree_exactly():
    model = torch.nn.Sequential(
        fnn.ConvReluMaxPool2d(2, 4, 3, padding=1), fnn.LocalResponseNorm(3),
        fnn.Conv2d(4, 4, 3, padding=1), fnn.MaxPool2d(2), torch.nn.Flatten(),
        fnn.Linear(4 * 2 * 2, 3, activation="tanh"))
    x = rand(2, 2, 8, 8, dtype=torch.float32, cl=True)
    results = []
    for dispatcher in (False, True):
        previous = ft.use_dispatcher(dispatcher)
        try:
            y, g = grads(model, [x])
            model.zero_grad()
            model(x).sum().backward()
            results.append([y, *g, *(p.grad for p in model.parameters())])
            model.zero_grad()
            with torch.no_grad():
                results[-1].append(model(x))
        finally:
            ft.use_dispatcher(previous)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_only_the_inputs_that_need_it_get_gradients(path):
    x, w, b = rand(2, 3, 6, 6, cl=True), rand(4, 3, 3, 3, grad=True), rand(4)
    ft.conv2d_relu_max_pool2d(x, w, b, padding=1).sum().backward()
    assert w.grad is not None and x.grad is None and b.grad is None


def test_backward_allocates_no_zero_gradients_for_masks_and_indices(path):
    """The argmax, scale and mask outputs carry no gradient: autograd must not fill zero
    tensors for them (it does unless the ops leave grads unmaterialised)."""
    from torch.profiler import ProfilerActivity, profile

    model = torch.nn.Sequential(
        fnn.ConvReluMaxPool2d(2, 4, 3, padding=1), fnn.LocalResponseNorm(3),
        fnn.MaxPool2d(2), fnn.Dropout(0.5), torch.nn.Flatten(),
        fnn.Linear(4 * 2 * 2, 3, activation="tanh"))
    x = rand(2, 2, 8, 8, dtype=torch.float32, cl=True)
    y = model(x)
    dy = torch.ones_like(y)  # made here: backward() without it fills one itself
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        y.backward(dy)
    filled = [e.key for e in prof.key_averages()
              if e.key in ("aten::zeros", "aten::zeros_like", "aten::fill_", "aten::zero_")]
    assert filled == []
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_backward_of_an_output_without_a_gradient_is_none():
    """The formula's guard: with no gradient for the differentiable output, every input's
    gradient is None (never a zero tensor made up)."""
    class Ctx:
        needs_input_grad = (True, True, True, False, False, False)

    _setup, formula = _ops._AUTOGRAD[_ops.conv2d_relu_max_pool2d]
    assert formula(Ctx(), None, None) == (None,) * 6


# --------------------------------------------------------------------------- zero copy

def test_channels_last_tensors_reach_the_kernels_without_a_copy():
    x = rand(2, 3, 5, 4, dtype=torch.float32, cl=True)
    assert _ops._nhwc(x).ctypes.data == x.data_ptr()
    plain = rand(2, 3, 5, 4, dtype=torch.float32)
    assert _ops._nhwc(plain).ctypes.data != plain.data_ptr()  # made channels-last: a copy
    y, arr = _ops._out_cl((2, 3, 5, 4), torch.float32)
    assert arr.ctypes.data == y.data_ptr() and arr.flags.c_contiguous
    lin = rand(4, 5, dtype=torch.float32)
    assert _ops._rows(lin).ctypes.data == lin.data_ptr()


@pytest.mark.parametrize("shape", [(4, 3, 3, 3), (4, 1, 1, 1)], ids=["3x3", "1x1_one_channel"])
def test_scratch_arrays_never_reach_the_results(shape):
    """The backward's temporaries are reused from call to call: a later call must leave the
    gradients an earlier one returned as they were (the 1x1 case's transposed weight
    gradient would be a view of its scratch if it were not copied)."""
    x, w, b = rand(2, shape[1], 6, 6, cl=True, grad=True), rand(*shape, grad=True), rand(4)
    b.requires_grad_()
    ft.conv2d_relu_max_pool2d(x, w, b).sum().backward()
    ft.linear(rand(3, 5, grad=True), rand(4, 5, grad=True), None, "tanh").sum().backward()
    first = [t.grad.clone() for t in (x, w, b)]
    held = [t.grad for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    (ft.conv2d_relu_max_pool2d(x * 3, w * 2, b).sum() * 5).backward()
    for kept, copy in zip(held, first):
        assert torch.equal(kept, copy)


# --------------------------------------------------------------------------- modules

def _copy_params(src, dst):
    dst.load_state_dict(src.state_dict())
    return dst


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_modules_match_torch_modules(dtype, path):
    x = rand(3, 4, 10, 10, dtype=dtype, cl=True)
    kw = {"dtype": dtype}
    pairs = [
        (torch.nn.Conv2d(4, 5, 3, stride=2, padding=1, **kw),
         fnn.Conv2d(4, 5, 3, stride=2, padding=1, **kw)),
        (torch.nn.Conv2d(4, 5, (3, 2), padding="same", dilation=2, bias=False, **kw),
         fnn.Conv2d(4, 5, (3, 2), padding="same", dilation=2, bias=False, **kw)),
        (torch.nn.MaxPool2d(3, 2, 1), fnn.MaxPool2d(3, 2, 1)),
        (torch.nn.LocalResponseNorm(3, 0.2, 0.7, 1.5), fnn.LocalResponseNorm(3, 0.2, 0.7, 1.5)),
    ]
    for theirs, ours in pairs:
        _copy_params(theirs, ours)
        assert_same(ours, theirs, [x], dtype)
        if not list(ours.parameters()):
            continue
        ya, yb = ours(x), theirs(x)
        ya.sum().backward()
        yb.sum().backward()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(p.grad, q.grad, **TOL[dtype])
    fused = fnn.ConvReluMaxPool2d(4, 6, 3, padding=1, **kw)
    conv = _copy_params(fused, torch.nn.Conv2d(4, 6, 3, padding=1, **kw))
    assert_same(fused, lambda x: F.max_pool2d(F.relu(conv(x)), 2), [x], dtype)
    lin = fnn.Linear(10, 3, activation="tanh", **kw)
    ref = _copy_params(lin, torch.nn.Linear(10, 3, **kw))
    assert_same(lin, lambda x: torch.tanh(ref(x)), [rand(4, 10, dtype=dtype)], dtype)
    assert "activation='tanh'" in repr(lin)


def test_modules_refuse_what_fastnn_does_not_implement():
    with pytest.raises(ValueError, match="groups=2"):
        fnn.Conv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        fnn.Conv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="ceil_mode"):
        fnn.MaxPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="dilation"):
        fnn.MaxPool2d(2, dilation=2)
    with pytest.raises(ValueError, match="return_indices"):
        fnn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="even size=4"):
        fnn.LocalResponseNorm(4)
    with pytest.raises(ValueError, match="activation must be one of"):
        fnn.Linear(2, 2, activation="gelu")
    with pytest.raises(ValueError, match="inplace=True"):
        fnn.Dropout(inplace=True)
    with pytest.raises(ValueError, match="must be 4-D"):
        fnn.LocalResponseNorm(3)(rand(2, 5, 4))
    with pytest.raises(ValueError, match="groups=2 is not supported"):
        ft.conv2d(rand(1, 4, 5, 5), rand(4, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        ft.conv2d(rand(1, 4, 5, 5), rand(4, 4, 3, 3), stride=2, padding="same")


# --------------------------------------------------------------------------- swap

class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.LocalResponseNorm(3),
            torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(2, 2))
        self.grouped = torch.nn.Conv2d(6, 6, 1, groups=3)  # left to PyTorch
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 2, 8),
                                        torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.grouped(self.features(x)))


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_swap_replaces_modules_in_place_and_keeps_the_numbers(fuse, path):
    torch.manual_seed(0)
    model = _Net().double()
    x = rand(2, 1, 8, 8)
    reference = _copy_params(model, _Net().double())
    params = {id(p) for p in model.parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    keys = set(model.state_dict())

    assert fnn.swap(model, fuse=fuse) is model
    assert {id(p) for p in model.parameters()} == params and set(model.state_dict()) == keys
    kinds = [type(m) for m in model.features]
    if fuse:
        assert kinds == [fnn.ConvReluMaxPool2d, torch.nn.Identity, torch.nn.Identity,
                         fnn.LocalResponseNorm, fnn.ConvReluMaxPool2d, torch.nn.Identity,
                         torch.nn.Identity]
        assert model.head[1].activation == "tanh" and type(model.head[2]) is torch.nn.Identity
    else:
        assert kinds == [fnn.Conv2d, torch.nn.ReLU, fnn.MaxPool2d, fnn.LocalResponseNorm,
                         fnn.Conv2d, torch.nn.ReLU, fnn.MaxPool2d]
        assert model.head[1].activation is None and type(model.head[2]) is torch.nn.Tanh
    assert type(model.grouped) is torch.nn.Conv2d
    assert fnn.unsupported(model.grouped).startswith("groups=3")

    for _ in range(2):  # the optimizer built before the swap trains the swapped model
        assert_same(model, reference, [x], torch.float64)
        for m in (model, reference):
            m.zero_grad()
            m(x).square().sum().backward()
        optimizer.step()
        with torch.no_grad():
            for p in reference.parameters():
                p -= 0.1 * p.grad
    with pytest.raises(ValueError, match="grouped .Conv2d. has groups=3"):
        fnn.swap(_Net(), strict=True)
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        fnn.swap(object())


# --------------------------------------------------------------------------- compile

def test_torch_compile_trains_a_model_of_fastnn_modules():
    """One test, as inductor's C++ compile of the surrounding graph takes a few seconds: the
    compiled model's forward and gradients equal eager's (the custom ops are opaque nodes,
    traced through their fake implementations; the backward ops too)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        fnn.ConvReluMaxPool2d(1, 4, 3, padding=1), fnn.LocalResponseNorm(3),
        fnn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(), fnn.MaxPool2d(2),
        torch.nn.Flatten(), fnn.Linear(4 * 2 * 2, 5, activation="tanh"), fnn.Linear(5, 3))
    x = rand(4, 1, 8, 8, dtype=torch.float32, cl=True)
    compiled = torch.compile(model, fullgraph=True)
    eager_out = model(x)
    eager_out.sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, eager_out, rtol=1e-5, atol=1e-5)
    for p, g in zip(model.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-5)


def test_torch_compile_draws_a_new_dropout_mask_each_call():
    """The seed is drawn inside the compiled program, not frozen into it at trace time."""
    torch.manual_seed(0)
    model = torch.compile(torch.nn.Sequential(fnn.Linear(4, 256), fnn.Dropout(0.5)),
                          fullgraph=True)
    x = rand(8, 4, dtype=torch.float32)
    first, second = model(x), model(x)
    assert not torch.equal(first == 0, second == 0)
    assert 0.4 < (first == 0).float().mean().item() < 0.6


# --------------------------------------------------------------------------- errors

def test_wrong_dtype_is_refused_naming_the_argument():
    x = rand(1, 2, 5, 5, dtype=torch.float32)
    with pytest.raises(TypeError, match="fastnn::conv2d: x must be float32 or float64, got "
                                        "torch.float16"):
        ft.conv2d(x.half(), rand(3, 2, 3, 3).half())
    with pytest.raises(TypeError, match="weight must have the dtype of x"):
        ft.conv2d(x, rand(3, 2, 3, 3))
    with pytest.raises(TypeError, match="bias must have the dtype of x"):
        ft.linear(rand(2, 3, dtype=torch.float32), rand(4, 3, dtype=torch.float32), rand(4))
    with pytest.raises(TypeError, match="max_pool2d: x must be float32 or float64, got "
                                        "torch.int64"):
        ft.max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int64), 2)


def test_wrong_shape_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="fastnn::conv2d: x must be 4-D, got shape"):
        ft.conv2d(rand(2, 5, 5), rand(3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"weight \(c_out, c_in, kh, kw\) = \(3, 4, 3, 3\) "
                                         r"must have c_in = 2"):
        ft.conv2d(rand(1, 2, 5, 5), rand(3, 4, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        ft.conv2d(rand(1, 2, 5, 5), rand(3, 2, 3, 3), rand(4))
    with pytest.raises(ValueError, match="does not fit the padded input"):
        ft.conv2d(rand(1, 2, 2, 2), rand(3, 2, 3, 3))
    with pytest.raises(ValueError, match="2x2 pool does not fit"):
        ft.conv2d_relu_max_pool2d(rand(1, 2, 3, 3), rand(3, 2, 3, 3))
    with pytest.raises(ValueError, match="weight .* must have in_features = 3"):
        ft.linear(rand(2, 3), rand(4, 5))
    with pytest.raises(ValueError, match="padding must be at most half the kernel"):
        ft.max_pool2d(rand(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="size must be an odd int"):
        ft.local_response_norm(rand(1, 4, 2, 2), 2)


def test_non_cpu_tensors_are_refused_naming_the_argument():
    # A meta tensor reaches the checks of the eager kernel through the op's impl directly
    # (the dispatcher would send it to the fake implementation, which accepts it).
    with pytest.raises(TypeError, match="x must be a CPU tensor"):
        _ops.conv2d._init_fn(torch.empty(1, 2, 5, 5, device="meta"), rand(3, 2, 3, 3), None,
                             [1, 1], [0, 0], [1, 1])
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        ft.max_pool2d(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor' for argument 'x'"):
        torch.ops.fastnn.max_pool2d(np.zeros((1, 1, 4, 4)), [2, 2], [2, 2], [0, 0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the CUDA "
                    "tensor case needs one (the CPU check is the test above)")
def test_cuda_tensors_are_refused_naming_the_argument():
    with pytest.raises(TypeError, match="x must be a CPU tensor .* got a tensor on cuda"):
        ft.conv2d(rand(1, 2, 5, 5).cuda(), rand(3, 2, 3, 3).cuda())


# --------------------------------------------------------------------------- docs

@pytest.mark.parametrize("module", [ft, fnn, _ops], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0

def test_readme_example_runs():
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Use fastnn kernels in PyTorch")[1]
    blocks = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(readme), "exec"), {"__name__": "__readme__"})
