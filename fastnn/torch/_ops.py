"""fastnn's kernels registered as PyTorch custom operators (namespace ``fastnn``).

Every op takes and returns PyTorch's logical shapes: images ``(n, c, h, w)``, convolution
weights ``(c_out, c_in, kh, kw)``, dense weights ``(out_features, in_features)``. Image
outputs are channels-last tensors (NHWC in memory), the layout fastnn's kernels compute in,
so ``x.permute(0, 2, 3, 1)`` of a channels-last input is already the NHWC array the kernel
reads: it reaches fastnn as ``x.numpy()`` of that view, without a copy, and the kernel writes
its result straight into the memory of the returned tensor (``out=``) or hands over an
array that the returned tensor wraps (``torch.from_numpy``).

What is copied:

* image inputs that are not channels-last (a plain NCHW-contiguous tensor, a strided view)
  are made channels-last first, one copy per call (``Tensor.contiguous``);
* convolution weights are transposed OIHW -> HWIO for the kernel on every call, and their
  gradient HWIO -> OIHW (weight-sized: 18 k elements for the seed network's second layer);
* nothing else: dense layers call the GEMM with ``trans_b`` on PyTorch's own weight layout.

Temporaries that never leave an op (the fused backward's masked and scattered gradients, a
weight gradient before its transpose, an activation's gradient inside a dense backward) live
in per-thread scratch arrays reused from call to call (:func:`_scratch`), as fastnn.nn's
layers reuse their buffers: a fresh multi-megabyte array costs a page fault per 4 KiB on
first touch, which on the seed network was a tenth of the step.

This module has no ``from __future__ import annotations``: ``torch.library.custom_op`` reads
the schema from the annotations themselves. Importing it registers the ops.
"""

import threading
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from fastnn import ops

__all__ = ["conv2d", "conv2d_backward", "conv2d_relu_max_pool2d",
           "conv2d_relu_max_pool2d_backward", "max_pool2d", "max_pool2d_backward",
           "local_response_norm", "local_response_norm_backward", "linear", "linear_backward",
           "dropout", "dropout_backward", "ACTIVATIONS", "call", "use_dispatcher"]

ACTIVATIONS = (None, "relu", "tanh", "sigmoid")
_DTYPES = (torch.float32, torch.float64)
_TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
_ACT_BACKWARD = {"relu": ops.relu_backward, "tanh": ops.tanh_backward,
                 "sigmoid": ops.sigmoid_backward}
_ACT_FORWARD = {"relu": ops.relu, "tanh": ops.tanh, "sigmoid": ops.sigmoid}


# --------------------------------------------------------------------------- checks

def _check(op: str, name: str, t, ndim: int, like: Optional[Tensor] = None,
           fake: bool = False) -> None:
    """A float32/float64 CPU tensor of rank ``ndim`` (and ``like``'s dtype), or the error
    that names the argument. Fake (meta) tensors pass the device check: they stand for the
    CPU tensors a traced program will see (``fake``: the check of a fake implementation)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"fastnn::{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu" and not (fake and t.device.type == "meta"):
        raise TypeError(f"fastnn::{op}: {name} must be a CPU tensor (fastnn's kernels run on "
                        f"the CPU), got a tensor on {t.device}")
    if t.dtype not in _DTYPES:
        raise TypeError(f"fastnn::{op}: {name} must be float32 or float64, got {t.dtype}")
    if like is not None and t.dtype != like.dtype:
        raise TypeError(f"fastnn::{op}: {name} must have the dtype of x ({like.dtype}), "
                        f"got {t.dtype}")
    if t.dim() != ndim:
        raise ValueError(f"fastnn::{op}: {name} must be {ndim}-D, got shape {tuple(t.shape)}")


def _check_weight(op: str, x, weight, bias, ndim: int, axes: str, inner: str, of_x: str,
                  fake: bool) -> None:
    """``x`` and ``weight`` of rank ``ndim``, ``weight``'s axis 1 (``inner`` of ``axes``) the
    length of ``x``'s (its ``of_x``), and ``bias`` None or ``(weight.shape[0],)``."""
    _check(op, "x", x, ndim, fake=fake)
    _check(op, "weight", weight, ndim, x, fake)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"fastnn::{op}: weight {axes} = {tuple(weight.shape)} must have "
                         f"{inner} = {x.shape[1]}, the {of_x} of x {tuple(x.shape)}")
    if bias is not None:
        _check(op, "bias", bias, 1, x, fake)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"fastnn::{op}: bias must have shape ({weight.shape[0]},), got "
                             f"{tuple(bias.shape)}")


