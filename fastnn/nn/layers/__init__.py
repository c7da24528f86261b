"""Every layer of :mod:`fastnn.nn`, one file per family."""

from __future__ import annotations

from fastnn.nn.layers.activations import ReLU, Sigmoid, Softmax, Tanh
from fastnn.nn.layers.conv import Conv2d
from fastnn.nn.layers.dense import Linear
from fastnn.nn.layers.dropout import Dropout
from fastnn.nn.layers.norm import LocalResponseNorm
from fastnn.nn.layers.pool import AvgPool2d, MaxPool2d
from fastnn.nn.layers.sequential import Sequential
from fastnn.nn.layers.shape import Flatten

__all__ = ["Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "LocalResponseNorm", "Dropout",
           "Flatten", "ReLU", "Sigmoid", "Tanh", "Softmax", "Sequential"]
