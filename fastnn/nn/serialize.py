"""Save and load models as ``.npz``: a JSON architecture spec plus the parameters.

The file holds one array ``__fastnn__`` (a JSON string: format version and the model's
spec, ``{"type": type name, "config": constructor arguments}``, nested for
:class:`Sequential`) and one array per parameter, keyed ``param/<name>`` with the names of
:meth:`Layer.named_parameters` (``param/0.weights``, ``param/0.bias``, ...). Loading needs
no pickle and none of the code that built the model.

Which classes a file may name
-----------------------------
Loading builds only classes it knows; it never imports a module named in a file, so a
model file cannot run code. It knows:

* fastnn's own layers, recorded by class name (``"Linear"``, ``"Sequential"``, ...);
* your own :class:`Layer` subclasses that you opt in, recorded as ``"module:qualname"``,
  either for good with the :func:`register_layer` decorator or for one call with
  ``load(path, custom_objects={"MyLayer": MyLayer})`` (as in Keras). A custom layer
  needs a ``config()`` returning its constructor arguments.

Any other name, such as ``"os:system"``, is refused with a :class:`ModelFileError`.
So are files that are not fastnn models, truncated or corrupt ones, and ones whose
architecture does not fit their parameters. :func:`save` writes atomically: a failure
while saving leaves the previous file as it was.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Mapping
from typing import Any, Optional, TypeVar

import numpy as np

from fastnn._files import atomic_write
from fastnn.nn._arrays import to_numpy
from fastnn.nn.layer import Layer, PathLike, type_name

FORMAT_VERSION = 1
_SPEC_KEY = "__fastnn__"
_PARAM_PREFIX = "param/"
_REMEDY = "expected a model saved by fastnn.nn.save or `fastnn train` (.npz)"

LayerType = TypeVar("LayerType", bound=type)


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a fastnn model, truncated or corrupt, an
    unknown (unregistered) layer type, or an architecture that does not fit its
    parameters. The message names the file and what to do."""


class _SpecError(ModelFileError):
    """A bad layer entry; ``where`` is its position in the model (``["3", "1"]``:
    layer 1 of layer 3), filled in as the error leaves each :class:`Sequential`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []

    def __str__(self) -> str:
        if not self.where:
            return self.reason
        return f"layer {'.'.join(self.where)}: {self.reason}"


# The custom_objects of the load in progress, seen by the nested build() calls that
# Sequential.from_config makes.
_CUSTOM_OBJECTS: contextvars.ContextVar[Optional[Mapping[str, type]]] = \
    contextvars.ContextVar("fastnn_custom_objects", default=None)


def register_layer(cls: LayerType) -> LayerType:
    """Class decorator: let :func:`load` rebuild this custom :class:`Layer` subclass.

    fastnn's own layers need no registration. A custom layer is recorded in saved files
    as ``"module:qualname"``; loading a file that names it works once the class is
    registered (or passed in ``custom_objects``). Registering the same name again (a
    class redefined in a notebook) replaces the earlier class.

    Example
    -------
    >>> from fastnn import nn
    >>> @nn.register_layer
    ... class Scale(nn.Layer):
    ...     def __init__(self, factor):
    ...         super().__init__()
    ...         self.factor = factor
    ...     def forward(self, X):
    ...         return X * self.factor, lambda D: D * self.factor
    ...     def config(self):
    ...         return {"factor": self.factor}
    >>> nn.Layer.registry[type_name(Scale)] is Scale
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: expected a subclass of fastnn.nn.Layer, got {cls!r}")
    Layer.registry[type_name(cls)] = cls
    return cls


