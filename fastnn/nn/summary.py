"""``Layer.summary()``: a model's layers, output shapes and parameter counts as a table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Optional

import numpy as np

from fastnn.nn._arrays import Array, empty
from fastnn.nn.layer import Layer, annotate


class SummaryRow(NamedTuple):
    """One layer of a :class:`ModelSummary`."""

    index: str                                # "3", or "3.1" inside a nested Sequential
    layer: str                                # the layer's short description
    output_shape: tuple[Optional[int], ...]   # None for the batch axis
    parameters: int                           # elements of its parameters
    bytes: int                                # their size


class ModelSummary:
    """The result of :meth:`fastnn.nn.Layer.summary`; shows as the table.

    Attributes
    ----------
    model : str
        The model's class name.
    input_shape : tuple
        The input shape, ``None`` for the batch axis.
    dtype : numpy dtype of the input
    rows : list of SummaryRow
    total_parameters, total_bytes : int

    Example
    -------
    >>> from fastnn import nn
    >>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU())
    >>> summary = model.summary((None, 4), print_fn=lambda text: None)
    >>> summary.total_parameters, summary.rows[0].layer, summary.rows[0].output_shape
    (15, 'Linear(4, 3)', (None, 3))
    """

    def __init__(self, model: str, input_shape: tuple[Optional[int], ...], dtype: np.dtype,
                 rows: list[SummaryRow]) -> None:
        self.model = model
        self.input_shape = input_shape
        self.dtype = dtype
        self.rows = rows
        self.total_parameters = sum(row.parameters for row in rows)
        self.total_bytes = sum(row.bytes for row in rows)

    def __str__(self) -> str:
        header = ("#", "layer", "output shape", "parameters")
        cells = [(row.index, row.layer, _shape(row.output_shape), f"{row.parameters:,}")
                 for row in self.rows]
        widths = [max(len(r[k]) for r in [header, *cells]) for k in range(4)]

        def line(r: tuple[str, ...]) -> str:
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()

        size = f"{self.total_bytes:,} bytes"
        if self.total_bytes >= 1 << 20:
            size += f" ({self.total_bytes / (1 << 20):.2f} MiB)"
        elif self.total_bytes >= 1 << 10:
            size += f" ({self.total_bytes / (1 << 10):.1f} KiB)"
        return "\n".join([
            f"{self.model}, input {_shape(self.input_shape)} {self.dtype.name}",
            line(header), *(line(c) for c in cells),
            f"total: {self.total_parameters:,} parameters, {size}",
        ])

    __repr__ = __str__


def _shape(shape: tuple[Optional[int], ...]) -> str:
    return str(tuple(shape))


def _leaves(layer: Layer) -> Iterator[Layer]:
    """Every layer under ``layer`` that is not a Sequential (``layer`` itself if it is not)."""
    children = getattr(layer, "layers", None)
    if isinstance(children, list) and all(isinstance(c, Layer) for c in children):
        for child in children:
            yield from _leaves(child)
    else:
        yield layer


@contextmanager
def _untouched(model: Layer) -> Iterator[None]:
    """Run forwards that leave every layer's buffers, forward count and mode as they were."""
    saved = [(layer, layer._buffers, layer._generation, layer.training)
             for layer in _leaves(model)]
    try:
        for layer, *_ in saved:
            layer._buffers = {}
            layer.training = False
        yield
    finally:
        for layer, buffers, generation, training in saved:
            layer._buffers, layer._generation = buffers, generation
            layer.training = training


def _walk(layer: Layer, X: Array, index: str, rows: list[SummaryRow]) -> Array:
    children = getattr(layer, "layers", None)
    if isinstance(children, list) and all(isinstance(c, Layer) for c in children):
        for i, child in enumerate(children):
            try:
                X = _walk(child, X, f"{index}.{i}" if index else str(i), rows)
            except (TypeError, ValueError) as exc:
                previous = None if i == 0 else (i - 1, children[i - 1], tuple(X.shape))
                raise annotate(exc, i, child, previous) from exc
        return X
    Y = layer.forward(X)[0]
    parameters = layer.parameters
    rows.append(SummaryRow(index or "0", layer._describe(), (None, *tuple(Y.shape)[1:]),
                           sum(int(p.tensor.size) for p in parameters),
                           sum(int(p.tensor.nbytes) for p in parameters)))
    return Y


def summarize(model: Layer, input_shape: Optional[tuple[Any, ...]] = None) -> ModelSummary:
    """See :meth:`fastnn.nn.Layer.summary`."""
    if input_shape is None:
        seen = model._input_shape
        if seen is None:
            raise ValueError(f"{model._describe()}.summary(): no input shape: pass "
                             "input_shape= (one sample's shape, without the batch axis, e.g. "
                             "(28, 28, 1)), or call the model on a batch first")
        sample = tuple(int(s) for s in seen[1:])
    else:
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        try:
            sample = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f"summary: input_shape must be a tuple of ints (one sample's "
                            f"shape), got {input_shape!r}") from None
        if any(s < 1 for s in sample):
            raise ValueError(f"summary: input_shape must hold sizes >= 1, got {input_shape!r}")
    dtype = model._param_dtype() or np.dtype(np.float32)
    parameters = model.parameters
    like = parameters[0].tensor if parameters else np.empty(0, dtype)
    X = empty(like, (1, *sample), dtype)
    X[...] = 0
    rows: list[SummaryRow] = []
    try:
        with _untouched(model):
            _walk(model, X, "", rows)
    except (TypeError, ValueError) as exc:
        path = getattr(exc, "fastnn_layer", ("0",))[0]
        if input_shape is None or set(path.split(".")) != {"0"}:
            raise  # not the input's fault
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"{exc} [summary ran one zero sample of shape {sample}; input_shape is "
                   "one sample's shape, without the batch axis]") from exc
    return ModelSummary(type(model).__name__, (None, *sample), np.dtype(dtype), rows)
