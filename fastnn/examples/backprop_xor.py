"""Backpropagation (Rumelhart, Hinton and Williams, 1986): a 3-4-1 network learns XOR.

The inputs carry a bias column of ones, so the two layers have no separate biases. The
weights start as the seed program's do (NumPy seed 1, uniform in [-1, 1), the 3×4 matrix
drawn before the 4×1), and 60,000 full-batch steps of size 1 on the squared error
``0.5 * sum((output - target)**2)`` bring the outputs to ≈ [0.0026, 0.9967, 0.9970, 0.0039]:
what a single perceptron cannot do (see the ``perceptron`` example).
"""

from __future__ import annotations

import numpy as np

from fastnn import nn

# x1, x2 and the constant bias input
INPUTS = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
XOR = np.array([[0.0], [1.0], [1.0], [0.0]])


def squared_error(prediction: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """``0.5 * sum(diff**2)`` and its gradient ``diff``: the seed program's error."""
    diff = prediction - target
    return 0.5 * float(np.sum(diff * diff)), diff


def seed_network() -> nn.Sequential:
    """3-4-1 sigmoid network with the seed program's initial weights."""
    draws = np.random.RandomState(1)  # the stream np.random.seed(1) gives
    hidden = nn.Linear(3, 4, bias=False, activation="sigmoid", dtype=np.float64)
    output = nn.Linear(4, 1, bias=False, activation="sigmoid", dtype=np.float64)
    hidden.weights.tensor[...] = 2 * draws.random_sample((3, 4)) - 1
    output.weights.tensor[...] = 2 * draws.random_sample((4, 1)) - 1
    return nn.Sequential(hidden, output)


def train(steps: int = 60_000, lr: float = 1.0) -> tuple[nn.Sequential, float]:
    model = seed_network()
    optimizer = nn.SGD(lr)
    loss = float("nan")
    for _ in range(steps):
        output, backward = model.forward(INPUTS)
        loss, gradient = squared_error(output, XOR)
        backward(gradient)
        model.update(optimizer)
    return model, loss


def main() -> dict:
    model, loss = train()
    outputs = model(INPUTS)[:, 0].copy()
    print("3-4-1 sigmoid network after 60,000 steps on XOR "
          f"(squared error {loss:.2e}):")
    for (a, b, _), out, want in zip(INPUTS.astype(int), outputs, XOR[:, 0]):
        print(f"  XOR({a}, {b}) -> {out:.4f}  (truth {want:g})")
    return {"outputs": outputs.tolist(), "loss": loss}


if __name__ == "__main__":
    main()
