"""A single-layer network: one sigmoid neuron with three inputs, trained by the delta rule.

Run: `python examples/single_layer.py` or `fastnn examples single_layer`.
The program itself is `fastnn/examples/single_layer.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.single_layer import main

if __name__ == "__main__":
    main()
