"""Linear regression by gradient descent: the price of bread from the price of wheat.

A one-input, one-output ``Linear`` layer is the line ``y = m*x + b``. Starting from
``b = 1, m = 1``, 100 full-batch steps of SGD (step 0.01) on the mean squared error move
it to ``b ≈ 3.3045, m ≈ 2.9661``.
"""

from __future__ import annotations

import numpy as np

from fastnn import nn

WHEAT = np.array([[0.5], [0.6], [0.8], [1.1], [1.4]])
BREAD = np.array([[5.0], [5.5], [6.0], [6.8], [7.0]])


def fit(steps: int = 100, lr: float = 0.01) -> tuple[float, float]:
    line = nn.Linear(1, 1, dtype=np.float64)
    line.weights.tensor[...] = 1.0  # m
    line.bias.tensor[...] = 1.0  # b
    optimizer = nn.SGD(lr=lr)
    for _ in range(steps):
        prediction, backward = line.forward(WHEAT)
        _, gradient = nn.mse_loss(prediction, BREAD)
        backward(gradient)
        line.update(optimizer)
    return float(line.bias.tensor[0]), float(line.weights.tensor[0, 0])


def main() -> dict:
    b, m = fit()
    print(f"bread = m * wheat + b after 100 steps of 0.01: b = {b:.4f}, m = {m:.4f}")
    return {"b": b, "m": m}


if __name__ == "__main__":
    main()
