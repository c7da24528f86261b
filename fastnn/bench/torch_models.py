"""The seed convnet in PyTorch, for benchmarks: a plain form and a tuned one.

Both are the network of :func:`fastnn.models.seed_convnet` layer for layer (conv 32 →
max-pool → LRN → conv 64 → max-pool → LRN → dense 128 tanh → dropout → dense 256 tanh →
dropout → dense 10), float32, and start from *the same weights* as
``seed_convnet(seed=seed)`` (copied from it, so the initialisation scheme is identical and
the outputs match fastnn's in evaluation mode). They train as :func:`fastnn.models.seed_learner`
does: Adam at lr 0.01, L2 0.001 on the two convolutions' weights (``weight_decay`` of the
optimizer's conv-weight group: it adds ``0.001 * W`` to the gradient, TFLearn's regulariser),
softmax cross-entropy averaged over the batch, dropout keep 0.8 in training.

* ``plain``: what a user writes first: NCHW tensors, ``nn.LocalResponseNorm`` (its ``alpha``
  is averaged over the window, so ``alpha * size`` gives TensorFlow's sum) and
  ``F.max_pool2d``; default Adam.
* ``tuned``: the best honest PyTorch form we know: channels-last tensors and weights, the
  flatten a free view of the NHWC memory (dense 1's weight rows in (h, w, c) order), LRN as a
  matmul of ``x * x`` with a 0/1 band matrix over the channels (a custom autograd function
  with the fused backward), in-place ReLU, ``inference_mode`` for inference and the fused
  (single-kernel) Adam.

:func:`torch_twin` builds the same pair of forms for any other :class:`fastnn.nn.Sequential`
of convolutions, pools, dense layers, dropout and activations (``fastnn.models.lenet5`` and
``cifar_convnet`` in the benchmarks), with its weights.

PyTorch is optional: importing this module imports torch.

Example
-------
>>> import numpy as np
>>> net = seed_convnet_torch("tuned")
>>> step = train_step_fn(net)
>>> x = np.zeros((4, 28, 28, 1), np.float32)
>>> isinstance(step(to_input(x, net), torch.zeros(4, dtype=torch.int64)), float)
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fastnn import models

__all__ = ["SeedConvNetTorch", "seed_convnet_torch", "TwinNet", "torch_twin", "train_step_fn",
           "predict_fn", "to_input"]

DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA = 5, 1.0, 1e-4, 0.75


class _BandLRN(torch.autograd.Function):
    """TensorFlow's LRN over the last axis of a 2-D (pixels, channels) tensor:
    ``scale = bias + alpha * (x*x) @ band``, ``y = x * scale**-beta``; the backward is
    ``dy * scale**-beta - 2 alpha beta x * ((dy * y / scale) @ band)`` (band is symmetric)."""

    @staticmethod
    def forward(ctx, x, band):
        scale = torch.addmm(x.new_full((1,), LRN_BIAS), x * x, band, alpha=LRN_ALPHA)
        factor = scale.pow(-LRN_BETA)
        y = x * factor
        ctx.save_for_backward(x, y, scale, factor, band)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, y, scale, factor, band = ctx.saved_tensors
        spread = (dy * y).div_(scale) @ band
        return dy * factor - (2 * LRN_ALPHA * LRN_BETA) * x * spread, None


class SeedConvNetTorch(nn.Module):
    """The seed convnet on NCHW-shaped input (``tuned``: channels-last memory)."""

    def __init__(self, tuned: bool, keep_prob: float = models.SEED_KEEP_PROB,
                 classes: int = 10) -> None:
        super().__init__()
        self.tuned = bool(tuned)
        self.drop = 1.0 - keep_prob
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(7 * 7 * 64, 128)
        self.fc2 = nn.Linear(128, 256)
        self.fc3 = nn.Linear(256, classes)
        size = 2 * DEPTH_RADIUS + 1
        self.lrn = nn.LocalResponseNorm(size, alpha=LRN_ALPHA * size, beta=LRN_BETA, k=LRN_BIAS)
        for c in (32, 64):
            band = np.abs(np.subtract.outer(np.arange(c), np.arange(c))) <= DEPTH_RADIUS
            self.register_buffer(f"band{c}", torch.from_numpy(band.astype(np.float32)))

    def _norm(self, x):
        if not self.tuned:
            return self.lrn(x)
        n, c, h, w = x.shape
        nhwc = x.permute(0, 2, 3, 1)  # a view: x is channels-last
        y = _BandLRN.apply(nhwc.reshape(-1, c), getattr(self, f"band{c}"))
        return y.view(n, h, w, c).permute(0, 3, 1, 2)

    def forward(self, x):
        inplace = self.tuned
        x = self._norm(F.max_pool2d(F.relu(self.conv1(x), inplace=inplace), 2))
        x = self._norm(F.max_pool2d(F.relu(self.conv2(x), inplace=inplace), 2))
        # tuned: (h, w, c) order, a free view of channels-last memory; plain: (c, h, w).
        x = x.permute(0, 2, 3, 1).flatten(1) if self.tuned else x.flatten(1)
        x = F.dropout(torch.tanh(self.fc1(x)), self.drop, self.training)
        x = F.dropout(torch.tanh(self.fc2(x)), self.drop, self.training)
        return self.fc3(x)


def seed_convnet_torch(form: str = "plain", *, seed: int = 0,
                       keep_prob: float = models.SEED_KEEP_PROB) -> SeedConvNetTorch:
    """``form`` "plain" or "tuned"; weights copied from ``fastnn.models.seed_convnet(seed)``."""
    if form not in ("plain", "tuned"):
        raise ValueError(f"seed_convnet_torch: form must be 'plain' or 'tuned', got {form!r}")
    tuned = form == "tuned"
    net = SeedConvNetTorch(tuned, keep_prob)
    source = models.seed_convnet(seed=seed, keep_prob=keep_prob)
    conv1, conv2, dense1, dense2, dense3 = (
        layer for layer in source if type(layer).__name__ in ("Conv2d", "Linear"))
    with torch.no_grad():
        for mine, theirs in ((net.conv1, conv1), (net.conv2, conv2)):
            mine.weight.copy_(torch.from_numpy(theirs.weights.tensor.transpose(3, 2, 0, 1)))
            mine.bias.copy_(torch.from_numpy(theirs.bias.tensor))
        w1 = dense1.weights.tensor  # (h*w*c, 128), rows in NHWC order
        if not tuned:
            w1 = w1.reshape(7, 7, 64, -1).transpose(2, 0, 1, 3).reshape(7 * 7 * 64, -1)
        for mine, w, theirs in ((net.fc1, w1, dense1), (net.fc2, dense2.weights.tensor, dense2),
                                (net.fc3, dense3.weights.tensor, dense3)):
            mine.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            mine.bias.copy_(torch.from_numpy(theirs.bias.tensor))
    if tuned:
        net = net.to(memory_format=torch.channels_last)
    return net


_ACTIVATIONS = {None: None, "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
                "ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}


def _activate(x: torch.Tensor, activation, inplace: bool) -> torch.Tensor:
    if activation == "relu":
        return F.relu(x, inplace=inplace)
    if activation == "tanh":
        return x.tanh_() if inplace else torch.tanh(x)
    if activation == "sigmoid":
        return x.sigmoid_() if inplace else torch.sigmoid(x)
    return x


class TwinNet(nn.Module):
    """A fastnn :class:`~fastnn.nn.Sequential` as a PyTorch module (built by
    :func:`torch_twin`): NCHW-shaped input, channels-last memory when ``tuned``.

    ``decay`` maps each weight a fastnn layer regularises to its ``weight_decay``, which
    :func:`train_step_fn` gives the optimizer (fastnn's L2 adds ``weight_decay * W`` to the
    gradient, as the optimizer's ``weight_decay`` does)."""

    def __init__(self, steps: list, tuned: bool) -> None:
        super().__init__()
        self.tuned = bool(tuned)
        self.steps = steps  # (kind, module index or options, activation)
        self.layers = nn.ModuleList(m for kind, m, _ in steps if isinstance(m, nn.Module))
        self.decay: dict = {}

    def forward(self, x):
        inplace = self.tuned
        for kind, step, activation in self.steps:
            if kind == "module":
                x = step(x)
            elif kind == "max_pool":
                x = F.max_pool2d(x, *step)
            elif kind == "avg_pool":
                x = F.avg_pool2d(x, *step)
            elif kind == "flatten":  # tuned: (h, w, c) order, a view of channels-last memory
                x = x.permute(0, 2, 3, 1).flatten(1) if self.tuned else x.flatten(1)
            elif kind == "dropout":
                x = F.dropout(x, step, self.training, inplace=False)
            x = _activate(x, activation, inplace and kind != "dropout")
        return x


def torch_twin(model, input_shape: tuple, form: str = "tuned") -> TwinNet:
    """The PyTorch twin of a fastnn ``Sequential`` (NHWC layers) with the same weights.

    ``input_shape`` is one image's ``(h, w, c)``; ``form`` "tuned" (channels-last memory,
    in-place activations, the flatten a view of the NHWC memory) or "plain" (NCHW, the first
    dense layer's rows reordered to (c, h, w)). Layers: ``Conv2d`` (symmetric padding),
    ``MaxPool2d``/``AvgPool2d`` (no padding), ``Flatten``, ``Linear``, ``Dropout`` and
    ``ReLU``/``Tanh``/``Sigmoid``; others raise ``ValueError``. The twin computes what the
    fastnn model computes (evaluation mode: to float tolerance).

    >>> from fastnn import models
    >>> fast = models.lenet5(seed=0)
    >>> twin = torch_twin(fast, (28, 28, 1))
    >>> x = np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    >>> with torch.no_grad():
    ...     y = twin.eval()(to_input(x, twin)).numpy()
    >>> bool(np.allclose(y, fast.eval()(x), atol=1e-5))
    True
    """
    from fastnn._shapes import resolve_padding

    if form not in ("plain", "tuned"):
        raise ValueError(f"torch_twin: form must be 'plain' or 'tuned', got {form!r}")
    tuned = form == "tuned"
    shape = tuple(int(d) for d in input_shape)  # (h, w, c) of the running activations
    steps, decay, flattened_from = [], {}, None
    for index, layer in enumerate(model):
        kind = type(layer).__name__
        where = f"torch_twin: layer {index} ({kind})"
        if getattr(layer, "layout", "NHWC") != "NHWC":
            raise ValueError(f"{where}: only NHWC layers are supported")
        if kind == "Conv2d":
            (top, bottom), (left, right) = resolve_padding(
                kind, layer.padding, shape[:2], layer.kernel_size, layer.stride, layer.dilation)
            if top != bottom or left != right:
                raise ValueError(f"{where}: asymmetric padding {((top, bottom), (left, right))}")
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                             stride=layer.stride, padding=(top, left), dilation=layer.dilation,
                             bias=layer.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(
                    np.asarray(layer.weights.tensor, np.float32).transpose(3, 2, 0, 1)))
                if layer.bias is not None:
                    conv.bias.copy_(torch.from_numpy(np.asarray(layer.bias.tensor, np.float32)))
            if layer.weight_decay:
                decay[conv.weight] = layer.weight_decay
            steps.append(("module", conv, layer.activation))
            (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
            shape = ((shape[0] + top + bottom - dh * (kh - 1) - 1) // sh + 1,
                     (shape[1] + left + right - dw * (kw - 1) - 1) // sw + 1, layer.out_channels)
        elif kind in ("MaxPool2d", "AvgPool2d"):
            if tuple(layer.padding) not in ((0, 0),) and layer.padding not in (0,):
                raise ValueError(f"{where}: padding {layer.padding} is not supported")
            (kh, kw), (sh, sw) = layer.kernel, layer.stride
            steps.append(("max_pool" if kind == "MaxPool2d" else "avg_pool",
                          ((kh, kw), (sh, sw)), None))
            shape = ((shape[0] - kh) // sh + 1, (shape[1] - kw) // sw + 1, shape[2])
        elif kind == "Flatten":
            steps.append(("flatten", None, None))
            flattened_from, shape = shape, (int(np.prod(shape)),)
        elif kind == "Linear":
            w = np.asarray(layer.weights.tensor, np.float32)  # (inputs, outputs)
            if flattened_from is not None and not tuned:  # rows (h, w, c) -> (c, h, w)
                h, w_, c = flattened_from
                w = w.reshape(h, w_, c, -1).transpose(2, 0, 1, 3).reshape(h * w_ * c, -1)
            flattened_from = None
            dense = nn.Linear(layer.inputs, layer.outputs, bias=layer.bias is not None)
            with torch.no_grad():
                dense.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                if layer.bias is not None:
                    dense.bias.copy_(torch.from_numpy(np.asarray(layer.bias.tensor, np.float32)))
            if layer.weight_decay:
                decay[dense.weight] = layer.weight_decay
            steps.append(("module", dense, layer.activation))
            shape = (layer.outputs,)
        elif kind == "Dropout":
            steps.append(("dropout", 1.0 - layer.keep_prob, None))
        elif kind in ("ReLU", "Tanh", "Sigmoid"):
            steps.append(("activation", None, _ACTIVATIONS[kind]))
        else:
            raise ValueError(f"{where}: no PyTorch twin for this layer")
    net = TwinNet(steps, tuned)
    net.decay = decay
    if tuned:
        net = net.to(memory_format=torch.channels_last)
    return net


def to_input(x: np.ndarray, net: SeedConvNetTorch) -> torch.Tensor:
    """NHWC float32 images as the network's input tensor (NCHW shape; tuned: channels-last)."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(0, 3, 1, 2)
    return t.contiguous(memory_format=torch.channels_last if net.tuned else
                        torch.contiguous_format)


def train_step_fn(net: SeedConvNetTorch, *, lr: float = models.SEED_LR,
                  weight_decay: float = models.SEED_WEIGHT_DECAY
                  ) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """``step(x, labels) -> loss``: forward, loss (+ L2 on the conv weights), backward,
    Adam update, as ``fastnn.models.seed_learner``."""
    if hasattr(net, "decay"):  # a TwinNet: each regularised weight, its layer's weight_decay
        decay = net.decay
    else:
        decay = {net.conv1.weight: weight_decay, net.conv2.weight: weight_decay}
    groups = [{"params": [p for p, wd in decay.items() if wd == value], "weight_decay": value}
              for value in sorted(set(decay.values()))]
    groups.append({"params": [p for p in net.parameters() if p not in decay],
                   "weight_decay": 0.0})
    options = {"fused": True} if net.tuned else {}
    optimizer = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, **options)
    net.train()

    def step(x: torch.Tensor, labels: torch.Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()
        return loss.detach().item()  # the data loss; the L2 term is applied through the gradient
    return step


def predict_fn(net: SeedConvNetTorch) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict(x) -> logits`` in evaluation mode (``inference_mode`` when tuned)."""
    net.eval()
    context = torch.inference_mode if net.tuned else torch.no_grad

    def predict(x: torch.Tensor) -> torch.Tensor:
        with context():
            return net(x)
    return predict
