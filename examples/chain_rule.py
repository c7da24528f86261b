"""The chain rule on a computational graph: ``e = (a + b) * (b + 1)`` at ``a=2, b=1``.

Run: `python examples/chain_rule.py` or `fastnn examples chain_rule`.
The program itself is `fastnn/examples/chain_rule.py`, inside the package, so that it
also runs from an installed wheel.
"""

from fastnn.examples.chain_rule import main

if __name__ == "__main__":
    main()
