"""A neuron and a perceptron: the vocabulary of the field in two computations.

Run: `python examples/neuron.py` or `fastnn examples neuron`.
The program itself is `fastnn/examples/neuron.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.neuron import main

if __name__ == "__main__":
    main()
