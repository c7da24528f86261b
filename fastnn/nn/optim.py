"""Optimizers: called once per Parameter by ``Layer.update(optimizer)``.

Each step updates ``param.tensor`` in place through :func:`fastnn.ops.sgd_update` /
:func:`fastnn.ops.adam_update` and zeroes ``param.gradient`` (as the seed's SGD does), so
gradients accumulate afresh for the next batch. Per-parameter state (velocity; Adam's
moments and step count) lives in the optimizer, keyed by the Parameter object.

An optimizer's ``weight_decay`` adds ``weight_decay * param`` to every parameter's gradient
(biases included) and is not part of the reported loss; a layer's own ``weight_decay`` is
TFLearn's L2 regulariser on its weights only, and is.
"""

from __future__ import annotations

from typing import Any

from fastnn import ops
from fastnn.nn._arrays import zeros
from fastnn.nn.parameter import Parameter


def _check(name: str, value: float, *, low: float = 0.0, below_one: bool = False) -> float:
    value = float(value)
    if not value >= low or (below_one and not value < 1.0):
        bound = f"in [{low}, 1)" if below_one else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


class Optimizer:
    """Base class: ``optimizer(param)`` is ``optimizer.step(param)``.

    A subclass implements ``step(param)``: update ``param.tensor`` in place from
    ``param.gradient``, then zero the gradient; per-parameter state goes in ``self.state``.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import Parameter
    >>> class SignSGD(Optimizer):
    ...     def __init__(self, lr):
    ...         self.lr, self.state = lr, {}
    ...     def step(self, param):
    ...         param.tensor -= self.lr * np.sign(param.gradient)
    ...         param.gradient[...] = 0
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> p.gradient[...] = [0.3, -4.0]
    >>> SignSGD(0.5)(p)
    >>> p.tensor
    array([0.5, 2.5])
    """

    def __call__(self, param: Parameter) -> None:
        self.step(param)

    def step(self, param: Parameter) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every parameter's state (velocities, moments, step counts)."""
        self.state.clear()

    state: dict[Parameter, dict[str, Any]]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum, weight decay.

    ``g = grad + weight_decay * param``; with momentum ``v = momentum * v + g`` and the
    step is ``v`` (``g + momentum * v`` with Nesterov); ``param -= lr * step``.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import Parameter
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> p.gradient[...] = [0.5, -1.0]
    >>> SGD(0.1)(p)
    >>> p.tensor, p.gradient
    (array([0.95, 2.1 ]), array([0., 0.]))
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        self.lr = _check("SGD: lr", lr)
        self.momentum = _check("SGD: momentum", momentum)
        self.weight_decay = _check("SGD: weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        self.state = {}

    def step(self, param: Parameter) -> None:
        velocity = None
        if self.momentum:
            state = self.state.get(param)
            if state is None:
                state = self.state[param] = {"velocity": zeros(param.tensor)}
            velocity = state["velocity"]
        ops.sgd_update(param.tensor, param.gradient, velocity, lr=self.lr,
                       momentum=self.momentum, weight_decay=self.weight_decay,
                       nesterov=self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction; ``weight_decay`` is L2 added to the gradient.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import Parameter
    >>> p = Parameter(np.zeros(2))
    >>> p.gradient[...] = [1.0, -1.0]
    >>> Adam(lr=0.1)(p)
    >>> p.tensor.round(6)
    array([-0.1,  0.1])
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.lr = _check("Adam: lr", lr)
        self.beta1 = _check("Adam: beta1", beta1, below_one=True)
        self.beta2 = _check("Adam: beta2", beta2, below_one=True)
        self.eps = _check("Adam: eps", eps)
        self.weight_decay = _check("Adam: weight_decay", weight_decay)
        self.state = {}

    def step(self, param: Parameter) -> None:
        state = self.state.get(param)
        if state is None:
            state = self.state[param] = {"m": zeros(param.tensor), "v": zeros(param.tensor),
                                         "step": 0}
        state["step"] += 1
        ops.adam_update(param.tensor, param.gradient, state["m"], state["v"],
                        step=state["step"], lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                        eps=self.eps, weight_decay=self.weight_decay)
