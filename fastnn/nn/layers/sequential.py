"""Sequential: layers chained one after another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from fastnn.nn import _fusion
from fastnn.nn._arrays import Array
from fastnn.nn.layer import Backward, Layer, annotate
from fastnn.nn.parameter import Parameter


class Sequential(Layer):
    """Chain layers: forward runs them in order, backward runs their backwards in reverse.

    Its parameters are all its layers' parameters, in layer order; ``train()``/``eval()``
    and ``update(optimizer)`` reach every layer. A ReLU (or ``Conv2d(activation="relu")``)
    followed by a ``MaxPool2d`` runs as one fused step (:mod:`fastnn.nn._fusion`): the
    ReLU's mask is applied to the pooled gradient, a quarter of the size.

    Its forward is a model boundary: the input goes through the dtype rule of
    :class:`~fastnn.nn.Layer` (float inputs cast to the parameters' dtype, integer and
    uint8 arrays refused with how to convert them, lists converted). A ``TypeError`` or
    ``ValueError`` raised inside a layer's forward or backward comes out as the same type
    with the layer's index and description first, ``layer 0 (Conv2d(1, 32,
    kernel_size=3, ...)): x looks NCHW ...``, the original chained as ``__cause__``.
    :meth:`~fastnn.nn.Layer.summary` shows every layer's output shape and parameters.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import Linear, Sigmoid
    >>> model = Sequential(Linear(2, 10, rng=0), Sigmoid(), Linear(10, 1, rng=1))
    >>> y, backward = model.forward(np.ones((5, 2), np.float32))
    >>> y.shape, backward(np.ones((5, 1), np.float32)).shape, len(model.parameters)
    ((5, 1), (5, 2), 4)
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be a Layer, got "
                                f"{type(layer).__name__}")
        self.layers: list[Layer] = list(layers)

    @property
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.named_parameters()]

    @property
    def float_input(self) -> bool:  # type: ignore[override]
        """The dtype rule applies when it applies to the first layer."""
        return self.layers[0].float_input if self.layers else True

    def _param_dtype(self) -> Optional[np.dtype]:
        for layer in self.layers:
            dtype = layer._param_dtype()
            if dtype is not None:
                return dtype
        return None

    def __call__(self, X: Array) -> Array:
        return self.forward(X)[0]  # forward applies the input rule

    def forward(self, X: Array) -> tuple[Array, Backward]:
        X = self._model_input(X)
        layers = self.layers
        if layers:
            layers[0].requires_input_grad = self.requires_input_grad
        fused = _fusion.plan(layers)
        backwards = []  # (backward, index of its (first) layer, its fused step or None)
        i, count, step = 0, len(layers), None
        try:
            while i < count:
                step = fused.get(i)
                X, backward = (layers[i] if step is None else step).forward(X)
                backwards.append((backward, i, step))
                i += 1 if step is None else 2
        except (TypeError, ValueError) as exc:
            shape = tuple(X.shape) if X is not None and hasattr(X, "shape") else None
            if step is not None and step.stage:  # the pool of a fused pair
                i, shape = i + 1, step.pool_input_shape
            previous = None if not i or shape is None else (i - 1, layers[i - 1], shape)
            raise annotate(exc, i, layers[i], previous) from exc

        def backward(D: Array) -> Array:
            j = len(backwards) - 1
            try:
                while j >= 0:
                    D = backwards[j][0](D)
                    j -= 1
            except (TypeError, ValueError) as exc:
                _, index, step = backwards[j]
                index += 0 if step is None else step.stage
                raise annotate(exc, index, layers[index], note=" (in its backward)") from exc
            return D

        return X, backward

    def train(self, mode: bool = True) -> Sequential:
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def _drop_buffers(self) -> None:
        super()._drop_buffers()
        for layer in self.layers:
            layer._drop_buffers()

    def regularization_loss(self) -> float:
        return sum((layer.regularization_loss() for layer in self.layers), 0.0)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def config(self) -> dict[str, Any]:
        from fastnn.nn.serialize import layer_spec

        return {"layers": [layer_spec(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        from fastnn.nn.serialize import _SpecError, build

        if set(config) != {"layers"} or not isinstance(config["layers"], list):
            raise ValueError("a Sequential's config must be {'layers': [layer entries]}")
        layers = []
        for index, spec in enumerate(config["layers"]):
            try:
                layers.append(build(spec))
            except _SpecError as exc:  # say where in the model the bad entry sits
                exc.where.insert(0, str(index))
                raise
        return cls(*layers)

    def _describe(self) -> str:
        return f"Sequential({len(self.layers)} layers)"

    def __repr__(self) -> str:
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Sequential({inner}\n)"
