"""Save and load models as ``.npz``: a JSON architecture spec plus the parameters.

The file holds one array ``__fastnn__`` (a JSON string: format version and the model's
spec, ``{"type": class name, "config": constructor arguments}``, nested for
:class:`Sequential`) and one array per parameter, keyed ``param/<name>`` with the names of
:meth:`Layer.named_parameters` (``param/0.weights``, ``param/0.bias``, ...). Loading needs
no pickle and none of the code that built the model, only the layer classes: fastnn's own
are recorded by class name, custom ones as ``"module:qualname"`` (their module is imported
on load; they need a ``config()`` returning their constructor arguments).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np

from fastnn.nn._arrays import to_numpy
from fastnn.nn.layer import Layer, PathLike, type_name

FORMAT_VERSION = 1
_SPEC_KEY = "__fastnn__"
_PARAM_PREFIX = "param/"


def layer_spec(layer: Layer) -> dict[str, Any]:
    """``{"type": ..., "config": ...}`` for one layer (recursively for containers)."""
    return {"type": type_name(type(layer)), "config": layer.config()}


def build(spec: dict[str, Any]) -> Layer:
    """Construct a layer (with fresh parameters) from :func:`layer_spec`'s output."""
    name = spec["type"]
    if name not in Layer.registry and ":" in name:
        importlib.import_module(name.split(":")[0])  # a custom layer registers on import
    cls = Layer.registry.get(name)
    if cls is None:
        raise ValueError(f"unknown layer type {name!r}")
    return cls.from_config(dict(spec["config"]))


def save(model: Layer, path: PathLike) -> None:
    """Write ``model``'s architecture and parameters to ``path`` (exactly that file name).

    Example
    -------
    >>> import numpy as np, tempfile, os
    >>> from fastnn.nn import Linear, Sequential, ReLU
    >>> model = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(4, 2, rng=1))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> x = np.ones((1, 3), np.float32)
    >>> bool((load(path)(x) == model(x)).all())
    True
    """
    header = {"format": FORMAT_VERSION, "model": layer_spec(model)}
    arrays = {_SPEC_KEY: np.array(json.dumps(header))}
    for name, parameter in model.named_parameters():
        arrays[_PARAM_PREFIX + name] = to_numpy(parameter.tensor)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def load(path: PathLike) -> Layer:
    """Rebuild the model saved at ``path`` by :func:`save` (NumPy arrays, training mode)."""
    with np.load(path, allow_pickle=False) as archive:
        if _SPEC_KEY not in archive.files:
            raise ValueError(f"{path}: not a fastnn model file (no {_SPEC_KEY!r} entry)")
        header = json.loads(str(archive[_SPEC_KEY]))
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported fastnn model format {header.get('format')!r}")
        model = build(header["model"])
        expected = {_PARAM_PREFIX + name for name, _ in model.named_parameters()}
        stored = {key for key in archive.files if key.startswith(_PARAM_PREFIX)}
        if expected != stored:
            raise ValueError(f"{path}: parameters do not match the architecture: missing "
                             f"{sorted(expected - stored)}, unexpected {sorted(stored - expected)}")
        for name, parameter in model.named_parameters():
            array = archive[_PARAM_PREFIX + name]
            if array.shape != parameter.shape:
                raise ValueError(f"{path}: parameter {name!r} has shape {array.shape}, the "
                                 f"architecture needs {parameter.shape}")
            parameter.tensor[...] = array
    return model
