"""Learner: the seed framework's training loop, with validation, metrics and callbacks."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, Union

import numpy as np

from fastnn import _compat, _threads, ops
from fastnn.nn import checkpoint
from fastnn.nn._arrays import Array, empty, to_numpy
from fastnn.nn.callbacks import Callback
from fastnn.nn.layer import Layer
from fastnn.nn.layers.sequential import Sequential
from fastnn.nn.losses import mse_loss, softmax_cross_entropy
from fastnn.nn.optim import Optimizer

LossFunction = Callable[[Array, Array], tuple[float, Array]]
Metric = Callable[[Array, Array], float]


def accuracy(output: Array, target: Array) -> float:
    """Fraction of rows whose predicted class matches the target.

    The predicted class is the argmax of each row (a single output column is thresholded
    at 0.5); targets are class ids, one-hot rows, or a single 0/1 column.

    Example
    -------
    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    out, truth = to_numpy(output), to_numpy(target)
    n = out.shape[0]
    out = out.reshape(n, -1)
    predicted = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5)
    truth = truth.reshape(n, -1)
    if truth.shape[1] > 1:
        truth = truth.argmax(axis=1)
    else:
        truth = truth[:, 0] if truth.dtype.kind in "iub" else truth[:, 0] > 0.5
    return float(np.mean(predicted == truth))


METRICS: dict[str, Metric] = {"accuracy": accuracy}

# Loss names a Learner accepts for its loss functions.
LOSSES: dict[str, LossFunction] = {
    "mse": mse_loss, "mse_loss": mse_loss,
    "softmax_cross_entropy": softmax_cross_entropy, "cross_entropy": softmax_cross_entropy,
}
# Keras names whose semantics differ (probabilities in, not logits): refused with the fix.
_KERAS_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy",
                 "binary_crossentropy")


class TrainingDiverged(FloatingPointError):
    """``Learner.fit`` stopped: the loss of a training step was NaN or infinite.

    Raised before that step's backward and update, so the model keeps the parameters of
    the step before. The message gives the epoch and step, the first layer whose output
    was not finite (found by re-running that batch layer by layer, only once the loss is
    non-finite) and what to try.

    Attributes
    ----------
    loss : float
        The non-finite loss.
    epoch, step : int
        Where it happened, both counted from 1.
    layer : int or None
        Index (in the Sequential) of the first layer whose output was not finite; None
        when every output was finite (the loss itself overflowed, or the targets hold
        NaN) or the input batch already was not finite.
    """

    def __init__(self, message: str, *, loss: float, epoch: int, step: int,
                 layer: Optional[int] = None) -> None:
        super().__init__(message)
        self.loss, self.epoch, self.step, self.layer = loss, epoch, step, layer


def _finite(A: Array) -> bool:
    """Whether every element of ``A`` (NumPy or CuPy) is finite."""
    return bool(np.isfinite(A).all())


def _count_nonfinite(A: Array) -> int:
    return int((~np.isfinite(A)).sum()) if getattr(A, "dtype", None) is not None and \
        A.dtype.kind in "fc" else 0


def _resolve_loss(loss: Any) -> LossFunction:
    if isinstance(loss, str):
        if loss in LOSSES:
            return LOSSES[loss]
        if loss in _KERAS_LOSSES:
            raise ValueError(f"Learner: loss {loss!r} is Keras's name for a loss on "
                             "probabilities; fastnn's classifier loss is 'softmax_cross_entropy'"
                             " (nn.softmax_cross_entropy): end the model in logits (a Linear, "
                             "no Softmax) and give class ids or one-hot rows as targets")
        raise ValueError(f"Learner: unknown loss {loss!r}; known names: {sorted(LOSSES)} (or "
                         "pass a function (prediction, target) -> (loss, gradient), e.g. "
                         "nn.mse_loss)")
    if isinstance(loss, Optimizer) or isinstance(loss, type) and issubclass(loss, Optimizer):
        name = loss.__name__ if isinstance(loss, type) else type(loss).__name__
        raise TypeError(f"Learner: loss is an optimizer ({name}); the arguments are "
                        "Learner(model, loss, optimizer), e.g. Learner(model, "
                        "nn.softmax_cross_entropy, nn.Adam(lr=0.001))")
    if isinstance(loss, type):
        raise TypeError(f"Learner: loss must be a function (prediction, target) -> (loss, "
                        f"gradient), got the class {loss.__name__}")
    if not callable(loss):
        raise TypeError(f"Learner: loss must be a function (prediction, target) -> (loss, "
                        f"gradient) such as nn.mse_loss or nn.softmax_cross_entropy, got "
                        f"{type(loss).__name__} {loss!r:.60}")
    return loss


