"""fastnn.nn: the layer API of the seed framework, on top of :mod:`fastnn.ops`.

* :class:`Parameter` - a tensor and its accumulated gradient;
* layers (:class:`Layer` subclasses) - ``forward(X) -> (Y, backward)``, ``update(optimizer)``,
  ``train()``/``eval()``: :class:`Linear`, :class:`Conv2d`, :class:`MaxPool2d`,
  :class:`AvgPool2d`, :class:`LocalResponseNorm`, :class:`Dropout`, :class:`Flatten`,
  :class:`ReLU`, :class:`Sigmoid`, :class:`Tanh`, :class:`Softmax`, :class:`Sequential`;
* losses ``(prediction, target) -> (loss, gradient)``: :func:`mse_loss`,
  :func:`softmax_cross_entropy`;
* optimizers called per parameter: :class:`SGD`, :class:`Adam`;
* :class:`Learner` (``fit_batch``, ``fit``, ``predict``, ``evaluate``; ``fit`` raises
  :class:`TrainingDiverged` at the first NaN/inf loss) and callbacks
  (:class:`EarlyStopping`, :class:`Checkpoint`, and the learning-rate schedules
  :class:`StepDecay`, :class:`ExponentialDecay`, :class:`CosineDecay`,
  :class:`ReduceLROnPlateau`, :class:`LearningRateScheduler`);
* ``model.summary()`` (:meth:`Layer.summary`): layers, output shapes, parameter counts;
* :func:`save` / :func:`load`: architecture and parameters in one ``.npz`` (saved
  atomically; loading builds only fastnn's layers and those opted in with
  :func:`register_layer` or ``custom_objects``, and raises :class:`ModelFileError` for a
  file it cannot use).

Every layer computes through :mod:`fastnn.ops`, so it runs on whichever backend is current,
and reuses its output and gradient buffers across batches of one shape: a forward's output
is valid until that layer's next forward (see :mod:`fastnn.nn.layer`).

Example
-------
>>> import numpy as np
>>> from fastnn import nn
>>> model = nn.Sequential(nn.Linear(2, 10, rng=0), nn.Sigmoid(), nn.Linear(10, 1, rng=1))
>>> learner = nn.Learner(model, nn.mse_loss, nn.SGD(0.3))
>>> X = np.random.default_rng(0).uniform(size=(200, 2)).astype(np.float32)
>>> losses = learner.fit(X, X[:, :1] * X[:, 1:], epochs=5, bs=50, progress=False, seed=0)
>>> len(losses), all(isinstance(loss, float) for loss in losses)
(5, True)
"""

from __future__ import annotations

from fastnn.nn.callbacks import (
    Callback,
    CosineDecay,
    EarlyStopping,
    ExponentialDecay,
    LearningRateSchedule,
    LearningRateScheduler,
    ReduceLROnPlateau,
    StepDecay,
)
from fastnn.nn.checkpoint import Checkpoint, TrainingInterrupted
from fastnn.nn.layer import Layer
from fastnn.nn.layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from fastnn.nn.learner import Learner, TrainingDiverged, accuracy
from fastnn.nn.losses import mse_loss, softmax_cross_entropy
from fastnn.nn.optim import SGD, Adam, Optimizer
from fastnn.nn.parameter import Parameter
from fastnn.nn.serialize import ModelFileError, load, register_layer, save
from fastnn.nn.summary import ModelSummary

__all__ = [
    "Parameter", "Layer",
    "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "LocalResponseNorm", "Dropout", "Flatten",
    "ReLU", "Sigmoid", "Tanh", "Softmax", "Sequential",
    "mse_loss", "softmax_cross_entropy",
    "Optimizer", "SGD", "Adam",
    "Learner", "TrainingDiverged", "TrainingInterrupted", "accuracy", "Callback",
    "EarlyStopping", "Checkpoint", "LearningRateSchedule", "StepDecay", "ExponentialDecay",
    "CosineDecay", "ReduceLROnPlateau", "LearningRateScheduler",
    "save", "load", "register_layer", "ModelFileError", "ModelSummary",
]