def _check_custom_objects(custom_objects: Mapping[str, type]) -> Mapping[str, type]:
    if not isinstance(custom_objects, Mapping):
        raise TypeError("custom_objects must be a dict of name -> Layer subclass, got "
                        f"{type(custom_objects).__name__}")
    for key, cls in custom_objects.items():
        if not isinstance(key, str) or not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"custom_objects: {key!r} must map to a subclass of "
                            f"fastnn.nn.Layer, got {cls!r}")
    return dict(custom_objects)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _resolve(name: str) -> type:
    """The class a saved type name stands for; never imports anything."""
    custom = _CUSTOM_OBJECTS.get() or {}
    if name in custom:
        return custom[name]
    cls = Layer.registry.get(name)
    if cls is not None:
        return cls
    qualname = name.rpartition(":")[2]
    short = qualname.rpartition(".")[2]
    for key in (qualname, short):
        if key in custom:
            return custom[key]
    defined = any(type_name(c) == name for c in _all_subclasses(Layer))
    hint = (f"the class {qualname} is defined here but not registered: " if defined else
            f"if {qualname!r} is your own Layer subclass, import it and ")
    raise _SpecError(
        f"unknown layer type {name!r}; it is not one of fastnn's layers and not registered, "
        f"and fastnn never imports code named in a model file ({hint}decorate it with "
        f"@fastnn.nn.register_layer, or pass custom_objects={{{short!r}: {short}}} to "
        "fastnn.nn.load)")


def _all_subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def layer_spec(layer: Layer) -> dict[str, Any]:
    """``{"type": ..., "config": ...}`` for one layer (recursively for containers)."""
    return {"type": type_name(type(layer)), "config": layer.config()}


def build(spec: dict[str, Any], custom_objects: Optional[Mapping[str, type]] = None) -> Layer:
    """Construct a layer (with fresh parameters) from :func:`layer_spec`'s output.

    ``custom_objects`` (name -> class) adds classes for this call, as in :func:`load`.
    Raises :class:`ModelFileError` for an unknown type or a config the class refuses.
    """
    if custom_objects is None:
        return _build(spec)
    token = _CUSTOM_OBJECTS.set(_check_custom_objects(custom_objects))
    try:
        return _build(spec)
    finally:
        _CUSTOM_OBJECTS.reset(token)