def _check_optimizer(optimizer: Any) -> Callable[..., None]:
    if optimizer is mse_loss or optimizer is softmax_cross_entropy:
        raise TypeError(f"Learner: optimizer is the loss {optimizer.__name__}; the arguments "
                        "are Learner(model, loss, optimizer), e.g. Learner(model, "
                        f"nn.{optimizer.__name__}, nn.Adam(lr=0.001))")
    if isinstance(optimizer, type):
        name = optimizer.__name__
        raise TypeError(f"Learner: optimizer must be an optimizer object, got the class "
                        f"{name}: create one, e.g. nn.{name}(lr=0.01)")
    if isinstance(optimizer, str):
        raise TypeError(f"Learner: optimizer must be an optimizer object, got the string "
                        f"{optimizer!r}: pass e.g. nn.Adam(lr=0.001) or nn.SGD(lr=0.01)")
    if not callable(optimizer):
        raise TypeError(f"Learner: optimizer must be an optimizer object such as "
                        f"nn.Adam(lr=0.001), got {type(optimizer).__name__}")
    return optimizer


def _check_model(model: Any) -> Layer:
    if isinstance(model, Layer):
        return model
    if isinstance(model, type) and issubclass(model, Layer):
        raise TypeError(f"Learner: model must be a layer object, got the class "
                        f"{model.__name__}: build one, e.g. nn.Sequential(nn.Linear(2, 1))")
    if callable(model) and hasattr(model, "__name__"):
        raise TypeError(f"Learner: model must be a fastnn.nn.Layer, got the function "
                        f"{model.__name__}: call it to build the model, {model.__name__}()")
    raise TypeError(f"Learner: model must be a fastnn.nn.Layer (e.g. an nn.Sequential), got "
                    f"{type(model).__name__}")


