"""Least squares (Legendre, 1805): the mean squared error of a line through three points.

Run: `python examples/least_squares.py` or `fastnn examples least_squares`.
The program itself is `fastnn/examples/least_squares.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.least_squares import main

if __name__ == "__main__":
    main()