def _check_conv(op: str, x, weight, bias, fake: bool = False) -> None:
    _check_weight(op, x, weight, bias, 4, "(c_out, c_in, kh, kw)", "c_in", "channels", fake)


def _pair(op: str, name: str, value: Sequence[int]) -> tuple[int, int]:
    v = tuple(int(i) for i in value)
    if len(v) == 1:
        v = v * 2
    if len(v) != 2:
        raise ValueError(f"fastnn::{op}: {name} must have 1 or 2 values, got {list(value)}")
    return v


def _pads(op: str, padding: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``[p]``, ``[ph, pw]`` or ``[top, bottom, left, right]`` as fastnn's pairs."""
    p = tuple(int(i) for i in padding)
    if len(p) == 1:
        p = p * 4
    elif len(p) == 2:
        p = (p[0], p[0], p[1], p[1])
    if len(p) != 4 or min(p) < 0:
        raise ValueError(f"fastnn::{op}: padding must be 1, 2 or 4 non-negative values "
                         f"([top, bottom, left, right]), got {list(padding)}")
    return (p[0], p[1]), (p[2], p[3])


def _conv_out(op: str, x, weight, stride, padding, dilation):
    """The convolution's output (h, w), from PyTorch's formula (SymInt-safe)."""
    (st, sw), ((pt, pb), (pl, pr)), (dh, dw) = (_pair(op, "stride", stride),
                                                _pads(op, padding),
                                                _pair(op, "dilation", dilation))
    h, w = x.shape[2], x.shape[3]
    kh, kw = weight.shape[2], weight.shape[3]
    ho = (h + pt + pb - dh * (kh - 1) - 1) // st + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"fastnn::{op}: the kernel {(kh, kw)} (dilation {(dh, dw)}) does not "
                         f"fit the padded input {(h, w)} (padding {list(padding)})")
    return ho, wo


def _geometry(op, stride, padding, dilation) -> dict:
    return {"stride": _pair(op, "stride", stride), "padding": _pads(op, padding),
            "dilation": _pair(op, "dilation", dilation)}


# --------------------------------------------------------------------------- memory

def _nhwc(t: Tensor) -> np.ndarray:
    """The NHWC array of an NCHW-shaped tensor: a view when it is channels-last."""
    v = t.detach().permute(0, 2, 3, 1)
    if not v.is_contiguous():
        v = v.contiguous()
    return v.numpy()


