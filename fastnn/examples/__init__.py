"""The seed programs, written with fastnn: one module each, each with a ``main()`` that
prints what it computes and returns its key numbers.

They ship inside the package so that ``fastnn examples`` works from an installed wheel;
the repository's top-level ``examples/`` holds thin scripts that run these modules.

>>> from fastnn import examples
>>> examples.run("least_squares")["error"]
line y = 2x + 1 through [[3.0, 6.0], [6.0, 9.0], [12.0, 18.0]]: mean squared error 22.0
22.0
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["EXAMPLES", "names", "resolve", "describe", "load", "run"]

# name -> one-line description, in the order of the tutorial texts' history
EXAMPLES = {
    "least_squares": "Legendre 1805: mean squared error of a line (22.0)",
    "gradient_descent": "Debye 1909: minimise x^5 - 2x^3 - 2 from 0.5 (x = 1.0928)",
    "linear_regression": "wheat vs bread price by gradient descent (b = 3.3045, m = 2.9661)",
    "perceptron": "Rosenblatt 1958: a perceptron learns OR; why XOR fails (Minsky & Papert)",
    "backprop_xor": "Rumelhart 1986: a 3-4-1 sigmoid network learns XOR by backpropagation",
    "neuron": "a neuron (sigmoid(7) = 0.99909) and the AND perceptron",
    "single_layer": "a single-layer network in NumPy style; [1, 0, 0] -> 0.99994",
    "framework": "the 100-line framework: recover Y = XW + B; y = x1*x2 needs a hidden layer",
    "chain_rule": "e = (a + b)(b + 1): de/da = 2, de/db = 5 via backward functions",
}


def names() -> list[str]:
    return list(EXAMPLES)


def resolve(name: str) -> str:
    """The registered name for ``name`` (hyphens allowed); ``KeyError`` listing the names."""
    key = name.replace("-", "_")
    if key not in EXAMPLES:
        raise KeyError(f"no example named {name!r}; the examples are: {', '.join(EXAMPLES)}")
    return key


def describe(name: str) -> str:
    return EXAMPLES[resolve(name)]


def load(name: str):
    """The example's module (``fastnn.examples.<name>``)."""
    return importlib.import_module(f"fastnn.examples.{resolve(name)}")


def run(name: str, **options: Any) -> dict:
    """Run one example's ``main(**options)`` and return its key numbers."""
    return load(name).main(**options)
