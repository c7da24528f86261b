"""A neuron and a perceptron: the vocabulary of the field in two computations.

A neuron is a weighted sum plus a bias through an activation: weights ``[0, 1]``, bias
``4`` and input ``[2, 3]`` give ``sigmoid(0*2 + 1*3 + 4) = sigmoid(7) ≈ 0.99909``. A
perceptron is the same with a step activation; weights ``0.5, 0.5`` and bias ``-0.8``
compute logical AND.
"""

from __future__ import annotations

import numpy as np

from fastnn import ops

TRUTH_TABLE = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def neuron(x, weights, bias) -> np.ndarray:
    """``sigmoid(x @ weights + bias)`` for a batch of inputs."""
    return ops.linear(np.atleast_2d(x), np.asarray(weights, float)[:, None],
                      np.array([float(bias)]), activation="sigmoid")[:, 0]


def step(z: np.ndarray) -> np.ndarray:
    """The perceptron's activation: 0 below zero, else 1."""
    return (z >= 0).astype(np.int64)


def perceptron(x, weights, bias) -> np.ndarray:
    z = ops.linear(np.atleast_2d(x), np.asarray(weights, float)[:, None],
                   np.array([float(bias)]))
    return step(z[:, 0])


def main() -> dict:
    output = float(neuron([2.0, 3.0], [0.0, 1.0], 4.0)[0])
    print(f"neuron: weights [0, 1], bias 4, input [2, 3] -> sigmoid(7) = {output:.5f}")
    and_outputs = perceptron(TRUTH_TABLE, [0.5, 0.5], -0.8)
    for (a, b), out in zip(TRUTH_TABLE.astype(int), and_outputs):
        print(f"perceptron AND({a}, {b}) = {out}")
    return {"neuron": output, "and": and_outputs.tolist()}


if __name__ == "__main__":
    main()
