"""``torch.nn`` modules that compute with fastnn's kernels, and :func:`swap`.

Each module subclasses its PyTorch counterpart: the same constructor, parameters,
initialisation, ``state_dict`` keys and ``repr``; only ``forward`` differs, and the
options fastnn does not implement are refused when the module is built (or swapped in):

* :class:`Conv2d` - ``groups=1`` and ``padding_mode="zeros"`` only;
* :class:`ConvReluMaxPool2d` - ``Conv2d`` -> ``ReLU`` -> ``MaxPool2d(2)`` in one op, with
  ``Conv2d``'s constructor and parameters;
* :class:`MaxPool2d` - ``dilation=1``, ``ceil_mode=False``, ``return_indices=False``;
* :class:`LocalResponseNorm` - odd ``size`` (a window centred on each channel), 4-D input;
* :class:`Linear` - plus an optional fused ``activation`` ("relu", "tanh", "sigmoid");
* :class:`Dropout` - not in place; its masks come from seeds drawn from PyTorch's generator.

Image outputs are channels-last tensors; feed channels-last images
(``x.to(memory_format=torch.channels_last)``) to avoid a copy at the first layer.

Example
-------
>>> import torch
>>> from fastnn.torch import nn as fnn
>>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
...                             torch.nn.MaxPool2d(2), torch.nn.Flatten(),
...                             torch.nn.Linear(4 * 4 * 4, 10))
>>> x = torch.randn(2, 1, 8, 8)
>>> expected = model(x)
>>> fnn.swap(model)[0]
ConvReluMaxPool2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
>>> bool(torch.allclose(model(x), expected, atol=1e-5))
True
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

import fastnn.torch as _ft
from fastnn.torch import _ops
from fastnn.torch._ops import ACTIVATIONS

__all__ = ["Conv2d", "ConvReluMaxPool2d", "MaxPool2d", "LocalResponseNorm", "Linear", "Dropout",
           "swap", "unsupported"]


def _conv_problem(m: nn.Conv2d) -> Optional[str]:
    if m.groups != 1:
        return f"groups={m.groups} (fastnn's convolutions are dense: groups=1)"
    if m.padding_mode != "zeros":
        return f"padding_mode={m.padding_mode!r} (only 'zeros')"
    if m.padding == "same" and tuple(m.stride) != (1, 1):
        return "padding='same' with a stride other than 1"
    return None


def _pool_problem(m: nn.MaxPool2d) -> Optional[str]:
    if m.dilation not in (1, (1, 1), [1, 1]):
        return f"dilation={m.dilation} (only 1)"
    if m.ceil_mode:
        return "ceil_mode=True (only floor mode)"
    if m.return_indices:
        return "return_indices=True"
    return None


def _lrn_problem(m: nn.LocalResponseNorm) -> Optional[str]:
    if m.size % 2 == 0:
        return f"an even size={m.size} (fastnn's window is centred on each channel)"
    return None


def _refuse(module: str, problem: Optional[str]) -> None:
    if problem is not None:
        raise ValueError(f"fastnn.torch.nn.{module}: {problem} is not supported")


def _check_activation(module: str, activation) -> Optional[str]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"fastnn.torch.nn.{module}: activation must be one of {ACTIVATIONS}, "
                         f"got {activation!r}")
    return activation


class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` by fastnn's kernel (``groups=1``, zero padding).

    >>> conv = Conv2d(3, 8, 3, padding=1)
    >>> conv(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _refuse(type(self).__name__, _conv_problem(self))

    def _pads(self) -> list[int]:
        return _ft.conv_padding(type(self).__name__, self.padding, self.kernel_size,
                                self.stride, self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ops.call(_ops.conv2d, x, self.weight, self.bias, list(self.stride),
                         self._pads(), list(self.dilation))


class ConvReluMaxPool2d(Conv2d):
    """``Conv2d`` -> ``ReLU`` -> ``MaxPool2d(2)`` as one op; the constructor and parameters
    of :class:`Conv2d`.

    >>> layer = ConvReluMaxPool2d(1, 32, 3, padding=1)
    >>> layer(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 32, 14, 14])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ops.call(_ops.conv2d_relu_max_pool2d, x, self.weight, self.bias,
                         list(self.stride), self._pads(), list(self.dilation))[0]


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` (dilation 1, floor mode, no indices) by fastnn's kernel.

    >>> MaxPool2d(2)(torch.randn(1, 3, 8, 8)).shape
    torch.Size([1, 3, 4, 4])
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _refuse("MaxPool2d", _pool_problem(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _ft._pair("kernel_size", "MaxPool2d", self.kernel_size)
        stride = kernel if self.stride is None else _ft._pair("stride", "MaxPool2d", self.stride)
        return _ops.call(_ops.max_pool2d, x, kernel, stride,
                         _ft._pair("padding", "MaxPool2d", self.padding))[0]


class LocalResponseNorm(nn.LocalResponseNorm):
    """``torch.nn.LocalResponseNorm`` (odd ``size``, 4-D input) by fastnn's kernel.

    PyTorch's formula, ``x / (k + alpha / size * sum(x**2 over size channels))**beta``, is
    TensorFlow's with ``depth_radius = size // 2`` and ``alpha / size``
    (:func:`fastnn.torch.lrn_options`); TensorFlow's defaults (``depth_radius=5``,
    ``alpha=1e-4``) are ``LocalResponseNorm(11, alpha=11e-4)``.

    >>> LocalResponseNorm(5)(torch.randn(1, 8, 4, 4)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _refuse("LocalResponseNorm", _lrn_problem(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"fastnn.torch.nn.LocalResponseNorm: x must be 4-D "
                             f"(n, c, h, w), got shape {tuple(x.shape)}")
        return _ft.local_response_norm(x, self.size, self.alpha, self.beta, self.k)


class Linear(nn.Linear):
    """``torch.nn.Linear`` by fastnn's GEMM, with an optional fused ``activation``.

    >>> Linear(4, 3, activation="tanh")(torch.randn(2, 4)).abs().max() < 1
    tensor(True)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None, *, activation: Optional[str] = None) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.activation = _check_activation("Linear", activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ft.linear(x, self.weight, self.bias, self.activation)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.activation is None else f"{text}, activation={self.activation!r}"


def _dropout_problem(m: nn.Dropout) -> Optional[str]:
    return "inplace=True (fastnn's dropout writes a new tensor)" if m.inplace else None


class Dropout(nn.Dropout):
    """``torch.nn.Dropout`` by fastnn's kernel (not in place): the same distribution, masks
    from seeds drawn from PyTorch's default generator (:func:`fastnn.torch.dropout`).

    >>> Dropout(0.2).eval()(torch.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _refuse("Dropout", _dropout_problem(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ft.dropout(x, self.p, self.training)


# --------------------------------------------------------------------------- swap

_REPLACEMENTS = {nn.Conv2d: (Conv2d, _conv_problem), nn.MaxPool2d: (MaxPool2d, _pool_problem),
                 nn.LocalResponseNorm: (LocalResponseNorm, _lrn_problem),
                 nn.Linear: (Linear, lambda m: None),
                 nn.Dropout: (Dropout, _dropout_problem)}
_ACTIVATION_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


def unsupported(module: nn.Module) -> Optional[str]:
    """Why :func:`swap` leaves ``module`` as it is (None when it replaces it, or the module
    is of no type it replaces).

    >>> unsupported(torch.nn.Conv2d(4, 4, 3, groups=2))
    "groups=2 (fastnn's convolutions are dense: groups=1)"
    """
    entry = _REPLACEMENTS.get(type(module))
    return None if entry is None else entry[1](module)


def _is_pool2(m: nn.Module) -> bool:
    def two(v):
        return v in (2, (2, 2), [2, 2])
    return (type(m) in (nn.MaxPool2d, MaxPool2d) and two(m.kernel_size)
            and (m.stride is None or two(m.stride)) and m.padding in (0, (0, 0), [0, 0])
            and _pool_problem(m) is None)


def _fuse(seq: nn.Sequential) -> None:
    """Conv2d -> ReLU -> MaxPool2d(2) becomes ConvReluMaxPool2d, Linear -> ReLU/Tanh/Sigmoid
    a Linear with that activation; the absorbed modules become ``nn.Identity`` (so the other
    children keep their names and ``state_dict`` keys)."""
    names = list(seq._modules)
    mods = [seq._modules[n] for n in names]
    i = 0
    while i < len(mods):
        m = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if (type(m) in (nn.Conv2d, Conv2d) and _conv_problem(m) is None
                and type(nxt) is nn.ReLU and i + 2 < len(mods) and _is_pool2(mods[i + 2])):
            m.__class__ = ConvReluMaxPool2d
            for j in (i + 1, i + 2):
                seq._modules[names[j]] = nn.Identity()
            i += 3
            continue
        if (type(m) in (nn.Linear, Linear) and getattr(m, "activation", None) is None
                and type(nxt) in _ACTIVATION_MODULES):
            m.__class__ = Linear
            m.activation = _ACTIVATION_MODULES[type(nxt)]
            seq._modules[names[i + 1]] = nn.Identity()
            i += 2
            continue
        i += 1


def swap(model: nn.Module, *, fuse: bool = True, strict: bool = False) -> nn.Module:
    """Make ``model`` compute with fastnn's kernels, in place, and return it.

    Every ``torch.nn.Conv2d``, ``MaxPool2d``, ``LocalResponseNorm``, ``Linear`` and
    ``Dropout`` (exactly those types: subclasses may have their own ``forward``) becomes
    the module of this package *of the same object*: its parameters, buffers, hooks and
    ``state_dict`` stay as they were, so an optimizer built before the swap keeps training
    the same tensors.
    With ``fuse``, inside an ``nn.Sequential`` a ``Conv2d, ReLU, MaxPool2d(2)`` run becomes
    one :class:`ConvReluMaxPool2d` and ``Linear, ReLU/Tanh/Sigmoid`` one :class:`Linear` with
    that activation (the absorbed modules become ``nn.Identity``). Modules with options
    fastnn does not implement (:func:`unsupported` says which) are left to PyTorch, or
    raise ``ValueError`` with ``strict``.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 2))
    >>> swap(model)
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True, activation='tanh')
      (1): Identity()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"swap: model must be a torch.nn.Module, got {type(model).__name__}")
    for module in list(model.modules()):
        if fuse and type(module) is nn.Sequential:
            _fuse(module)
    for name, module in list(model.named_modules()):
        entry = _REPLACEMENTS.get(type(module))
        if entry is None:
            continue
        cls, problem = entry[0], entry[1](module)
        if problem is not None:
            if strict:
                raise ValueError(f"swap: {name or type(module).__name__} "
                                 f"({type(module).__name__}) has {problem}, which fastnn does "
                                 f"not support")
            continue
        module.__class__ = cls
        if cls is Linear:
            module.activation = None
    return model
