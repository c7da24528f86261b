"""fastnn.torch: fastnn's CPU kernels as PyTorch custom operators and modules.

Importing this package registers the ops under ``torch.ops.fastnn`` (``torch.library``
custom ops with fake implementations and autograd formulas, so they work under autograd,
``torch.compile`` and ``torch.library.opcheck``):

==========================================  ==================================================
``conv2d``                                  convolution, NCHW shapes, OIHW weights
``conv2d_relu_max_pool2d``                  conv + ReLU + 2x2 max-pool in one op
``max_pool2d``                              max pooling
``local_response_norm``                     LRN across channels (TensorFlow's parameters)
``linear``                                  dense layer with fused bias and activation
``dropout``                                 inverted dropout, the mask from a seed
``*_backward``                              their gradients, ops too (traced by ``compile``)
==========================================  ==================================================

The functions below are the friendly front: PyTorch's own argument conventions
(``torch.nn.functional``), a plain result (no argmax or scale), and the options fastnn does
not implement refused with a clear error. :mod:`fastnn.torch.nn` has the modules
(``Conv2d``, ``MaxPool2d``, ``LocalResponseNorm``, ``Linear``, ``ConvReluMaxPool2d``,
``Dropout``) and
:func:`fastnn.torch.nn.swap`, which puts them into an existing model.

Eagerly, the functions and modules call the ops' implementations directly (an
``autograd.Function`` with the same backward formulas) rather than through the dispatcher,
which costs about 150 us per op and step; under ``torch.compile``, or after
:func:`use_dispatcher`, they call ``torch.ops.fastnn.*``.

Tensors: float32 or float64 on the CPU. Image results are channels-last (NHWC memory); a
channels-last input is read without a copy, any other is made channels-last first (one
copy). Convolution weights are transposed to fastnn's HWIO on each call (a weight-sized
copy). Threads: fastnn's kernels use :func:`fastnn.set_num_threads`, not
``torch.set_num_threads``; set both. Subnormal numbers likewise: fastnn's kernels flush
them under :func:`fastnn.set_flush_denormals` (fastnn.nn's ``Learner`` turns it on while it
trains), PyTorch's ops under ``torch.set_flush_denormal``; a long run whose weights decay
towards zero slows down several-fold without both.

Example
-------
>>> import torch, fastnn.torch as ft
>>> x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
>>> w = torch.randn(4, 3, 3, 3)
>>> y = ft.conv2d(x, w, padding=1)
>>> y.shape, y.is_contiguous(memory_format=torch.channels_last)
(torch.Size([2, 4, 8, 8]), True)
>>> bool(torch.allclose(y, torch.nn.functional.conv2d(x, w, padding=1), atol=1e-4))
True
"""

from __future__ import annotations

from typing import Optional, Union

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised where torch is absent
    raise ImportError("fastnn.torch needs PyTorch (pip install 'fastnn[torch]' or "
                      "pip install torch)") from exc

from fastnn.torch import _ops
from fastnn.torch._ops import use_dispatcher

__all__ = ["conv2d", "conv2d_relu_max_pool2d", "max_pool2d", "local_response_norm", "linear",
           "dropout", "conv_padding", "lrn_options", "use_dispatcher", "nn"]

IntOrPair = Union[int, tuple, list]


def _pair(name: str, op: str, value) -> list[int]:
    v = [value, value] if isinstance(value, int) else list(value)
    if len(v) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return v


def conv_padding(op: str, padding, kernel_size, stride, dilation) -> list[int]:
    """PyTorch's ``padding`` (an int, a pair, "valid", "same") as the ops' ``[top, bottom,
    left, right]``. "same" needs stride 1, as in PyTorch; with an even window its extra row
    and column go to the bottom and the right, as PyTorch pads.

    >>> conv_padding("conv2d", "same", (3, 4), (1, 1), (1, 1))
    [1, 1, 1, 2]
    """
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        if list(stride) != [1, 1]:
            raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got "
                             f"stride {tuple(stride)}")
        pads = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return pads
    if isinstance(padding, (list, tuple)) and len(padding) == 4:
        return [int(p) for p in padding]
    ph, pw = _pair("padding", op, padding)
    return [ph, ph, pw, pw]