def _build(spec: Any) -> Layer:
    if not (isinstance(spec, dict) and isinstance(spec.get("type"), str)
            and isinstance(spec.get("config"), dict)):
        raise _SpecError(f"a layer entry must be {{'type': name, 'config': {{...}}}}, got "
                         f"{_short(spec)}")
    name, config = spec["type"], spec["config"]
    cls = _resolve(name)
    try:
        layer = cls.from_config(dict(config))
    except _SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the class's constructor refuses
        raise _SpecError(f"{name} cannot be built from the config {_short(config)} "
                         f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(layer, Layer):
        raise _SpecError(f"{name}.from_config returned a {type(layer).__name__}, not a Layer")
    return layer


def save(model: Layer, path: PathLike) -> None:
    """Write ``model``'s architecture and parameters to ``path`` (exactly that file name).

    The file is replaced atomically: the data goes to a temporary file in the same folder
    that is renamed onto ``path`` once complete, so an error or a full disk while saving
    leaves an earlier file at ``path`` unchanged (and no temporary file behind).

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
    with atomic_write(path, "wb") as file:
        np.savez(file, **arrays)


def _sniff(path: PathLike, where: str) -> None:
    """Refuse what is plainly not an ``.npz`` before handing it to NumPy."""
    with open(path, "rb") as file:  # a missing file or a folder: the usual OSError
        magic = file.read(6)
    if not magic:
        raise ModelFileError(f"{where}: the file is empty; {_REMEDY}")
    if magic.startswith(b"\x93NUMPY"):
        raise ModelFileError(f"{where}: a NumPy .npy array, not a fastnn model; {_REMEDY}")
    if not magic.startswith(b"PK"):
        raise ModelFileError(f"{where}: not a fastnn model file (not an .npz archive); "
                             f"{_REMEDY}")


def _corrupt(where: str, exc: BaseException) -> ModelFileError:
    return ModelFileError(f"{where}: the model file is truncated or corrupt "
                          f"({type(exc).__name__}: {exc}); save or train the model again")


def _member(archive: Any, key: str, where: str) -> np.ndarray:
    """One array of the archive, read without pickle."""
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ModelFileError(f"{where}: its {key!r} entry holds pickled Python objects, "
                                 f"which fastnn never loads; {_REMEDY}") from exc
        raise _corrupt(where, exc) from exc
    except Exception as exc:  # noqa: BLE001 - zip, zlib and EOF errors of a damaged member
        raise _corrupt(where, exc) from exc


def _read_header(archive: Any, where: str) -> dict[str, Any]:
    if _SPEC_KEY not in archive.files:
        raise ModelFileError(f"{where}: an .npz archive but not a fastnn model (no "
                             f"{_SPEC_KEY!r} entry; it holds {_short(archive.files)}); "
                             f"{_REMEDY}")
    raw = _member(archive, _SPEC_KEY, where)
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ModelFileError(f"{where}: its {_SPEC_KEY!r} entry must be a JSON string, got "
                             f"a {raw.dtype} array of shape {raw.shape}; {_REMEDY}")
    try:
        header = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{where}: its {_SPEC_KEY!r} entry is not valid JSON "
                             f"({type(exc).__name__}: {exc}); {_REMEDY}") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: its {_SPEC_KEY!r} entry must be a JSON object, got "
                             f"{_short(header)}; {_REMEDY}")
    version = header.get("format")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) \
            and version > FORMAT_VERSION
        raise ModelFileError(f"{where}: unsupported fastnn model format {version!r} (this "
                             f"fastnn reads format {FORMAT_VERSION}); "
                             + ("it was written by a newer fastnn: upgrade fastnn to load it"
                                if newer else _REMEDY))
    if "model" not in header:
        raise ModelFileError(f"{where}: its {_SPEC_KEY!r} entry has no 'model'; {_REMEDY}")
    return header


def load(path: PathLike, custom_objects: Optional[Mapping[str, type]] = None) -> Layer:
    """Rebuild the model saved at ``path`` by :func:`save` (NumPy arrays, training mode).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    custom_objects : dict, optional
        Your own layer classes for this load, keyed by the saved type name
        (``"mymodule:Scale"``) or the class name (``"Scale"``); see also
        :func:`register_layer`. Only fastnn's layers and these are ever built.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) when the file is not a fastnn model, is truncated or corrupt,
        names a layer type that is neither fastnn's nor registered, or holds parameters
        that do not fit the architecture. A missing file raises ``FileNotFoundError``.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.npz")
    >>> _ = open(path, "w").write("not a model")
    >>> try:
    ...     load(path)
    ... except ModelFileError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    not a fastnn model file (not an .npz archive); expected a model saved by fastnn.nn.save
    or `fastnn train` (.npz)
    """
    where = os.fspath(path)
    _sniff(path, where)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - zipfile, EOF and format errors alike
        raise _corrupt(where, exc) from exc
    with archive:
        header = _read_header(archive, where)
        try:
            model = build(header["model"], custom_objects)
        except _SpecError as exc:
            raise ModelFileError(f"{where}: {exc}") from exc
        expected = {_PARAM_PREFIX + name for name, _ in model.named_parameters()}
        stored = {key for key in archive.files if key.startswith(_PARAM_PREFIX)}
        if expected != stored:
            raise ModelFileError(
                f"{where}: parameters do not match the architecture: missing "
                f"{sorted(expected - stored)}, unexpected {sorted(stored - expected)}")
        for name, parameter in model.named_parameters():
            array = _member(archive, _PARAM_PREFIX + name, where)
            if array.shape != parameter.shape:
                raise ModelFileError(f"{where}: parameter {name!r} has shape {array.shape}, "
                                     f"the architecture needs {parameter.shape}")
            if array.dtype.kind != "f":
                raise ModelFileError(f"{where}: parameter {name!r} holds {array.dtype}, "
                                     "expected floats")
            parameter.tensor[...] = array
    return model