def _np(t: Optional[Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.detach().numpy()


def _hwio(weight: Tensor) -> np.ndarray:
    """OIHW weights as the HWIO array fastnn takes (fastnn copies the transposed view)."""
    return weight.detach().numpy().transpose(2, 3, 1, 0)


def _empty_cl(shape, dtype, device=None) -> Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device=device,
                       memory_format=torch.channels_last)


def _out_cl(shape, dtype) -> tuple[Tensor, np.ndarray]:
    """A channels-last tensor of NCHW ``shape`` and the NHWC array on its memory."""
    t = _empty_cl(shape, dtype)
    return t, t.permute(0, 2, 3, 1).numpy()


def _wrap_nhwc(a: np.ndarray) -> Tensor:
    """An NHWC array as an NCHW-shaped channels-last tensor on the same memory."""
    return torch.from_numpy(a).permute(0, 3, 1, 2)


def _oihw(dw_hwio: np.ndarray) -> Tensor:
    """An HWIO weight gradient as a new OIHW tensor (always a copy: ``dw_hwio`` may be a
    scratch array)."""
    kh, kw, i, o = dw_hwio.shape
    dw = torch.empty((o, i, kh, kw), dtype=_TORCH_DTYPE[dw_hwio.dtype.type])
    return dw.copy_(torch.from_numpy(dw_hwio).permute(3, 2, 0, 1))


_SCRATCH = threading.local()
_SCRATCH_BYTES = 256 << 20  # past this, a thread's scratch arrays are dropped and remade


def _scratch(tag: str, shape, dtype) -> np.ndarray:
    """This thread's reusable array for the temporary ``tag`` of ``shape`` and ``dtype``.

    Only for arrays that do not outlive the call that asks for them: the next call with the
    same tag, shape and dtype on this thread gets the same memory back. Threads never share
    one (autograd may run backward passes on several threads), and a thread's arrays are
    dropped when they pass ``_SCRATCH_BYTES`` together.
    """
    cache = getattr(_SCRATCH, "arrays", None)
    if cache is None:
        cache = _SCRATCH.arrays = {}
    key = (tag, tuple(shape), np.dtype(dtype))
    array = cache.get(key)
    if array is None:
        held = sum(a.nbytes for a in cache.values())
        if held + np.prod(key[1], dtype=np.int64) * key[2].itemsize > _SCRATCH_BYTES:
            cache.clear()
        array = cache[key] = np.empty(key[1], key[2])
    return array


def _nothing(dtype) -> Tensor:
    return torch.empty(0, dtype=dtype)


def _mask(op: str, output_mask: Sequence[bool]) -> tuple[bool, bool, bool]:
    if len(output_mask) != 3:
        raise ValueError(f"fastnn::{op}: output_mask must have 3 values, got "
                         f"{list(output_mask)}")
    return bool(output_mask[0]), bool(output_mask[1]), bool(output_mask[2])


# --------------------------------------------------------------------------- registration

_EAGER: dict = {}   # CustomOpDef -> its plain Python implementation
_AUTOGRAD: dict = {}  # CustomOpDef -> (setup_context, backward)
_state = {"dispatcher": False}


def _op(name: str):
    """``torch.library.custom_op(name, mutates_args=())``, the plain function kept too."""
    def register(fn):
        opdef = torch.library.custom_op(name, mutates_args=())(fn)
        _EAGER[opdef] = fn
        return opdef
    return register


def _autograd(opdef, backward, setup_context) -> None:
    """Register ``backward`` and ``setup_context`` for ``opdef``, with grads left
    unmaterialised: the outputs no gradient flows into (an argmax, a mask, a scale, or an
    output the loss does not use) reach ``backward`` as None, not as zero tensors the
    autograd engine would allocate and fill (about 0.9 ms of a seed training step)."""
    def setup(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        setup_context(ctx, inputs, output)

    def formula(ctx, *grads):
        if grads[0] is None:  # only an output without a gradient was used
            # The eager path's Function has one more input, the op, and adds its None.
            inputs = len(ctx.needs_input_grad) - int(getattr(ctx, "fastnn_eager", False))
            return (None,) * inputs
        return backward(ctx, *grads)

    opdef.register_autograd(formula, setup_context=setup)
    _AUTOGRAD[opdef] = (setup, formula)


def _impl(ctx, opdef):
    """What a backward formula calls: the backward op through the dispatcher (traced by
    ``torch.compile``), or its plain function under the eager fast path."""
    return _EAGER[opdef] if getattr(ctx, "fastnn_eager", False) else opdef


class _EagerFunction(torch.autograd.Function):
    """The eager fast path: the op's own implementation, setup and backward formula as an
    ``autograd.Function``, without the dispatcher's round trips (about 150 us less per
    forward and backward). The last argument is the op."""

    @staticmethod
    def forward(ctx, *args):
        opdef, inputs = args[-1], args[:-1]
        output = _EAGER[opdef](*inputs)
        ctx.fastnn_eager, ctx.fastnn_op = True, opdef
        _AUTOGRAD[opdef][0](ctx, inputs, output)
        return output

    @staticmethod
    def backward(ctx, *grads):
        return (*_AUTOGRAD[ctx.fastnn_op][1](ctx, *grads), None)


def call(opdef, *args):
    """Run ``opdef`` (a ``fastnn::`` op) as the modules and functions of fastnn.torch do.

    Under ``torch.compile`` (and after ``use_dispatcher(True)``) through PyTorch's
    dispatcher; otherwise, eagerly, straight into the op's implementation (an
    ``autograd.Function`` when a gradient is needed): the same kernels and formulas.
    """
    if _state["dispatcher"] or torch.compiler.is_compiling():
        return opdef(*args)
    if torch.is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad
                                       for a in args):
        return _EagerFunction.apply(*args, opdef)
    return _EAGER[opdef](*args)


def use_dispatcher(flag: bool = True) -> bool:
    """Send eager calls of fastnn.torch's functions and modules through PyTorch's
    dispatcher (as ``torch.ops.fastnn.*`` calls) instead of the fast path; returns the
    previous setting.

    >>> import fastnn.torch as ft
    >>> previous = ft.use_dispatcher(True)
    >>> ft.use_dispatcher(previous)
    True
    """
    previous = _state["dispatcher"]
    _state["dispatcher"] = bool(flag)
    return previous


# --------------------------------------------------------------------------- conv2d

@_op("fastnn::conv2d")
def conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: list[int],
           padding: list[int], dilation: list[int]) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation)`` (``padding`` may also be
    ``[top, bottom, left, right]``) by fastnn's kernel; the result is channels-last."""
    op = "conv2d"
    _check_conv(op, x, weight, bias)
    ho, wo = _conv_out(op, x, weight, stride, padding, dilation)
    y, y_np = _out_cl((x.shape[0], weight.shape[0], ho, wo), x.dtype)
    ops.conv2d(_nhwc(x), _hwio(weight), _np(bias), **_geometry(op, stride, padding, dilation),
               out=y_np)
    return y


