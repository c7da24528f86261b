"""The perceptron (Rosenblatt, 1958) learns logical OR, and cannot learn XOR.

Run: `python examples/perceptron.py` or `fastnn examples perceptron`.
The program itself is `fastnn/examples/perceptron.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.perceptron import main

if __name__ == "__main__":
    main()