class _DeferredInterrupt:
    """While active (in the main thread), the first Ctrl-C only sets ``requested``, so the
    training loop can stop at the end of a batch with a consistent state; a second one
    interrupts at once. Elsewhere (other threads) SIGINT behaves as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second Ctrl-C: the user means it
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not allowed here (an embedded interpreter)
                self._previous = None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _describe_run(run: dict) -> str:
    if not run:
        return "no recorded options"
    return (f"{run['samples']} samples, bs {run['bs']}, shuffle {run['shuffle']} and the "
            f"history keys {run['keys']}")


def _rows(A: Array, index: Union[slice, np.ndarray]) -> Array:
    """Rows ``index`` of ``A`` (a shuffled index array or a slice)."""
    if isinstance(index, np.ndarray) and _compat.is_cupy_array(A):
        import cupy

        index = cupy.asarray(index)
    return A[index]


class Learner:
    """Train a model with a loss and an optimizer: ``fit_batch``, ``fit``, ``predict``.

    Parameters
    ----------
    model : Layer
        Usually a :class:`~fastnn.nn.Sequential`; a classifier ends in logits.
    loss : callable ``(prediction, target) -> (loss, gradient)``, or its name
        e.g. :func:`~fastnn.nn.mse_loss` (``"mse"``) or
        :func:`~fastnn.nn.softmax_cross_entropy` (``"softmax_cross_entropy"``,
        ``"cross_entropy"``).
    optimizer : callable ``(Parameter) -> None``
        An optimizer object, e.g. ``SGD(lr=0.1)`` or ``Adam()`` (not the class).
    metrics : sequence of names ("accuracy") or callables ``(output, target) -> float``
        Default: ``("accuracy",)`` with :func:`softmax_cross_entropy`, none otherwise.
    flush_denormals : bool
        Run the model's kernels with subnormal floats flushed to zero (default True; see
        :func:`fastnn.set_flush_denormals`). Training can drive weights into the subnormal
        range, where x86 arithmetic slows down 20-50x; the setting applies only while the
        learner runs the model.

    Notes
    -----
    Inputs follow the model-boundary dtype rule of :class:`~fastnn.nn.Layer` in
    ``fit``, ``fit_batch``, ``evaluate`` and ``predict`` alike (float data cast once to the model's
    dtype, integer and uint8 inputs refused with how to convert them, lists converted);
    float targets are cast to the model's dtype, integer class ids kept. ``fit`` stops with
    :class:`TrainingDiverged` at the first step whose loss is NaN or infinite.

    The reported loss (``fit_batch``, ``fit``, ``evaluate``) is the data loss plus the
    layers' L2 ``regularization_loss()``, as TFLearn reports it. With
    :func:`softmax_cross_entropy` as the loss, :meth:`predict` returns class probabilities
    (softmax of the logits) and :meth:`predict_classes` class ids; with any other loss,
    :meth:`predict` returns the model's output as it is.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn.nn import Linear, SGD, mse_loss
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3)).astype(np.float32)
    >>> Y = X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 1.0
    >>> learner = Learner(Linear(3, 1, rng=0), mse_loss, SGD(0.1))
    >>> losses = learner.fit(X, Y, epochs=20, bs=10, progress=False, seed=0)
    >>> len(losses), losses[-1] < 1e-6
    (20, True)
    """

    def __init__(self, model: Layer, loss: LossFunction, optimizer: Callable[..., None], *,
                 metrics: Optional[Sequence[Union[str, Metric]]] = None,
                 flush_denormals: bool = True) -> None:
        self.model = _check_model(model)
        self.flush_denormals = bool(flush_denormals)
        self.loss = _resolve_loss(loss)
        self.optimizer = _check_optimizer(optimizer)
        self.metrics = self._resolve_metrics(metrics)
        self.history: dict[str, list[float]] = {}
        self.stop_training = False
        # What a checkpoint needs besides the model and optimizer (fastnn.nn.checkpoint):
        self._rng: Optional[np.random.Generator] = None  # the shuffle order's generator
        self._run: dict[str, Any] = {}  # the options of the run that fit is in
        self._position = checkpoint.Position()
        self.checkpoint_meta: dict[str, Any] = {}  # saved as is (fastnn train's options)
        self.distributed = None  # the Communicator of the run fit is in (fastnn.distributed)
        self.callbacks: list[Callback] = []  # the callbacks of the run fit is in

    @property
    def is_root(self) -> bool:
        """Whether this process writes files and prints: always, except on the ranks other
        than 0 of a distributed run (:mod:`fastnn.distributed`)."""
        return self.distributed is None or self.distributed.is_root

    # ------------------------------------------------------------------ helpers

    def _resolve_metrics(self, metrics) -> dict[str, Metric]:
        if metrics is None:
            metrics = ("accuracy",) if self.loss is softmax_cross_entropy else ()
        resolved = {}
        for metric in metrics:
            if isinstance(metric, str):
                if metric not in METRICS:
                    raise ValueError(f"Learner: unknown metric {metric!r}; known: "
                                     f"{sorted(METRICS)}")
                resolved[metric] = METRICS[metric]
            else:
                resolved[getattr(metric, "__name__", "metric")] = metric
        return resolved

    def _prepare(self, A: Any) -> Array:
        """Targets as an array; float ones cast to the model's dtype (integer labels stay as
        they are)."""
        if not hasattr(A, "dtype"):
            A = np.asarray(A)
        dtype = self.model._param_dtype()
        if A.dtype.kind == "f" and dtype is not None and A.dtype != dtype:
            A = A.astype(dtype)
        return A

    def _prepare_inputs(self, X: Any) -> Array:
        """Inputs after the model-boundary dtype rule (:class:`~fastnn.nn.Layer`), once
        for the whole data."""
        return self.model._model_input(X)

    def _outputs(self, X: Array, bs: int) -> Iterator[tuple[int, int, Array]]:
        """``(start, stop, model output)`` per batch, in evaluation mode."""
        if bs < 1:
            raise ValueError(f"Learner: bs must be >= 1, got {bs!r}")
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(X), bs):
                stop = min(start + bs, len(X))
                with _threads.flush_denormals(self.flush_denormals):
                    output = self.model(X[start:stop])
                yield start, stop, output
        finally:
            self.model.train(was_training)

    # ------------------------------------------------------------------ training

    def _step(self, X: Array, Y: Array, finite_only: bool = False) -> tuple[float, Array]:
        """One training step; with ``finite_only``, a non-finite loss skips the backward
        and the update and returns ``(loss, None)``."""
        # The data needs no gradient: the first layer skips its input gradient.
        requires_input_grad = self.model.requires_input_grad
        self.model.requires_input_grad = False
        try:
            with _threads.flush_denormals(self.flush_denormals):
                output, backward = self.model.forward(X)
                loss, gradient = self.loss(output, Y)
                loss += self.model.regularization_loss()
                if finite_only and not math.isfinite(loss):
                    return loss, None
                backward(gradient)
                self.model.update(self.optimizer)
        finally:
            self.model.requires_input_grad = requires_input_grad
        return loss, output

    def _distributed_step(self, X: Array, Y: Array, weight: float,
                          stop_requested: bool) -> tuple[float, Optional[Array], list, bool]:
        """One step of a data-parallel run on this rank's shard ``X`` (maybe empty):
        forward, backward, the gradients times ``weight`` (the shard's part of the global
        batch) summed over the ranks, then the update on every rank. Returns the local loss
        and output, the ranks whose loss was not finite (then nothing was updated) and
        whether any rank asked to stop (Ctrl-C)."""
        comm = self.distributed
        flags = np.zeros(1 + comm.size)
        flags[0] = float(stop_requested)
        loss, output = 0.0, None
        requires_input_grad = self.model.requires_input_grad
        self.model.requires_input_grad = False
        try:
            with _threads.flush_denormals(self.flush_denormals):
                if len(X):
                    output, backward = self.model.forward(X)
                    loss, gradient = self.loss(output, Y)
                    loss += self.model.regularization_loss()
                    if math.isfinite(loss):
                        backward(gradient)
                    else:
                        flags[1 + comm.rank] = 1.0
                summed = comm.allreduce_gradients(self.model.parameters, weight, flags)
                bad = [rank for rank in range(comm.size) if summed[1 + rank] > 0]
                if not bad:
                    self.model.update(self.optimizer)
                else:
                    self.model.zero_grad()
        finally:
            self.model.requires_input_grad = requires_input_grad
        return loss, output, bad, bool(summed[0] > 0)

    def _diverged(self, loss: float, epoch: int, epochs: int, step: int, steps: int,
                  X: Array, Y: Array) -> TrainingDiverged:
        """The exception for a non-finite loss, with the layer whose output went bad first
        (this batch's forward re-run layer by layer: a cost paid only here)."""
        where = (f"Learner.fit: the loss is {loss} at epoch {epoch}/{epochs}, step "
                 f"{step}/{steps} (a batch of {len(X)})")
        layers = self.model.layers if isinstance(self.model, Sequential) else [self.model]
        culprit, data_fault = None, True
        if _count_nonfinite(X):
            k = _count_nonfinite(X)
            found = (f"the input batch itself holds {k} NaN/inf value{'s' * (k != 1)}; "
                     "clean the data (np.isfinite(X).all() must be True)")
        else:
            A = X
            with _threads.flush_denormals(self.flush_denormals):
                for i, layer in enumerate(layers):
                    A = layer.forward(A)[0]
                    if not _finite(A):
                        culprit = i
                        break
            if culprit is not None:
                data_fault = False
                layer = layers[culprit]
                name = (f"layer {culprit} ({layer._describe()})" if layer is not self.model
                        else f"the model ({layer._describe()})")
                bad = [n for n, p in layer.named_parameters() if not _finite(p.tensor)]
                if bad:
                    state = f"whose {', '.join(bad)} already hold NaN/inf (earlier updates blew up)"
                else:
                    largest = max((float(np.abs(p.tensor).max()) for p in layer.parameters
                                   if p.tensor.size), default=0.0)
                    state = ("on finite input, with finite parameters"
                             + (f" (the largest of magnitude {largest:.3g})" if largest else ""))
                found = f"the first non-finite output is that of {name}, {state}"
            elif _count_nonfinite(Y):
                k = _count_nonfinite(Y)
                found = (f"the model's outputs are finite but this batch's targets hold "
                         f"{k} NaN/inf value{'s' * (k != 1)}; clean the targets "
                         "(np.isfinite(Y).all() must be True)")
            else:
                data_fault = False
                found = "the model's outputs are finite but the loss overflowed"
        if data_fault:
            advice = "fix the data; the learning rate is not the cause"
        else:
            lr = getattr(self.optimizer, "lr", None)
            if isinstance(lr, (int, float)) and lr > 0:
                advice = (f"lower the learning rate: this optimizer's lr is {lr:g}, try "
                          f"{lr / 10:g} ({type(self.optimizer).__name__}(lr={lr / 10:g}); with "
                          f"`fastnn train`, --lr {lr / 10:g})")
            else:
                advice = "lower the learning rate (e.g. Adam(lr=0.001); `fastnn train --lr 0.001`)"
            advice += ", and check the inputs for NaN/inf (np.isfinite(X).all())"
        message = (f"{where}: {found}. Training stopped before this step's update, so the "
                   f"model keeps the parameters of the step before. Try: {advice}.")
        return TrainingDiverged(message, loss=loss, epoch=epoch, step=step, layer=culprit)

    def fit_batch(self, X: Array, Y: Array) -> float:
        """One step on a batch: forward, loss, backward, update. Returns the batch loss.

        Runs in the model's current mode (``fit`` switches it to training mode). ``X`` and
        ``Y`` follow the same dtype rule as in ``fit``; a non-finite loss is returned as it
        is (``fit`` raises :class:`TrainingDiverged` instead).
        """
        return self._step(self._prepare_inputs(X), self._prepare(Y))[0]

    def save_checkpoint(self, path) -> None:
        """Write the training state (model, optimizer, random generators, history and the
        position in the run) to ``path``; ``fit(..., resume=path)`` continues from it
        exactly. :class:`~fastnn.nn.Checkpoint` calls this after every epoch."""
        checkpoint.save_checkpoint(self, path, self._position)

    def fit(self, X: Array, Y: Array, epochs: int, bs: int, *,
            validation: Optional[tuple[Array, Array]] = None,
            metrics: Optional[Sequence[Union[str, Metric]]] = None,
            callbacks: Sequence[Callback] = (), progress: bool = True,
            seed: Union[None, int, np.random.Generator] = None,
            shuffle: bool = True, resume=None, distributed=None) -> list[float]:
        """Train for ``epochs`` epochs of batches of ``bs``; return each epoch's mean loss.

        Every epoch visits the samples in a new random order (from ``seed``) when
        ``shuffle``; the last batch of an epoch may be smaller. ``history`` then holds, per
        epoch: ``loss``, each metric, ``samples_per_s`` (training throughput) and, with
        ``validation=(X_val, Y_val)``, ``val_loss`` and ``val_<metric>``. Callbacks see the
        same numbers; any of them can stop training (``learner.stop_training = True``),
        and ``on_epoch_begin`` runs before each epoch (a learning-rate schedule such as
        :class:`~fastnn.nn.CosineDecay` sets the optimizer's ``lr`` there).
        ``progress`` shows a tqdm bar per epoch (loss, metrics, samples/s).

        ``resume`` names a checkpoint (:class:`~fastnn.nn.Checkpoint`,
        :meth:`save_checkpoint`): the model, optimizer, random generators and history are
        put back and training continues where it stopped, to ``epochs`` in all, ending
        bit-identical to a run that was never interrupted (same data, ``bs``, backend and
        threads). Ctrl-C stops at the end of the current batch: the :class:`Checkpoint`
        among ``callbacks`` (if any) writes its last checkpoint, and ``fit`` raises
        :class:`~fastnn.nn.TrainingInterrupted` saying how to resume; a second Ctrl-C
        interrupts at once.

        ``distributed`` (a :class:`fastnn.distributed.Communicator`) trains data-parallel
        over MPI ranks: ``bs`` is the per-rank batch, a step takes a global batch of
        ``ranks x bs`` samples, each rank its own slice of it, with gradients averaged
        before every update; parameters start from rank 0's, the history holds the
        numbers of the whole global data, and only rank 0 shows progress and writes
        checkpoints (:attr:`is_root`). Every rank passes the same data.
        """
        if metrics is not None:
            self.metrics = self._resolve_metrics(metrics)
        X, Y = self._prepare_inputs(X), self._prepare(Y)
        if len(X) != len(Y) or len(X) == 0:
            raise ValueError(f"Learner.fit: X and Y need the same, non-zero number of rows, got "
                             f"{len(X)} and {len(Y)}")
        if int(bs) < 1:
            raise ValueError(f"Learner.fit: bs must be >= 1, got {bs!r}")
        bs, n, epochs = int(bs), len(X), int(epochs)
        if validation is not None:
            validation = (self._prepare(validation[0]), self._prepare(validation[1]))
        keys = ["loss", *self.metrics, "samples_per_s"]
        if validation is not None:
            keys += ["val_loss", *(f"val_{name}" for name in self.metrics)]
        run = {"samples": n, "bs": bs, "shuffle": bool(shuffle), "keys": keys}
        if resume is not None:
            _, position = checkpoint.restore(self, resume)
            if self._run != run:
                raise ValueError(f"Learner.fit: {resume} was written by a run with "
                                 f"{_describe_run(self._run)}; this one has "
                                 f"{_describe_run(run)}: resume with the same data, bs, "
                                 "shuffle, metrics and validation")
        else:
            self._rng = np.random.default_rng(seed)
            self.history = {key: [] for key in keys}
            position = checkpoint.Position()
        self._run, self._position = run, position
        self.stop_training = False
        comm = self.distributed = distributed
        ranks = 1 if comm is None else comm.size
        if resume is not None and position.step and position.ranks != ranks:
            raise ValueError(f"Learner.fit: {resume} stopped in the middle of an epoch of a run "
                             f"on {position.ranks} rank(s); resume it on {position.ranks}, or "
                             "resume on any number of ranks from a checkpoint written at the "
                             "end of an epoch (nn.Checkpoint's)")
        if comm is not None:
            self._join(comm, resumed=resume is not None)
            if resume is not None and not comm.is_root:
                position.totals = {}  # rank 0 carries the interrupted epoch's sums
        global_bs = bs * ranks
        steps = -(-n // global_bs)
        saver = next((c for c in callbacks if isinstance(c, checkpoint.Checkpoint)), None)
        self.callbacks = list(callbacks)  # those of the run fit is in (EarlyStopping looks)
        from tqdm.auto import tqdm

        self.model.train()
        for callback in callbacks:
            callback.on_train_begin(self)
        try:
            with _DeferredInterrupt() as interrupt:
                for epoch in range(position.epoch, epochs):
                    for callback in callbacks:  # e.g. a learning-rate schedule
                        begin = getattr(callback, "on_epoch_begin", None)
                        if begin is not None:
                            begin(self, epoch)
                    resumed_step = position.step if epoch == position.epoch else 0
                    if resumed_step:  # the interrupted epoch's order, from its generator state
                        self._rng.bit_generator.state = position.epoch_rng
                    epoch_rng = self._rng.bit_generator.state
                    order = self._rng.permutation(n) if shuffle else None
                    totals = dict.fromkeys(["loss", *self.metrics], 0.0)
                    elapsed = 0.0
                    if resumed_step:
                        totals.update(position.totals)
                        elapsed = position.elapsed
                    bar = tqdm(total=n, unit="sample", desc=f"epoch {epoch + 1}/{epochs}",
                               disable=not (progress and self.is_root), leave=True,
                               initial=min(resumed_step * global_bs, n))
                    with bar:
                        start_time = time.perf_counter() - elapsed
                        for step in range(resumed_step + 1, steps + 1):
                            start = (step - 1) * global_bs
                            stop = min(start + global_bs, n)
                            first, last = (start, stop) if comm is None else \
                                comm.shard(start, stop, bs)
                            index = (slice(first, last) if order is None
                                     else order[first:last])
                            xb, yb = _rows(X, index), _rows(Y, index)
                            if comm is None:
                                loss, output = self._step(xb, yb, finite_only=True)
                                if output is None:
                                    raise self._diverged(loss, epoch + 1, epochs, step, steps,
                                                         xb, yb)
                            else:  # a Ctrl-C travels with the gradients: all ranks see it
                                loss, output, bad, stop_requested = self._distributed_step(
                                    xb, yb, (last - first) / (stop - start),
                                    interrupt.requested)
                                if bad:
                                    raise self._diverged_elsewhere(
                                        bad, loss, epoch + 1, epochs, step, steps, xb, yb)
                            m = len(xb)
                            if m:
                                totals["loss"] += loss * m
                                for name, metric in self.metrics.items():
                                    totals[name] += metric(output, yb) * m
                            if progress and self.is_root:
                                seen = last - start if comm is not None else min(start + bs, n)
                                bar.set_postfix({k: f"{v / seen:.4g}" for k, v in totals.items()},
                                                refresh=False)
                            bar.update(stop - start)
                            if comm is None:
                                stop_requested = interrupt.requested
                            if stop_requested and step < steps:
                                sums = dict(totals) if comm is None else \
                                    dict(zip(totals, comm.sum(list(totals.values()))))
                                self._position = checkpoint.Position(
                                    epoch, step, epoch_rng, sums,
                                    time.perf_counter() - start_time, ranks)
                                raise self._interrupted(saver, epoch, epochs, step, steps)
                        elapsed = time.perf_counter() - start_time
                        if comm is not None:
                            totals = dict(zip(totals, comm.sum(list(totals.values()))))
                            elapsed = comm.max(elapsed)
                        logs = {k: v / n for k, v in totals.items()}
                        logs["samples_per_s"] = n / elapsed if elapsed > 0 else float("inf")
                        if validation is not None:
                            scores = self._validate(*validation, bs=bs)
                            logs.update({f"val_{k}": v for k, v in scores.items()})
                        if progress:
                            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
                    for key in keys:
                        self.history[key].append(float(logs[key]))
                    self._position = checkpoint.Position(epoch + 1, ranks=ranks)
                    for callback in callbacks:
                        callback.on_epoch_end(self, epoch, logs)
                    stop_requested = interrupt.requested if comm is None else \
                        bool(comm.sum([interrupt.requested])[0])  # every rank, or none
                    if stop_requested and epoch + 1 < epochs:
                        raise self._interrupted(saver, epoch + 1, epochs, 0, steps)
                    if self.stop_training:
                        break
        except (checkpoint.TrainingInterrupted, TrainingDiverged):
            raise  # every rank raises these together
        except BaseException as exc:
            if comm is not None and comm.size > 1:
                # The other ranks wait in the next collective: end them all, saying why.
                comm.abort(f"Learner.fit failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            for callback in callbacks:
                callback.on_train_end(self)
        return list(self.history["loss"])

    def _join(self, comm, *, resumed: bool) -> None:
        """Start every rank of a distributed run from rank 0's parameters and shuffle
        order, and give each rank its own stream of the layers' random generators
        (Dropout's): rank r's is rank 0's jumped r times, so the masks differ across the
        shards of a batch while rank 0 draws what a single process would."""
        comm.broadcast_parameters(self.model.parameters)
        state = comm.broadcast(self._rng.bit_generator.state)
        self._rng.bit_generator.state = state
        for generator in checkpoint._generators(self.model):
            generator.bit_generator.state = comm.broadcast(generator.bit_generator.state)
            if comm.rank:
                jumped = getattr(generator.bit_generator, "jumped", None)
                if jumped is not None:
                    generator.bit_generator.state = jumped(comm.rank).state
                else:  # a bit generator without jumps: a seed of its own from rank 0's
                    seed = np.random.SeedSequence([comm.rank, int(generator.integers(2**62))])
                    generator.bit_generator.state = type(generator.bit_generator)(
                        seed).state

    def _diverged_elsewhere(self, bad: list, loss: float, epoch: int, epochs: int, step: int,
                            steps: int, X: Array, Y: Array) -> TrainingDiverged:
        """A distributed step some rank's loss was not finite on: that rank describes its
        batch (:meth:`_diverged`), the others name it."""
        if self.distributed.rank in bad:
            return self._diverged(loss, epoch, epochs, step, steps, X, Y)
        names = ", ".join(map(str, bad))
        return TrainingDiverged(
            f"Learner.fit: the loss is not finite on rank{'s' * (len(bad) > 1)} {names} at "
            f"epoch {epoch}/{epochs}, step {step}/{steps} (that rank's message names the "
            "layer). Training stopped before this step's update, so the model keeps the "
            "parameters of the step before.", loss=float("nan"), epoch=epoch, step=step)

    def _validate(self, X: Array, Y: Array, bs: int) -> dict[str, float]:
        """``evaluate`` for ``fit``: in a distributed run each rank scores its part of the
        validation rows and the sums are reduced."""
        comm = self.distributed
        if comm is None:
            return self.evaluate(X, Y, bs=bs)
        first, last = comm.shard_rows(len(X))
        totals = self._totals(X[first:last], Y[first:last], bs) if last > first else \
            dict.fromkeys(["loss", *self.metrics], 0.0)
        sums = comm.sum(list(totals.values()))
        scores = {k: v / len(X) for k, v in zip(totals, sums)}
        scores["loss"] += self.model.regularization_loss()
        return scores

    def _interrupted(self, saver, epoch: int, epochs: int, step: int,
                     steps: int) -> checkpoint.TrainingInterrupted:
        """Write the last checkpoint (with a Checkpoint callback) and say how to resume."""
        where = (f"epoch {epoch + 1}/{epochs} after step {step}/{steps}" if step
                 else f"the end of epoch {epoch}/{epochs}")
        if saver is None:
            message = (f"Learner.fit: interrupted at {where}; no checkpoint was written (pass "
                       "callbacks=[nn.Checkpoint(folder)] to fit to be able to resume)")
            path = None
        else:
            path = str(saver.last_path)
            if self.is_root:
                self.save_checkpoint(path)
            message = (f"Learner.fit: interrupted at {where}; the training state is in "
                       f"{path}: resume with fit(..., resume={path!r})")
        return checkpoint.TrainingInterrupted(message, epoch=epoch + (1 if step else 0),
                                              step=step, steps=steps, checkpoint=path)

    # ------------------------------------------------------------------ inference

    def predict(self, X: Array, bs: int = 256) -> Array:
        """The model's output for ``X`` in batches of ``bs``, in evaluation mode.

        Class probabilities when the loss is :func:`softmax_cross_entropy` (the model
        ends in logits), else the model's output itself.
        """
        X = self._prepare_inputs(X)
        result = None
        for start, stop, output in self._outputs(X, bs):
            if self.loss is softmax_cross_entropy:
                output = ops.softmax(output)
            if result is None:
                result = empty(output, (len(X), *output.shape[1:]))
            result[start:stop] = output
        if result is None:
            raise ValueError("Learner.predict: X has no rows")
        return result

    def predict_classes(self, X: Array, bs: int = 256) -> np.ndarray:
        """Predicted class ids (int64 NumPy array): the argmax of each output row."""
        return to_numpy(self.predict(X, bs)).argmax(axis=-1).astype(np.int64)

    def evaluate(self, X: Array, Y: Array, bs: int = 256) -> dict[str, float]:
        """Mean loss (plus the L2 regularisation) and each metric over ``(X, Y)``.

        Example
        -------
        >>> import numpy as np
        >>> from fastnn.nn import Linear, SGD, softmax_cross_entropy
        >>> learner = Learner(Linear(2, 3, rng=0), softmax_cross_entropy, SGD(0.1))
        >>> sorted(learner.evaluate(np.zeros((4, 2), np.float32), np.array([0, 1, 2, 0])))
        ['accuracy', 'loss']
        """
        X, Y = self._prepare_inputs(X), self._prepare(Y)
        if len(X) != len(Y) or len(X) == 0:
            raise ValueError(f"Learner.evaluate: X and Y need the same, non-zero number of "
                             f"rows, got {len(X)} and {len(Y)}")
        scores = {k: v / len(X) for k, v in self._totals(X, Y, bs).items()}
        scores["loss"] += self.model.regularization_loss()
        return scores

    def _totals(self, X: Array, Y: Array, bs: int) -> dict[str, float]:
        """The data loss and each metric summed over the rows of ``(X, Y)``."""
        totals = dict.fromkeys(["loss", *self.metrics], 0.0)
        for start, stop, output in self._outputs(X, bs):
            target = _rows(Y, slice(start, stop))
            loss, _ = self.loss(output, target)
            totals["loss"] += loss * (stop - start)
            for name, metric in self.metrics.items():
                totals[name] += metric(output, target) * (stop - start)
        return totals