@conv2d.register_fake
def _(x, weight, bias, stride, padding, dilation):
    op = "conv2d"
    _check_conv(op, x, weight, bias, fake=True)
    ho, wo = _conv_out(op, x, weight, stride, padding, dilation)
    return _empty_cl((x.shape[0], weight.shape[0], ho, wo), x.dtype, x.device)


def _conv_grads(dz, db_from, x, weight, geometry, wants):
    """``(dx, dweight, dbias)`` of a convolution from its NHWC output gradient ``dz``, the
    bias gradient summed from ``db_from``; an unrequested one (``wants``) is empty."""
    want_dx, want_dw, want_db = wants
    if want_dx:
        dx, dx_np = _out_cl(tuple(x.shape), x.dtype)
        ops.conv2d_backward_data(dz, _hwio(weight), dx_np.shape, **geometry, out=dx_np)
    else:
        dx = _nothing(x.dtype)
    if want_dw:
        o, i, kh, kw = weight.shape
        dw_hwio = _scratch("conv_dw", (kh, kw, i, o), dz.dtype)
        dw = _oihw(ops.conv2d_backward_weights(dz, _nhwc(x), dw_hwio.shape, **geometry,
                                               out=dw_hwio))
    else:
        dw = _nothing(x.dtype)
    db = torch.from_numpy(ops.bias_backward(db_from)) if want_db else _nothing(x.dtype)
    return dx, dw, db


def _fake_conv_grads(x, weight, wants):
    want_dx, want_dw, want_db = wants
    return (_empty_cl(x.shape, x.dtype, x.device) if want_dx else x.new_empty(0),
            weight.new_empty(weight.shape) if want_dw else x.new_empty(0),
            x.new_empty(weight.shape[0]) if want_db else x.new_empty(0))


def _conv_setup(ctx, inputs, *saved):
    """Saves ``saved`` and the geometry of a convolution's ``inputs`` for its backward."""
    _x, _weight, bias, stride, padding, dilation = inputs
    ctx.save_for_backward(*saved)
    ctx.geometry = (stride, padding, dilation)
    ctx.has_bias = bias is not None


def _conv_input_grads(ctx, backward, *tensors):
    """Autograd's gradients of a convolution op: ``backward(*tensors, *geometry, mask)`` for
    the inputs that need one (the bias only when there is one), None for the options."""
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    need_b = need_b and ctx.has_bias
    dx, dw, db = _impl(ctx, backward)(*tensors, *ctx.geometry, [need_x, need_w, need_b])
    return (dx if need_x else None, dw if need_w else None, db if need_b else None,
            None, None, None)


@_op("fastnn::conv2d_backward")
def conv2d_backward(dy: Tensor, x: Tensor, weight: Tensor, stride: list[int],
                    padding: list[int], dilation: list[int],
                    output_mask: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dweight, dbias)`` of :func:`conv2d`; an unrequested one (``output_mask``) is an
    empty tensor."""
    op = "conv2d_backward"
    _check_conv(op, x, weight, None)
    _check(op, "dy", dy, 4, x)
    wants = _mask(op, output_mask)
    geometry = _geometry(op, stride, padding, dilation)
    dy_np = _nhwc(dy)
    return _conv_grads(dy_np, dy_np, x, weight, geometry, wants)


@conv2d_backward.register_fake
def _(dy, x, weight, stride, padding, dilation, output_mask):
    op = "conv2d_backward"
    _check_conv(op, x, weight, None, fake=True)
    _check(op, "dy", dy, 4, x, fake=True)
    return _fake_conv_grads(x, weight, _mask(op, output_mask))


def _conv2d_setup(ctx, inputs, output):
    x, weight = inputs[:2]
    _conv_setup(ctx, inputs, x, weight)


def _conv2d_grad(ctx, dy):
    x, weight = ctx.saved_tensors
    return _conv_input_grads(ctx, conv2d_backward, dy, x, weight)


_autograd(conv2d, _conv2d_grad, _conv2d_setup)


# --------------------------------------------------------------------------- fused conv

def _fused_shape(op, x, weight, stride, padding, dilation):
    ho, wo = _conv_out(op, x, weight, stride, padding, dilation)
    if ho < 2 or wo < 2:
        raise ValueError(f"fastnn::{op}: the 2x2 pool does not fit the convolution's "
                         f"{(ho, wo)} output")
    return (x.shape[0], weight.shape[0], ho // 2, wo // 2)


@_op("fastnn::conv2d_relu_max_pool2d")
def conv2d_relu_max_pool2d(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                           stride: list[int], padding: list[int],
                           dilation: list[int]) -> tuple[Tensor, Tensor]:
    """``F.max_pool2d(F.relu(F.conv2d(x, weight, bias, ...)), 2)`` as one op:
    ``(y, argmax)``, both channels-last; ``argmax`` (int64, not differentiable) holds
    fastnn's flat indices into the NHWC convolution output, for the backward."""
    op = "conv2d_relu_max_pool2d"
    _check_conv(op, x, weight, bias)
    _fused_shape(op, x, weight, stride, padding, dilation)
    y, argmax = ops.conv2d_relu_max_pool2d(_nhwc(x), _hwio(weight), _np(bias),
                                           **_geometry(op, stride, padding, dilation))
    return _wrap_nhwc(y), _wrap_nhwc(argmax)


