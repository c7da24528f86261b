"""The perceptron (Rosenblatt, 1958) learns logical OR, and cannot learn XOR.

Every input carries a constant bias input of 1. The output is a step function of the
weighted sum; each of 100 updates picks a random example and applies Rosenblatt's rule
``w += lr * (truth - prediction) * input`` with ``lr = 0.2``, which is an SGD step with
gradient ``-(truth - prediction) * input``.
"""

from __future__ import annotations

import numpy as np

from fastnn import ops

# inputs with the constant bias input of 1 as the last column
INPUTS = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
OR = np.array([0, 1, 1, 1])
XOR = np.array([0, 1, 1, 0])

XOR_NOTE = """\
Why a perceptron cannot learn XOR (Minsky and Papert, Perceptrons, 1969): a perceptron
outputs 1 exactly on one side of the line w1*x1 + w2*x2 + w0 = 0. XOR needs (0,1) and
(1,0) on one side and (0,0) and (1,1) on the other, and no line does that: adding the
conditions for (0,1) and (1,0) gives w1 + w2 + 2*w0 >= 0, while those for (0,0) and (1,1)
give w1 + w2 + 2*w0 < 0. Hidden layers, trained by backpropagation, remove the limit."""


def predict(weights: np.ndarray, inputs: np.ndarray = INPUTS) -> np.ndarray:
    z = ops.linear(inputs, weights[:, None])[:, 0]
    return (z >= 0).astype(np.int64)


def train(truth: np.ndarray, *, lr: float = 0.2, updates: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.random(INPUTS.shape[1])
    for _ in range(updates):
        i = rng.integers(len(INPUTS))
        error = truth[i] - predict(weights, INPUTS[i:i + 1])[0]
        ops.sgd_update(weights, -error * INPUTS[i], lr=lr)
    return weights


def main(seed: int = 0) -> dict:
    weights = train(OR, seed=seed)
    learned = predict(weights)
    print(f"perceptron after 100 updates on OR: weights {np.round(weights, 3).tolist()}")
    for (a, b, _), out, want in zip(INPUTS.astype(int), learned, OR):
        print(f"  OR({a}, {b}) = {out}  (truth {want})")
    xor_weights = train(XOR, seed=seed)
    xor_correct = int((predict(xor_weights) == XOR).sum())
    print(f"the same training on XOR gets {xor_correct} of 4 right.")
    print(XOR_NOTE)
    return {"or": learned.tolist(), "or_correct": int((learned == OR).sum()),
            "xor_correct": xor_correct}


if __name__ == "__main__":
    main()
