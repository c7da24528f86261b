"""The layer base class: parameters, forward/backward, modes, buffers, configuration.

Buffer reuse rule
-----------------
A layer computes into buffers it owns and reuses them for every batch of the same input
shape (it keeps the buffers of the last few shapes, so a smaller last batch or a validation
batch size does not make it reallocate every batch). Hence:

* the output of ``forward`` (and of ``__call__``) is valid until the next forward of that
  layer; copy it if you need it longer;
* the array a ``backward`` returns is valid until the next backward of that layer;
* a ``backward`` function may only run before the next forward of its layer. Calling a stale
  one raises ``RuntimeError`` rather than silently computing with overwritten activations.
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Union

import numpy as np

from fastnn.nn._arrays import Array, axpy, empty, sum_of_squares
from fastnn.nn.parameter import Parameter

if TYPE_CHECKING:
    from fastnn.nn.summary import ModelSummary

Backward = Callable[[Array], Array]
Seed = Union[None, int, np.random.Generator]  # what a layer's ``rng`` accepts
PathLike = Union[str, "os.PathLike[str]"]

# How many input shapes' buffers a layer keeps per buffer name.
BUFFER_SHAPES_KEPT = 3


class Layer:
    """Base class of every layer: the seed framework's ``Layer``, with modes and buffers.

    Subclasses implement :meth:`forward`, returning the output and a ``backward(D)``
    function; ``backward`` takes the gradient of the loss with respect to the output, adds
    the parameter gradients into each ``Parameter.gradient`` and returns the gradient with
    respect to the input. Subclasses that take constructor arguments implement
    :meth:`config` so the layer can be saved and rebuilt.

    ``requires_input_grad`` (default True) may be turned off for a model's first layer,
    whose input is data: layers with an expensive input gradient (Linear, Conv2d) then
    skip it and their backward returns None. :class:`~fastnn.nn.Learner` turns it off on
    the model it trains, and :class:`~fastnn.nn.Sequential` hands it to its first layer.

    Inputs (the dtype rule)
    -----------------------
    At the model boundary - ``model(X)``, ``Sequential.forward`` and every
    :class:`~fastnn.nn.Learner` entry (``fit``, ``fit_batch``, ``predict``, ``evaluate``)
    - one rule applies to the input, as Keras applies it:

    * float arrays of another precision are cast to the model's parameter dtype (float64
      NumPy data into a float32 model computes in float32);
    * integer, uint8 and bool arrays are refused with a ``TypeError`` that says how to
      convert them (uint8 images: scale them to [0, 1] floats, ``X.astype(np.float32) /
      255``), since casting pixels unscaled trains silently badly;
    * Python lists and tuples are converted with ``np.asarray`` to the model's dtype.

    A layer's own ``forward`` (below the boundary) takes arrays of its dtype as they are.
    A custom first layer that takes something else (integer ids, say) sets the class
    attribute ``float_input = False`` and receives its input untouched.

    Wrong shapes are reported by the layer that cannot take them, in the user's terms
    (what it expects, what came, the fix); inside a :class:`~fastnn.nn.Sequential` the
    message starts with the layer's index and description, ``layer 0 (Conv2d(1, 32,
    kernel_size=3, ...)): ...``. :meth:`summary` tabulates the output shape and parameters
    of every layer.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import ReLU
    >>> y, backward = ReLU().forward(np.array([[-1.0, 2.0]]))
    >>> y, backward(np.array([[5.0, 5.0]]))
    (array([[0., 2.]]), array([[0., 5.]]))
    """

    # Saved-file type name -> class: the classes fastnn.nn.load may build. fastnn's own
    # public layers enter it when defined; a user's class only through
    # fastnn.nn.register_layer (see fastnn.nn.serialize).
    registry: ClassVar[dict[str, type[Layer]]] = {}

    # Whether the model-boundary dtype rule applies to this layer's input when it is a
    # model's first layer (see "Inputs" above); False hands the input over untouched.
    float_input: ClassVar[bool] = True

    # The shape of the last input seen at the model boundary (for summary()).
    _input_shape: Optional[tuple[int, ...]] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.split(".")[0] == "fastnn" and not cls.__name__.startswith("_"):
            Layer.registry[type_name(cls)] = cls

    def __init__(self) -> None:
        self._parameters: dict[str, Parameter] = {}
        self._buffers: dict[str, list[Array]] = {}
        self._generation = 0
        self.training = True
        self.requires_input_grad = True

    # ------------------------------------------------------------------ parameters

    @property
    def parameters(self) -> list[Parameter]:
        """The layer's trainable parameters, in a fixed order."""
        return list(self._parameters.values())

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs; the names key the saved ``.npz`` arrays."""
        return list(self._parameters.items())

    def add_parameter(self, name: str, tensor: Array) -> Parameter:
        """Register ``tensor`` as a trainable :class:`Parameter` called ``name``."""
        parameter = Parameter(tensor)
        self._parameters[name] = parameter
        return parameter

    def zero_grad(self) -> None:
        """Zero every parameter's accumulated gradient."""
        for parameter in self.parameters:
            parameter.zero_grad()

    def update(self, optimizer: Callable[[Parameter], None]) -> None:
        """Hand each parameter to ``optimizer`` (which steps it and zeroes its gradient)."""
        for parameter in self.parameters:
            optimizer(parameter)

    def regularization_loss(self) -> float:
        """The L2 penalty ``0.5 * weight_decay * sum(W**2)`` this layer adds to the loss."""
        return 0.0

    # ------------------------------------------------------------------ computing

    def forward(self, X: Array) -> tuple[Array, Backward]:
        """Compute the output for ``X``; return it with its ``backward(D)`` function."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, X: Array) -> Array:
        """The forward output alone (inference), in the current train/eval mode.

        ``X`` goes through the model-boundary dtype rule first (see the class docstring).
        """
        return self.forward(self._model_input(X))[0]

    def _param_dtype(self) -> Optional[np.dtype]:
        """The dtype of the first parameter (the model's compute dtype), None without any."""
        for parameter in self.parameters:
            return parameter.tensor.dtype
        return None

    def _model_input(self, X: Any) -> Array:
        """``X`` after the model-boundary dtype rule (class docstring, "Inputs").

        The normal case (an array of the model's dtype) costs a few attribute checks.
        """
        if not self.float_input:
            return X
        dtype = getattr(X, "dtype", None)
        want = self._param_dtype()
        if dtype is None or not hasattr(X, "shape"):
            X = _convert(self, X, want)
        elif dtype != want:
            if dtype.kind != "f":
                raise TypeError(f"{self._describe()}: {_not_float(X, want)}")
            if want is not None:
                X = X.astype(want)
        self._input_shape = X.shape
        return X

    def train(self, mode: bool = True) -> Layer:
        """Switch to training mode (``mode=False``: evaluation mode); returns ``self``."""
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Switch to evaluation mode (dropout becomes the identity); returns ``self``."""
        return self.train(False)

    def to(self, backend) -> Layer:
        """Move the parameters (and their gradients) to ``backend``'s array type; returns
        ``self``.

        ``backend`` is a backend object or name: ``model.to("cuda")`` makes every
        parameter a CuPy array, ready for training on CuPy inputs; ``"cpu"``, ``"numba"``
        and ``"reference"`` make them NumPy arrays. Buffers are dropped (they are remade
        on the next forward). Move a model before its optimizer first steps: optimizer
        state stays where it was made.

        Example
        -------
        >>> from fastnn.nn import Linear
        >>> Linear(2, 3, rng=0).to("reference").weights.tensor.shape
        (2, 3)
        """
        from fastnn import backends

        xp = (backends.get(backend) if isinstance(backend, str) else backend).xp
        for parameter in self.parameters:
            parameter.move_to(xp)
        self._drop_buffers()
        return self

    def _drop_buffers(self) -> None:
        self._buffers.clear()

    # ------------------------------------------------------------------ buffers

    def _buffer(self, name: str, shape: tuple[int, ...], like: Array, dtype=None) -> Array:
        """The layer's buffer ``name`` of this shape, dtype and array kind (allocated once)."""
        dtype = np.dtype(dtype or like.dtype)
        shape = tuple(int(s) for s in shape)
        kept = self._buffers.setdefault(name, [])
        for i, buffer in enumerate(kept):
            if buffer.shape == shape and buffer.dtype == dtype and type(buffer) is type(like):
                if i:
                    kept.insert(0, kept.pop(i))
                return buffer
        buffer = empty(like, shape, dtype)
        kept.insert(0, buffer)
        del kept[BUFFER_SHAPES_KEPT:]
        return buffer

    def _begin_forward(self) -> int:
        """Mark a new forward; returns the token its backward checks with :meth:`_check`."""
        self._generation += 1
        return self._generation

    def _check(self, token: int) -> None:
        if token != self._generation:
            raise RuntimeError(
                f"{type(self).__name__}: this backward belongs to an earlier forward; the layer "
                "has run forward since and reused its buffers (call backward before the next "
                "forward of the same layer)"
            )

    # ------------------------------------------------------------------ saving

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable) that rebuild this layer."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Build a layer from :meth:`config`'s output."""
        return cls(**config)

    def save(self, path: PathLike) -> None:
        """Save architecture and parameters to ``path`` (``.npz``); see :func:`fastnn.nn.save`."""
        from fastnn.nn.serialize import save

        save(self, path)

    @classmethod
    def load(cls, path: PathLike, custom_objects: Optional[dict[str, type]] = None) -> Layer:
        """Rebuild a saved layer; it must be an instance of ``cls``. ``custom_objects``:
        as for :func:`fastnn.nn.load`."""
        from fastnn.nn.serialize import load

        layer = load(path, custom_objects)
        if not isinstance(layer, cls):
            raise TypeError(f"{path}: holds a {type(layer).__name__}, not a {cls.__name__}")
        return layer

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ describing

    def _brief_config(self) -> dict[str, Any]:
        """The configuration :meth:`_describe` shows (layers may drop noise, e.g. seeds)."""
        return self.config()

    def _describe(self) -> str:
        """A short description for messages and summaries: the class name, the required
        arguments (the first two positionally), and the arguments that differ from their
        defaults, with ``(k, k)`` pairs shown as ``k``: ``Conv2d(1, 32, kernel_size=3,
        activation='relu')``."""
        try:
            config = self._brief_config()
            signature = inspect.signature(type(self).__init__).parameters
        except Exception:  # noqa: BLE001 - a description must never fail
            return type(self).__name__
        args = []
        for name, value in config.items():
            value = _compact(value)
            param = signature.get(name)
            default = inspect.Parameter.empty if param is None else param.default
            if default is inspect.Parameter.empty:
                keyword = len(args) >= 2 or (args and "=" in args[-1]) or param is None
                args.append(f"{name}={value!r}" if keyword else repr(value))
            elif not _same(name, value, _compact(default)):
                args.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def summary(self, input_shape: Optional[tuple[Optional[int], ...]] = None, *,
                print_fn: Optional[Callable[[str], Any]] = None) -> ModelSummary:
        """A table of the model: per layer its index, description, output shape and
        parameter count; the total parameters and their size in bytes (Keras's
        ``model.summary()``).

        Parameters
        ----------
        input_shape : tuple, optional
            The shape of one sample, without the batch axis (``(28, 28, 1)``); a leading
            ``None`` for the batch axis is accepted. By default, the shape of the last
            input the model was called on (``model(X)``, ``Learner.fit``); a model never
            run needs it.
        print_fn : callable, optional
            Called with the table's text (e.g. ``print``).

        Returns
        -------
        ModelSummary
            Shows as the table (``print(model.summary())``); ``rows`` holds ``(index,
            description, output_shape, parameters)`` per layer (nested Sequentials
            flattened, indices ``"3.0"``), plus ``total_parameters`` and ``total_bytes``.

        Notes
        -----
        The output shapes come from one forward pass of a single zero sample in evaluation
        mode, layer by layer; the layers' buffers, outputs and pending backwards are left as
        they were.

        Example
        -------
        >>> import numpy as np
        >>> from fastnn.nn import Linear, ReLU, Sequential
        >>> model = Sequential(Linear(4, 8, rng=0), ReLU(), Linear(8, 2, rng=1))
        >>> print(model.summary(input_shape=(4,)))
        Sequential, input (None, 4) float32
        #  layer         output shape  parameters
        0  Linear(4, 8)  (None, 8)             40
        1  ReLU()        (None, 8)              0
        2  Linear(8, 2)  (None, 2)             18
        total: 58 parameters, 232 bytes
        """
        from fastnn.nn.summary import summarize

        result = summarize(self, input_shape)
        if print_fn is not None:
            print_fn(str(result))
        return result


