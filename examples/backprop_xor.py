"""Backpropagation (Rumelhart, Hinton and Williams, 1986): a 3-4-1 network learns XOR.

Run: `python examples/backprop_xor.py` or `fastnn examples backprop_xor`.
The program itself is `fastnn/examples/backprop_xor.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.backprop_xor import main

if __name__ == "__main__":
    main()