def _groups(op: str, groups: int) -> None:
    if groups != 1:
        raise ValueError(f"{op}: groups={groups} is not supported (fastnn's convolutions are "
                         f"dense: groups=1)")


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           stride: IntOrPair = 1, padding=0, dilation: IntOrPair = 1,
           groups: int = 1) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` by fastnn's kernel (``groups`` must be 1).

    ``padding`` may also be ``(top, bottom, left, right)``. The result is channels-last.
    """
    _groups("conv2d", groups)
    stride, dilation = _pair("stride", "conv2d", stride), _pair("dilation", "conv2d", dilation)
    pads = conv_padding("conv2d", padding, tuple(weight.shape[2:]), stride, dilation)
    return _ops.call(_ops.conv2d, x, weight, bias, stride, pads, dilation)


def conv2d_relu_max_pool2d(x: torch.Tensor, weight: torch.Tensor,
                           bias: Optional[torch.Tensor] = None, stride: IntOrPair = 1,
                           padding=0, dilation: IntOrPair = 1) -> torch.Tensor:
    """``F.max_pool2d(F.relu(F.conv2d(x, weight, bias, stride, padding, dilation)), 2)`` in
    one op (the cpu backend pools each pair of rows while it is in cache)."""
    op = "conv2d_relu_max_pool2d"
    stride, dilation = _pair("stride", op, stride), _pair("dilation", op, dilation)
    pads = conv_padding(op, padding, tuple(weight.shape[2:]), stride, dilation)
    return _ops.call(_ops.conv2d_relu_max_pool2d, x, weight, bias, stride, pads, dilation)[0]


def max_pool2d(x: torch.Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> torch.Tensor:
    """``torch.nn.functional.max_pool2d`` (dilation 1, floor mode, no indices)."""
    op = "max_pool2d"
    if _pair("dilation", op, dilation) != [1, 1] or ceil_mode or return_indices:
        raise ValueError(f"{op}: only dilation=1, ceil_mode=False and return_indices=False are "
                         f"supported, got dilation={dilation!r}, ceil_mode={ceil_mode!r}, "
                         f"return_indices={return_indices!r}")
    kernel = _pair("kernel_size", op, kernel_size)
    stride = kernel if stride is None or stride == [] else _pair("stride", op, stride)
    return _ops.call(_ops.max_pool2d, x, kernel, stride, _pair("padding", op, padding))[0]


def lrn_options(size: int, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 1.0) -> dict:
    """PyTorch's LRN parameters as fastnn's (TensorFlow's): ``torch.nn.LocalResponseNorm``
    divides ``alpha`` by ``size`` and sums over ``size`` channels centred on each one, so
    ``depth_radius = size // 2`` and ``alpha / size``. Only odd sizes have a centred window.

    >>> lrn_options(11, alpha=1.1e-3)
    {'depth_radius': 5, 'bias': 1.0, 'alpha': 0.0001, 'beta': 0.75}
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
        raise ValueError(f"local_response_norm: size must be an odd int >= 1 (fastnn's window "
                         f"is centred on each channel), got {size!r}")
    return {"depth_radius": size // 2, "bias": float(k), "alpha": float(alpha) / size,
            "beta": float(beta)}


def local_response_norm(x: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> torch.Tensor:
    """``torch.nn.functional.local_response_norm`` on 4-D input (odd ``size``)."""
    o = lrn_options(size, alpha, beta, k)
    return _ops.call(_ops.local_response_norm, x, o["depth_radius"], o["bias"], o["alpha"],
                     o["beta"])[0]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           activation: Optional[str] = None) -> torch.Tensor:
    """``activation(torch.nn.functional.linear(x, weight, bias))``; ``x`` of any rank >= 1
    (the leading axes are flattened, a view for contiguous ``x``); ``activation`` None,
    "relu", "tanh" or "sigmoid"."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"linear: x must be a tensor of rank >= 1, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if x.dim() == 2:
        return _ops.call(_ops.linear, x, weight, bias, activation)
    lead = x.shape[:-1]
    y = _ops.call(_ops.linear, x.reshape(-1, x.shape[-1]), weight, bias, activation)
    return y.reshape(*lead, y.shape[-1])


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            *, seed: Optional[int] = None) -> torch.Tensor:
    """``torch.nn.functional.dropout`` by fastnn's kernel (not in place).

    Each call draws its mask's ``seed`` from PyTorch's default generator, so
    ``torch.manual_seed`` makes a run repeat; the masks differ from PyTorch's own (another
    generator), their distribution does not. ``seed`` (``0 <= seed < 2**63``) fixes the
    mask: the same seed, shape and layout give the same mask on every thread count.
    ``p == 1`` drops everything (zeros, as PyTorch); outside training, or with ``p == 0``,
    ``x`` itself is returned.

    >>> x = torch.ones(2, 4)
    >>> y = dropout(x, 0.5, seed=3)
    >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    >>> dropout(x, 0.5, training=False) is x
    True
    """
    if inplace:
        raise ValueError("dropout: inplace=True is not supported (fastnn's dropout writes a "
                         "new tensor); use inplace=False")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()))
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"dropout: seed must be an int in [0, 2**63), got {seed!r}")
    return _ops.call(_ops.dropout, x, float(p), seed)[0]


from fastnn.torch import nn  # noqa: E402  (the modules use the functions above)