def type_name(cls: type) -> str:
    """The name a saved model records for a layer class.

    fastnn's own layers go by their class name (``"Linear"``); any other layer by
    ``"module:qualname"``, so a user's class never shadows a built-in one. Loading looks
    the name up in ``Layer.registry`` (and ``custom_objects``); it never imports the
    module.
    """
    if cls.__module__.startswith("fastnn.nn."):
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"


def check_activation(layer: str, activation: Optional[str]) -> Optional[str]:
    """Validate a fused-activation name early, at construction."""
    if activation not in (None, "relu", "sigmoid", "tanh"):
        raise ValueError(f"{layer}: activation must be None, 'relu', 'sigmoid' or 'tanh', "
                         f"got {activation!r}")
    return activation


class L2Weights:
    """Mixin for layers with ``weights`` and TFLearn-style L2 ``weight_decay``: the
    gradient term ``weight_decay * W`` and ``regularization_loss`` ``0.5 * wd * sum(W**2)``
    (the bias is not regularised)."""

    weights: Parameter
    weight_decay: float

    def _add_weight_decay_gradient(self) -> None:
        if self.weight_decay:
            axpy(self.weight_decay, self.weights.tensor, self.weights.gradient)

    def regularization_loss(self) -> float:
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * sum_of_squares(self.weights.tensor)