@conv2d_relu_max_pool2d.register_fake
def _(x, weight, bias, stride, padding, dilation):
    op = "conv2d_relu_max_pool2d"
    _check_conv(op, x, weight, bias, fake=True)
    shape = _fused_shape(op, x, weight, stride, padding, dilation)
    return (_empty_cl(shape, x.dtype, x.device), _empty_cl(shape, torch.int64, x.device))


@_op("fastnn::conv2d_relu_max_pool2d_backward")
def conv2d_relu_max_pool2d_backward(dy: Tensor, y: Tensor, argmax: Tensor, x: Tensor,
                                    weight: Tensor, stride: list[int], padding: list[int],
                                    dilation: list[int],
                                    output_mask: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dweight, dbias)`` of :func:`conv2d_relu_max_pool2d` from its pooled output and
    argmax: the relu's mask is applied to the pooled gradient, which is then scattered to the
    convolution's output and taken through the convolution's backward."""
    op = "conv2d_relu_max_pool2d_backward"
    _check_conv(op, x, weight, None)
    for name, t in (("dy", dy), ("y", y)):
        _check(op, name, t, 4, x)
    wants = _mask(op, output_mask)
    geometry = _geometry(op, stride, padding, dilation)
    ho, wo = _conv_out(op, x, weight, stride, padding, dilation)
    dy_np = _nhwc(dy)
    masked = ops.relu_backward(dy_np, _nhwc(y), out=_scratch("fused_mask", dy_np.shape,
                                                             dy_np.dtype))
    z_shape = (x.shape[0], ho, wo, weight.shape[0])
    dz = ops.max_pool2d_backward(masked, _nhwc(argmax), z_shape,
                                 out=_scratch("fused_dz", z_shape, masked.dtype))
    return _conv_grads(dz, masked, x, weight, geometry, wants)


@conv2d_relu_max_pool2d_backward.register_fake
def _(dy, y, argmax, x, weight, stride, padding, dilation, output_mask):
    op = "conv2d_relu_max_pool2d_backward"
    _check_conv(op, x, weight, None, fake=True)
    return _fake_conv_grads(x, weight, _mask(op, output_mask))


def _fused_setup(ctx, inputs, output):
    x, weight = inputs[:2]
    y, argmax = output
    ctx.mark_non_differentiable(argmax)
    _conv_setup(ctx, inputs, x, weight, y, argmax)


def _fused_grad(ctx, dy, _dargmax):
    x, weight, y, argmax = ctx.saved_tensors
    return _conv_input_grads(ctx, conv2d_relu_max_pool2d_backward, dy, y, argmax, x, weight)


_autograd(conv2d_relu_max_pool2d, _fused_grad, _fused_setup)


# --------------------------------------------------------------------------- max-pool

def _pool_shape(op, x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = (_pair(op, "kernel_size", kernel_size),
                                    _pair(op, "stride", stride or kernel_size),
                                    _pair(op, "padding", padding))
    if min(kh, kw, sh, sw) < 1 or ph < 0 or pw < 0:
        raise ValueError(f"fastnn::{op}: kernel_size and stride must be >= 1 and padding >= 0, "
                         f"got {list(kernel_size)}, {list(stride)}, {list(padding)}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"fastnn::{op}: padding must be at most half the kernel "
                         f"{(kh, kw)}, got {(ph, pw)}")
    h, w = x.shape[2], x.shape[3]
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"fastnn::{op}: kernel {(kh, kw)} does not fit the padded input "
                         f"{(h, w)}")
    return (x.shape[0], x.shape[1], ho, wo), {"kernel": (kh, kw), "stride": (sh, sw),
                                              "padding": (ph, pw)}


@_op("fastnn::max_pool2d")
def max_pool2d(x: Tensor, kernel_size: list[int], stride: list[int],
               padding: list[int]) -> tuple[Tensor, Tensor]:
    """``F.max_pool2d(x, kernel_size, stride or kernel_size, padding)`` as
    ``(y, argmax)``, both channels-last; ``argmax`` (int64, not differentiable) holds flat
    indices into the NHWC input, for the backward."""
    op = "max_pool2d"
    _check(op, "x", x, 4)
    _, options = _pool_shape(op, x, kernel_size, stride, padding)
    y, argmax = ops.max_pool2d(_nhwc(x), **options)
    return _wrap_nhwc(y), _wrap_nhwc(argmax)


@max_pool2d.register_fake
def _(x, kernel_size, stride, padding):
    op = "max_pool2d"
    _check(op, "x", x, 4, fake=True)
    shape, _ = _pool_shape(op, x, kernel_size, stride, padding)
    return _empty_cl(shape, x.dtype, x.device), _empty_cl(shape, torch.int64, x.device)


@_op("fastnn::max_pool2d_backward")
def max_pool2d_backward(dy: Tensor, argmax: Tensor, x_shape: list[int]) -> Tensor:
    """The gradient of :func:`max_pool2d`'s input (NCHW ``x_shape``, channels-last)."""
    op = "max_pool2d_backward"
    _check(op, "dy", dy, 4)
    n, c, h, w = (int(s) for s in x_shape)
    dx, dx_np = _out_cl((n, c, h, w), dy.dtype)
    ops.max_pool2d_backward(_nhwc(dy), _nhwc(argmax), dx_np.shape, out=dx_np)
    return dx


