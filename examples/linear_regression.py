"""Linear regression by gradient descent: the price of bread from the price of wheat.

Run: `python examples/linear_regression.py` or `fastnn examples linear_regression`.
The program itself is `fastnn/examples/linear_regression.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.linear_regression import main

if __name__ == "__main__":
    main()
