"""Fit the coefficients of the float32 tanh kernel (csrc/cpu/math_approx.h, tanh_scalar).

tanh(x) ~ x P(x^2) / Q(x^2) on [0, SATURATE], P of degree 6 and Q of degree 3 in x^2,
P(0) = Q(0) = 1. The fit minimises the largest relative error: the linearised problem
x P - tanh(x) Q = 0 is solved by weighted least squares, the weights divided by the last
Q (so the residual measures the quotient's error) and multiplied by |error|^(1/2) each round
(Lawson's iteration), which converges to the minimax solution. The coefficients are then
rounded to float one at a time, highest power first, each time refitting the rest, so the
float coefficients lose little (0.34 ulp of the 0.13 the exact fit reaches).

    python scripts/fit_tanh.py          # prints the C++ lines and the fit's error
"""

from __future__ import annotations

import numpy as np

SATURATE = 9.010914  # the smallest float whose tanh rounds to 1 (float32)
N_P, N_Q = 7, 4      # coefficients of P and Q in x^2
ROUNDS = 200


def samples() -> np.ndarray:
    x = np.concatenate([np.linspace(1e-3, SATURATE, 8000), np.geomspace(1e-5, 1e-3, 50)])
    return np.sort(x)


def fit(x: np.ndarray, fixed: dict[int, float]) -> tuple[float, np.ndarray]:
    """Best coefficients [p0..p6, q0..q3] with those in ``fixed`` held; (max rel. error, coef)."""
    f, z = np.tanh(x), x * x
    n = N_P + N_Q
    scale = np.array([SATURATE ** (2 * (k if k < N_P else k - N_P)) for k in range(n)])
    basis = np.stack([x * z ** k for k in range(N_P)] + [-f * z ** k for k in range(N_Q)], 1)
    basis = basis / scale  # columns of comparable size: x^2 / SATURATE^2 lies in [0, 1]
    free = [i for i in range(n) if i not in fixed]
    rhs = -sum(basis[:, i] * fixed[i] * scale[i] for i in fixed)
    weights, last_q = np.ones_like(x), np.ones_like(x)
    best = (np.inf, None)
    for _ in range(ROUNDS):
        w = weights / (np.abs(f) * last_q)
        sol, *_ = np.linalg.lstsq(basis[:, free] * w[:, None], rhs * w, rcond=None)
        coef = np.zeros(n)
        for i, v in fixed.items():
            coef[i] = v
        coef[free] = sol / scale[free]
        p = sum(coef[k] * x * z ** k for k in range(N_P))
        q = sum(coef[N_P + k] * z ** k for k in range(N_Q))
        rel = (p / q - f) / f
        if np.abs(rel).max() < best[0] and q.min() > 0:
            best = (float(np.abs(rel).max()), coef)
        weights = np.maximum(weights * np.sqrt(np.abs(rel)), 1e-12)
        weights /= weights.max()
        last_q = q
    return best


def main() -> None:
    x = samples()
    fixed = {0: 1.0, N_P: 1.0}
    # Highest powers first: they matter least, so the refit absorbs their rounding.
    order = sorted((i for i in range(N_P + N_Q) if i not in fixed),
                   key=lambda i: -(i if i < N_P else i - N_P))
    for i in order:
        _, coef = fit(x, fixed)
        fixed[i] = float(np.float32(coef[i]))
    err, coef = fit(x, fixed)
    print(f"max relative error {err:.3e} = {err / 2.0 ** -24:.2f} x 2^-24 (float coefficients,"
          " exact arithmetic)")
    p, q = coef[:N_P], coef[N_P:]
    print(f"  float p = {p[-1]:.9e}f;")
    for v in p[-2::-1]:
        print(f"  p = p * z {'-' if v < 0 else '+'} {abs(v):.9e}f;")
    print(f"  float q = {q[-1]:.9e}f;")
    for v in q[-2::-1]:
        print(f"  q = q * z {'-' if v < 0 else '+'} {abs(v):.9e}f;")


if __name__ == "__main__":
    main()