@max_pool2d_backward.register_fake
def _(dy, argmax, x_shape):
    _check("max_pool2d_backward", "dy", dy, 4, fake=True)
    return _empty_cl(x_shape, dy.dtype, dy.device)


def _pool_setup(ctx, inputs, output):
    x = inputs[0]
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.x_shape = list(x.shape)


def _pool_grad(ctx, dy, _dargmax):
    (argmax,) = ctx.saved_tensors
    return _impl(ctx, max_pool2d_backward)(dy, argmax, ctx.x_shape), None, None, None


_autograd(max_pool2d, _pool_grad, _pool_setup)


# --------------------------------------------------------------------------- LRN

def _check_lrn(op, depth_radius, bias, alpha, beta):
    if depth_radius < 0 or not bias > 0 or alpha < 0 or beta < 0:
        raise ValueError(f"fastnn::{op}: needs depth_radius >= 0, bias > 0, alpha >= 0 and "
                         f"beta >= 0, got {depth_radius}, {bias}, {alpha}, {beta}")


@_op("fastnn::local_response_norm")
def local_response_norm(x: Tensor, depth_radius: int, bias: float, alpha: float,
                        beta: float) -> tuple[Tensor, Tensor]:
    """Local response normalisation across channels with TensorFlow's parameters:
    ``scale = bias + alpha * sum(x[c']**2, |c' - c| <= depth_radius)``,
    ``y = x * scale**-beta``. Returns ``(y, scale)``, channels-last; ``scale`` is not
    differentiable. (:func:`fastnn.torch.local_response_norm` takes PyTorch's parameters.)"""
    op = "local_response_norm"
    _check(op, "x", x, 4)
    _check_lrn(op, depth_radius, bias, alpha, beta)
    y, scale = ops.local_response_norm(_nhwc(x), depth_radius=int(depth_radius),
                                       bias=float(bias), alpha=float(alpha), beta=float(beta))
    return _wrap_nhwc(y), _wrap_nhwc(scale)


@local_response_norm.register_fake
def _(x, depth_radius, bias, alpha, beta):
    op = "local_response_norm"
    _check(op, "x", x, 4, fake=True)
    _check_lrn(op, depth_radius, bias, alpha, beta)
    return _empty_cl(x.shape, x.dtype, x.device), _empty_cl(x.shape, x.dtype, x.device)


@_op("fastnn::local_response_norm_backward")
def local_response_norm_backward(dy: Tensor, x: Tensor, y: Tensor, scale: Tensor,
                                 depth_radius: int, bias: float, alpha: float,
                                 beta: float) -> Tensor:
    """The gradient of :func:`local_response_norm`'s input (channels-last)."""
    op = "local_response_norm_backward"
    _check(op, "x", x, 4)
    for name, t in (("dy", dy), ("y", y), ("scale", scale)):
        _check(op, name, t, 4, x)
    dx, dx_np = _out_cl(tuple(x.shape), x.dtype)
    ops.local_response_norm_backward(_nhwc(dy), _nhwc(x), _nhwc(y), _nhwc(scale),
                                     depth_radius=int(depth_radius), bias=float(bias),
                                     alpha=float(alpha), beta=float(beta), out=dx_np)
    return dx


