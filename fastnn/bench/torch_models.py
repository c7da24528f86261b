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

__all__ = ["SeedConvNetTorch", "seed_convnet_torch", "train_step_fn", "predict_fn", "to_input"]

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
    decayed = [net.conv1.weight, net.conv2.weight]
    rest = [p for p in net.parameters() if all(p is not q for q in decayed)]
    groups = [{"params": decayed, "weight_decay": weight_decay},
              {"params": rest, "weight_decay": 0.0}]
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
