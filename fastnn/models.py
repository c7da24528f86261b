"""Ready-made models: the seed convnet of the "history of deep learning" text, LeNet-5 and a
small CIFAR-shaped VGG network.

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

:func:`lenet5` (28×28×1 digits) and :func:`cifar_convnet` (32×32×3 images) are the two
networks beyond the seed that the benchmarks train end to end: the shapes users meet next
(5×5 convolutions with few channels; 3×3 convolutions at 64-256 channels).
"""

from __future__ import annotations

import numpy as np

from fastnn import nn

__all__ = ["seed_convnet", "seed_learner", "lenet5", "cifar_convnet", "SEED_LR",
           "SEED_WEIGHT_DECAY", "SEED_KEEP_PROB", "NETWORK_LR"]

SEED_LR = 0.01
SEED_WEIGHT_DECAY = 0.001
SEED_KEEP_PROB = 0.8
SEED_BATCH_SIZE = 64  # TFLearn's DNN.fit default
NETWORK_LR = 0.001  # Adam's usual rate, for lenet5 and cifar_convnet


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


def lenet5(*, seed: int = 0, dtype=np.float32, classes: int = 10) -> nn.Sequential:
    """LeNet-5 (LeCun et al., 1998) for 28×28×1 NHWC images, in its common modern form: ReLU
    and max-pooling where the original had scaled tanh and trainable subsampling, and C3
    connected to every S2 map::

        conv 6 5×5 "same" ReLU → max-pool 2 → conv 16 5×5 "valid" ReLU → max-pool 2
        → dense 120 ReLU → dense 84 ReLU → dense ``classes``

    The "same" first convolution gives 28×28 digits the 32×32 view the original had (two
    pixels of zero padding). 61,706 parameters; trains with ``seed_learner(model,
    lr=NETWORK_LR)``. Weights start He-normal (convolutions) and ``randn * sqrt(1 / inputs)``
    (dense), all drawn from ``seed``.

    >>> model = lenet5(seed=0)
    >>> model(np.zeros((2, 28, 28, 1), np.float32)).shape
    (2, 10)
    >>> sum(p.tensor.size for p in model.parameters)
    61706
    """
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding="same", activation="relu", rng=rng, dtype=dtype),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding="valid", activation="relu", rng=rng, dtype=dtype),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(5 * 5 * 16, 120, activation="relu", rng=rng, dtype=dtype),
        nn.Linear(120, 84, activation="relu", rng=rng, dtype=dtype),
        nn.Linear(84, classes, rng=rng, dtype=dtype),
    )


def cifar_convnet(*, seed: int = 0, dtype=np.float32, classes: int = 10,
                  widths: tuple = (64, 128, 256)) -> nn.Sequential:
    """A small VGG-style network for 32×32×3 NHWC images (CIFAR-10's shape)::

        [conv 64 3×3 ReLU] ×2 → max-pool 2       (32×32 → 16×16)
        [conv 128 3×3 ReLU] ×2 → max-pool 2      (16×16 → 8×8)
        conv 256 3×3 ReLU → max-pool 2           (8×8 → 4×4)
        → dense 256 ReLU → dense ``classes``

    ("same" padding throughout; ``widths`` sets the three blocks' channels.) 1,606,730
    parameters and 0.23 GFLOP per image forward at the default widths; trains with
    ``seed_learner(model, lr=NETWORK_LR)``.

    >>> model = cifar_convnet(seed=0, widths=(8, 16, 32))
    >>> model(np.zeros((2, 32, 32, 3), np.float32)).shape
    (2, 10)
    """
    rng = np.random.default_rng(seed)
    if len(widths) != 3 or not all(isinstance(w, (int, np.integer)) and w >= 1 for w in widths):
        raise ValueError(f"cifar_convnet: widths must be three positive ints, got {widths!r}")
    a, b, c = (int(w) for w in widths)

    def conv(c_in: int, c_out: int) -> nn.Conv2d:
        return nn.Conv2d(c_in, c_out, 3, activation="relu", rng=rng, dtype=dtype)

    return nn.Sequential(
        conv(3, a), conv(a, a), nn.MaxPool2d(2),
        conv(a, b), conv(b, b), nn.MaxPool2d(2),
        conv(b, c), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * c, 256, activation="relu", rng=rng, dtype=dtype),
        nn.Linear(256, classes, rng=rng, dtype=dtype),
    )