@local_response_norm_backward.register_fake
def _(dy, x, y, scale, depth_radius, bias, alpha, beta):
    _check("local_response_norm_backward", "x", x, 4, fake=True)
    return _empty_cl(x.shape, x.dtype, x.device)


def _lrn_setup(ctx, inputs, output):
    x, *options = inputs
    y, scale = output
    ctx.mark_non_differentiable(scale)
    ctx.save_for_backward(x, y, scale)
    ctx.options = options


def _lrn_grad(ctx, dy, _dscale):
    x, y, scale = ctx.saved_tensors
    return (_impl(ctx, local_response_norm_backward)(dy, x, y, scale, *ctx.options),
            None, None, None, None)


_autograd(local_response_norm, _lrn_grad, _lrn_setup)


# --------------------------------------------------------------------------- linear

def _check_linear(op, x, weight, bias, activation, fake=False):
    _check_weight(op, x, weight, bias, 2, "(out_features, in_features)", "in_features",
                  "columns", fake)
    if activation not in ACTIVATIONS:
        raise ValueError(f"fastnn::{op}: activation must be one of {ACTIVATIONS}, got "
                         f"{activation!r}")


def _rows(t: Tensor) -> np.ndarray:
    """A 2-D tensor as a C-contiguous array (a view when it is contiguous)."""
    t = t.detach()
    return (t if t.is_contiguous() else t.contiguous()).numpy()


@_op("fastnn::linear")
def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor],
           activation: Optional[str]) -> Tensor:
    """``activation(F.linear(x, weight, bias))`` for 2-D ``x``; ``activation`` None, "relu",
    "tanh" or "sigmoid". One GEMM on PyTorch's weight layout (``trans_b``), the bias as its
    initial output (``beta=1``), the activation in place."""
    op = "linear"
    _check_linear(op, x, weight, bias, activation)
    y = torch.empty((x.shape[0], weight.shape[0]), dtype=x.dtype)
    y_np = y.numpy()
    x_np, w_np = _rows(x), _rows(weight)
    if bias is None:
        ops.gemm(x_np, w_np, trans_b=True, out=y_np)
    else:
        y_np[...] = bias.detach().numpy()
        ops.gemm(x_np, w_np, trans_b=True, beta=1.0, out=y_np)
    if activation is not None:
        _ACT_FORWARD[activation](y_np, out=y_np)
    return y


@linear.register_fake
def _(x, weight, bias, activation):
    _check_linear("linear", x, weight, bias, activation, fake=True)
    return x.new_empty((x.shape[0], weight.shape[0]))


@_op("fastnn::linear_backward")
def linear_backward(dy: Tensor, x: Tensor, weight: Tensor, y: Optional[Tensor],
                    activation: Optional[str],
                    output_mask: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dweight, dbias)`` of :func:`linear` (``y``, its output, is needed when there
    is an activation); an unrequested one (``output_mask``) is an empty tensor."""
    op = "linear_backward"
    _check_linear(op, x, weight, None, activation)
    _check(op, "dy", dy, 2, x)
    want_dx, want_dw, want_db = _mask(op, output_mask)
    dz = _rows(dy)
    if activation is not None:
        if y is None:
            raise ValueError(f"fastnn::{op}: y (the forward's output) is needed with "
                             f"activation={activation!r}")
        dz = _ACT_BACKWARD[activation](dz, _rows(y), out=_scratch("linear_dz", dz.shape,
                                                                  dz.dtype))
    if want_dx:
        dx = torch.empty(tuple(x.shape), dtype=x.dtype)
        ops.gemm(dz, _rows(weight), out=dx.numpy())
    else:
        dx = _nothing(x.dtype)
    if want_dw:
        dw = torch.empty(tuple(weight.shape), dtype=x.dtype)
        ops.gemm(dz, _rows(x), trans_a=True, out=dw.numpy())
    else:
        dw = _nothing(x.dtype)
    db = torch.from_numpy(ops.bias_backward(dz)) if want_db else _nothing(x.dtype)
    return dx, dw, db


@linear_backward.register_fake
def _(dy, x, weight, y, activation, output_mask):
    _check_linear("linear_backward", x, weight, None, activation, fake=True)
    want_dx, want_dw, want_db = _mask("linear_backward", output_mask)
    return (x.new_empty(x.shape) if want_dx else x.new_empty(0),
            weight.new_empty(weight.shape) if want_dw else x.new_empty(0),
            x.new_empty(weight.shape[0]) if want_db else x.new_empty(0))


def _linear_setup(ctx, inputs, output):
    x, weight, bias, activation = inputs
    ctx.save_for_backward(x, weight, output if activation is not None else None)
    ctx.activation = activation
    ctx.has_bias = bias is not None


def _linear_grad(ctx, dy):
    x, weight, y = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    need_b = need_b and ctx.has_bias
    dx, dw, db = _impl(ctx, linear_backward)(dy, x, weight, y, ctx.activation,
                                             [need_x, need_w, need_b])
    return dx if need_x else None, dw if need_w else None, db if need_b else None, None


_autograd(linear, _linear_grad, _linear_setup)


# --------------------------------------------------------------------------- dropout

def _check_dropout(op, p):
    if not isinstance(p, float) or not 0.0 <= p < 1.0:
        raise ValueError(f"fastnn::{op}: p (the probability of dropping an element) must be a "
                         f"float in [0, 1), got {p!r}")


def _rank(t) -> int:
    return t.dim() if isinstance(t, Tensor) else 0


def _dense(t: Tensor) -> tuple[np.ndarray, bool]:
    """The array on ``t``'s memory in memory order (a copy first when ``t`` is neither
    contiguous nor a channels-last 4-D tensor), and whether that order is channels-last."""
    t = t.detach()
    if t.is_contiguous():
        return t.numpy(), False
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).numpy(), True
    return t.contiguous().numpy(), False


def _undense(a: np.ndarray, channels_last: bool) -> Tensor:
    """The tensor of logical shape on an array of :func:`_dense`'s memory order."""
    return _wrap_nhwc(a) if channels_last else torch.from_numpy(a)