def check_weight_decay(layer: str, weight_decay: float) -> float:
    weight_decay = float(weight_decay)
    if not weight_decay >= 0.0:
        raise ValueError(f"{layer}: weight_decay must be >= 0, got {weight_decay!r}")
    return weight_decay


def dtype_name(dtype) -> str:
    """``np.float32`` -> ``"float32"`` (for configs), checking it is a float dtype."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype.name


# --------------------------------------------------------------------------- the input rule

def _convert(model: Layer, X: Any, want: Optional[np.dtype]) -> np.ndarray:
    """A list, tuple or number as an array of the model's dtype (float32 without one)."""
    try:
        return np.asarray(X, dtype=want or np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{model._describe()}: x must be an array (or a list of numbers), got "
                        f"a {type(X).__name__} that does not convert to one ({exc})") from exc


def _not_float(X: Array, want: Optional[np.dtype]) -> str:
    """Why a non-float input is refused, and how to convert it."""
    dtype, shape = X.dtype, tuple(X.shape)
    target = np.dtype(want or np.float32).name
    head = f"x is {dtype} (shape {shape}), but the model computes in {target}"
    if dtype == np.uint8:
        return (f"{head}: scale uint8 images to [0, 1] floats first, "
                f"X.astype(np.{target}) / 255")
    if dtype.kind in "iub":
        return (f"{head}: convert it, X.astype(np.{target}) (scaled to a small range, "
                f"e.g. [0, 1], for images)")
    return f"{head}: the model takes float arrays"


