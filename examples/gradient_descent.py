"""Gradient descent (Debye, 1909): walk downhill on ``f(x) = x^5 - 2x^3 - 2``.

Run: `python examples/gradient_descent.py` or `fastnn examples gradient_descent`.
The program itself is `fastnn/examples/gradient_descent.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.gradient_descent import main

if __name__ == "__main__":
    main()