@_op("fastnn::dropout")
def dropout(x: Tensor, p: float, seed: int) -> tuple[Tensor, Tensor]:
    """Inverted dropout by fastnn's kernel: ``(y, mask)``, ``y = x * mask / (1 - p)`` with
    ``mask`` (bool, not differentiable) keeping each element with probability ``1 - p``.
    The mask is a function of ``seed`` (``0 <= seed < 2**63``) and of each element's
    position in memory (:func:`fastnn.ops.dropout`); a channels-last ``x`` gives
    channels-last results, any other layout contiguous ones."""
    op = "dropout"
    _check(op, "x", x, _rank(x))
    _check_dropout(op, p)
    if not 0 <= seed < 2**63:
        raise ValueError(f"fastnn::{op}: seed must be in [0, 2**63), got {seed}")
    x_np, cl = _dense(x)
    y, mask = ops.dropout(x_np, keep_prob=1.0 - p, seed=seed)
    return _undense(y, cl), _undense(mask, cl)


@dropout.register_fake
def _(x, p, seed):
    _check("dropout", "x", x, _rank(x), fake=True)
    _check_dropout("dropout", p)
    cl = (x.dim() == 4 and not x.is_contiguous()
          and x.is_contiguous(memory_format=torch.channels_last))
    form = torch.channels_last if cl else torch.contiguous_format
    return (torch.empty_like(x, memory_format=form),
            torch.empty_like(x, dtype=torch.bool, memory_format=form))


@_op("fastnn::dropout_backward")
def dropout_backward(dy: Tensor, mask: Tensor, p: float) -> Tensor:
    """The gradient of :func:`dropout`'s input, ``dy * mask / (1 - p)``, in ``mask``'s
    layout."""
    op = "dropout_backward"
    _check(op, "dy", dy, _rank(dy))
    _check_dropout(op, p)
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != dy.shape:
        raise ValueError(f"fastnn::{op}: mask must be a bool tensor of dy's shape "
                         f"{tuple(dy.shape)}, got {getattr(mask, 'dtype', type(mask))} "
                         f"{tuple(getattr(mask, 'shape', ()))}")
    mask_np, cl = _dense(mask)
    form = torch.channels_last if cl else torch.contiguous_format
    dy_np, _ = _dense(dy.contiguous(memory_format=form))  # mask's element order
    return _undense(ops.dropout_backward(dy_np, mask_np, keep_prob=1.0 - p), cl)


@dropout_backward.register_fake
def _(dy, mask, p):
    _check("dropout_backward", "dy", dy, _rank(dy), fake=True)
    return torch.empty_like(mask, dtype=dy.dtype)


def _dropout_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.p = inputs[1]


def _dropout_grad(ctx, dy, _dmask):
    (mask,) = ctx.saved_tensors
    return _impl(ctx, dropout_backward)(dy, mask, ctx.p), None, None


_autograd(dropout, _dropout_grad, _dropout_setup)
