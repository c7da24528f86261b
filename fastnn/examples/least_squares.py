"""Least squares (Legendre, 1805): the mean squared error of a line through three points.

The line ``y = m*x + b`` with ``b = 1, m = 2`` is a one-input linear layer, and its error
over the points ``(3, 6), (6, 9), (12, 18)`` is fastnn's ``mse_loss``: 22.0.
"""

from __future__ import annotations

import numpy as np

from fastnn import ops

POINTS = np.array([[3.0, 6.0], [6.0, 9.0], [12.0, 18.0]])


def squared_error(b: float, m: float, points: np.ndarray = POINTS) -> float:
    """Mean squared error of ``y = m*x + b`` over ``points`` (rows of ``x, y``)."""
    x, y = points[:, :1], points[:, 1:]
    prediction = ops.linear(x, np.array([[m]]), np.array([b]))
    loss, _ = ops.mse_loss(prediction, y)
    return float(loss)


def main() -> dict:
    error = squared_error(b=1.0, m=2.0)
    print(f"line y = 2x + 1 through {POINTS.tolist()}: mean squared error {error:.1f}")
    return {"error": error}


if __name__ == "__main__":
    main()
