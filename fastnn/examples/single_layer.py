"""A single-layer network: one sigmoid neuron with three inputs, trained by the delta rule.

The target is the first input. Weights start uniform in [-1, 1) from NumPy seed 1; each
of 10,000 full-batch steps is ``w += X.T @ ((y - out) * out * (1 - out))`` with
``out = sigmoid(X @ w)``, which is fastnn's ``Linear(3, 1, bias=False,
activation="sigmoid")`` under SGD (step 1) on the squared error. The unseen case
``[1, 0, 0]`` then gives ≈ 0.99994.
"""

from __future__ import annotations

import numpy as np

from fastnn import nn
from fastnn.examples.backprop_xor import squared_error

INPUTS = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])
NEW_CASE = np.array([[1.0, 0.0, 0.0]])


def train(steps: int = 10_000) -> nn.Linear:
    neuron = nn.Linear(3, 1, bias=False, activation="sigmoid", dtype=np.float64)
    neuron.weights.tensor[...] = 2 * np.random.RandomState(1).random_sample((3, 1)) - 1
    optimizer = nn.SGD(1.0)
    for _ in range(steps):
        output, backward = neuron.forward(INPUTS)
        backward(squared_error(output, TARGETS)[1])
        neuron.update(optimizer)
    return neuron


def main() -> dict:
    neuron = train()
    trained = neuron(INPUTS)[:, 0].copy()
    new = float(neuron(NEW_CASE)[0, 0])
    print(f"outputs on the training inputs after 10,000 steps: {np.round(trained, 4).tolist()}")
    print(f"weights: {np.round(neuron.weights.tensor[:, 0], 4).tolist()}")
    print(f"new case [1, 0, 0] -> {new:.5f}")
    return {"new_case": new, "outputs": trained.tolist()}


if __name__ == "__main__":
    main()