def _compact(value: Any) -> Any:
    """``(k, k)`` -> ``k`` and lists to tuples, for descriptions."""
    if isinstance(value, list):
        value = tuple(value)
    if (isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]
            and isinstance(value[0], int)):
        return value[0]
    return value


def _same(name: str, value: Any, default: Any) -> bool:
    if name == "dtype":
        try:
            return np.dtype(value) == np.dtype(default)
        except TypeError:
            return False
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # noqa: BLE001 - e.g. arrays
        return False


def annotate(exc: Exception, index: int, layer: Layer,
             previous: Optional[tuple[int, Layer, tuple[int, ...]]] = None,
             note: str = "") -> Exception:
    """``exc`` (a TypeError or ValueError raised inside ``layer``, the ``index``-th of a
    Sequential) as a new exception of the same type, its message prefixed with ``layer
    {index} ({description}): ``; a message already annotated by a nested Sequential gets
    a dotted index (``layer 3.1``). ``previous`` is ``(index, layer, output shape)`` of the
    layer whose output was the failing layer's input. The caller raises it ``from exc``."""
    inner = getattr(exc, "fastnn_layer", None)
    if inner is not None:
        path, description, message, before = inner
        path = f"{index}.{path}"
        if before is not None:
            before = (f"{index}.{before[0]}", *before[1:])
    else:
        path, description, message = str(index), layer._describe(), str(exc)
        own = f"{type(layer).__name__}: "
        if message.startswith(own):
            message = message[len(own):]
        message += note
        before = (None if previous is None
                  else (str(previous[0]), previous[1]._describe(), previous[2]))
    text = f"layer {path} ({description}): {message}"
    if before is not None:
        text += f" (x is the output of layer {before[0]}, {before[1]})"
    kind = TypeError if isinstance(exc, TypeError) else ValueError
    try:
        new = type(exc)(text)
        if str(new) != text:
            new = kind(text)
    except Exception:  # noqa: BLE001 - a subclass with another signature
        new = kind(text)
    new.fastnn_layer = (path, description, message, before)
    return new
