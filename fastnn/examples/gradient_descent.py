"""Gradient descent (Debye, 1909): walk downhill on ``f(x) = x^5 - 2x^3 - 2``.

From ``x = 0.5``, 60 steps of size 0.01 along ``-f'(x) = -(5x^4 - 6x^2)`` end at
``x ≈ 1.0928``, close to the local minimum ``sqrt(6/5) ≈ 1.0954``. Each step is fastnn's
in-place SGD update on a one-element parameter.
"""

from __future__ import annotations

import numpy as np

from fastnn import ops


def f(x):
    return x**5 - 2 * x**3 - 2


def df(x):
    return 5 * x**4 - 6 * x**2


def descend(start: float = 0.5, lr: float = 0.01, steps: int = 60) -> float:
    x = np.array([start])
    for _ in range(steps):
        ops.sgd_update(x, df(x), lr=lr)
    return float(x[0])


def main() -> dict:
    x = descend()
    print(f"f(x) = x^5 - 2x^3 - 2 from x = 0.5, 60 steps of 0.01: x = {x:.4f}, f(x) = {f(x):.4f}")
    print(f"(the local minimum is at sqrt(6/5) = {np.sqrt(6 / 5):.4f})")
    return {"x": x}


if __name__ == "__main__":
    main()
