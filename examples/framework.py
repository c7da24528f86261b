"""The "neural network framework in about 100 lines" and its two experiments, in fastnn.

Run: `python examples/framework.py` or `fastnn examples framework`.
The program itself is `fastnn/examples/framework.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.framework import main

if __name__ == "__main__":
    main()
