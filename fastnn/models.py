"""Ready-made models: the seed convnet of the "history of deep learning" text.

:func:`seed_convnet` is the text's TFLearn MNIST network, layer for layer::

    input 28×28×1
    conv 32 3×3 ReLU (L2 0.001) → max-pool 2 → LRN
    conv 64 3×3 ReLU (L2 0.001) → max-pool 2 → LRN
    dense 128 tanh → dropout keep 0.8 → dense 256 tanh → dropout keep 0.8 → dense 10 softmax

trained with Adam at lr 0.01 on categorical cross-entropy (:func:`seed_learner`). The
softmax is fused into the loss (:func:`fastnn.nn.softmax_cross_entropy`), so the model
itself ends in logits; ``Learner.predict`` returns the probabilities.

TFLearn's defaults fill in what the text leaves out, so the network is the one the seed
program builds: "same" padding for the convolutions and the pools, LRN with
``depth_radius=5, bias=1, alpha=1e-4, beta=0.75``, ``regularizer="L2"`` meaning
``weight_decay=0.001`` on the convolution weights (``0.5 * 0.001 * sum(W**2)`` added to
the loss, biases not regularised), convolution weights "uniform scaling"
(``U(±sqrt(3 / fan_in))``), dense weights truncated normal with standard deviation 0.02,
zero biases, and Adam's ``beta1=0.9, beta2=0.999, eps=1e-8``.
"""

from __future__ import annotations

import numpy as np

from fastnn import nn

__all__ = ["seed_convnet", "seed_learner", "SEED_LR", "SEED_WEIGHT_DECAY", "SEED_KEEP_PROB"]

SEED_LR = 0.01
SEED_WEIGHT_DECAY = 0.001
SEED_KEEP_PROB = 0.8
SEED_BATCH_SIZE = 64  # TFLearn's DNN.fit default


def _uniform_scaling(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """TFLearn's ``uniform_scaling``: ``U(-b, b)``, ``b = sqrt(3 / fan_in)``, fan_in the
    product of every dimension but the last (the output channels)."""
    bound = np.sqrt(3.0 / np.prod(shape[:-1]))
    return rng.uniform(-bound, bound, size=shape)


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...],
                      stddev: float = 0.02) -> np.ndarray:
    """TFLearn's ``truncated_normal``: normal draws beyond two deviations drawn again."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


def seed_convnet(*, seed: int = 0, dtype=np.float32, weight_decay: float = SEED_WEIGHT_DECAY,
                 keep_prob: float = SEED_KEEP_PROB, classes: int = 10) -> nn.Sequential:
    """The seed convnet for 28×28×1 NHWC images, ending in ``classes`` logits.

    Parameters
    ----------
    seed : int
        Every initial weight and each dropout layer's mask stream derive from it, so the
        same seed (on the same backend and thread count) trains to the same numbers.
    dtype : float32 (default) or float64
    weight_decay : float
        L2 on the two convolutions' weights (TFLearn's ``regularizer="L2"`` default 0.001).
    keep_prob : float
        Dropout's keep probability (0.8 in the seed).

    Example
    -------
    >>> import numpy as np
    >>> model = seed_convnet(seed=0)
    >>> model(np.zeros((2, 28, 28, 1), np.float32)).shape
    (2, 10)
    >>> sum(p.tensor.size for p in model.parameters)
    455946
    """
    rng = np.random.default_rng(seed)

    def conv(c_in: int, c_out: int) -> nn.Conv2d:
        layer = nn.Conv2d(c_in, c_out, 3, padding="same", activation="relu",
                          weight_decay=weight_decay, dtype=dtype)
        layer.weights.tensor[...] = _uniform_scaling(rng, layer.weights.shape)
        return layer

    def dense(inputs: int, outputs: int, activation=None) -> nn.Linear:
        layer = nn.Linear(inputs, outputs, activation=activation, dtype=dtype)
        layer.weights.tensor[...] = _truncated_normal(rng, layer.weights.shape)
        return layer

    def dropout() -> nn.Dropout:
        return nn.Dropout(keep_prob, seed=int(rng.integers(2**62)))

    return nn.Sequential(
        conv(1, 32), nn.MaxPool2d(2), nn.LocalResponseNorm(),
        conv(32, 64), nn.MaxPool2d(2), nn.LocalResponseNorm(),
        nn.Flatten(),
        dense(7 * 7 * 64, 128, "tanh"), dropout(),
        dense(128, 256, "tanh"), dropout(),
        dense(256, classes),
    )


def seed_learner(model: nn.Layer, *, lr: float = SEED_LR) -> nn.Learner:
    """A :class:`~fastnn.nn.Learner` as the seed trains: Adam, categorical cross-entropy,
    accuracy as the metric."""
    return nn.Learner(model, nn.softmax_cross_entropy, nn.Adam(lr=lr), metrics=["accuracy"])
