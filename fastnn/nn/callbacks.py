"""Training callbacks: hooks the Learner calls around epochs; EarlyStopping and the
learning-rate schedules (StepDecay, ExponentialDecay, CosineDecay, ReduceLROnPlateau,
LearningRateScheduler).

Every callback here works with checkpoints: what it decides depends only on the epoch
number and the history so far, both of which a checkpoint holds, so a run resumed with
``fit(..., resume=...)`` and the same callbacks takes the same decisions (the same learning
rate at every step, the same stopping epoch) as a run that was never interrupted.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from fastnn.nn._arrays import Array

if TYPE_CHECKING:
    from fastnn.nn.learner import Learner


class Callback:
    """Base class; override any hook. Set ``learner.stop_training = True`` to stop.

    ``logs`` holds the epoch's numbers: ``loss``, ``samples_per_s``, each metric (e.g.
    ``accuracy``) and, with a validation set, ``val_loss`` and ``val_<metric>``.

    Example
    -------
    >>> import numpy as np
    >>> from fastnn import nn
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, learner, epoch, logs):
    ...         print(f"epoch {epoch + 1}: loss {logs['loss']:.3f}")
    >>> X = np.linspace(0, 1, 16, dtype=np.float32)[:, None]
    >>> learner = nn.Learner(nn.Linear(1, 1, rng=0), nn.mse_loss, nn.SGD(0.5))
    >>> _ = learner.fit(X, 2 * X, epochs=2, bs=16, progress=False, callbacks=[PrintLoss()])
    epoch 1: loss 1.210
    epoch 2: loss 0.247
    """

    def on_train_begin(self, learner: Learner) -> None:
        """Called once when ``fit`` starts."""

    def on_epoch_begin(self, learner: Learner, epoch: int) -> None:
        """Called before each epoch's first step (``epoch`` counts from 0); a resumed run
        calls it for the epoch it resumes in, too."""

    def on_epoch_end(self, learner: Learner, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch (``epoch`` counts from 0) with that epoch's ``logs``."""

    def on_train_end(self, learner: Learner) -> None:
        """Called once when ``fit`` ends, whether it ran all epochs or was stopped."""


class EarlyStopping(Callback):
    """Stop when the monitored value (validation loss) stops improving.

    Parameters
    ----------
    patience : int
        Epochs without an improvement of more than ``min_delta`` before stopping.
    min_delta : float
        Smallest decrease that counts as an improvement.
    restore_best : bool
        At the end of training, put back the parameters of the best epoch (when a later
        epoch ended the run).
    monitor : str
        Key of the epoch logs to minimise; ``"val_loss"`` needs ``validation=`` in ``fit``.

    Attributes
    ----------
    best, best_epoch, stopped_epoch : the best value, its epoch, and the epoch training
        stopped after (None when it ran all its epochs).

    Example
    -------
    >>> stopper = EarlyStopping(patience=2)
    >>> class Stub:
    ...     stop_training = False
    ...     class model:
    ...         parameters = []
    >>> stopper.on_train_begin(Stub)
    >>> for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.85]):
    ...     stopper.on_epoch_end(Stub, epoch, {"val_loss": loss})
    >>> Stub.stop_training, stopper.best_epoch, stopper.stopped_epoch
    (True, 1, 3)
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, restore_best: bool = True,
                 monitor: str = "val_loss") -> None:
        if int(patience) < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {patience!r}")
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.restore_best = bool(restore_best)
        self.monitor = monitor
        self.on_train_begin(None)

    def on_train_begin(self, learner: Optional[Learner]) -> None:
        self.best = math.inf
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None
        self.last_epoch: Optional[int] = None
        self.wait = 0
        self._snapshot: Optional[list[Array]] = None
        # A resumed run: the history so far gives the best value, its epoch and the wait.
        history = getattr(learner, "history", None) or {}
        for epoch, value in enumerate(history.get(self.monitor, [])):
            self.last_epoch = epoch
            if value < self.best - self.min_delta:
                self.best, self.best_epoch, self.wait = float(value), epoch, 0
            else:
                self.wait += 1

    def on_epoch_end(self, learner: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: the epoch logs have no {self.monitor!r} "
                           f"(keys: {sorted(logs)}); pass validation= to fit to get val_loss")
        value = float(logs[self.monitor])
        self.last_epoch = epoch
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._snapshot = [p.tensor.copy() for p in learner.model.parameters]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            learner.stop_training = True

    def on_train_end(self, learner: Learner) -> None:
        if not self.restore_best or self.best_epoch is None or \
                self.best_epoch == self.last_epoch:
            return
        snapshot = self._snapshot
        if snapshot is None:  # the best epoch came before a resume: its checkpoint has it
            snapshot = self._best_from_checkpoint(learner)
        if snapshot is None:
            warnings.warn(f"EarlyStopping: the parameters of the best epoch "
                          f"({self.best_epoch + 1}) came before the resume and no "
                          f"nn.Checkpoint among fit's callbacks holds them (its best file "
                          f"tracks {self.monitor!r} when min_delta is 0); the model keeps "
                          f"those of the last epoch", RuntimeWarning, stacklevel=2)
            return
        for parameter, best in zip(learner.model.parameters, snapshot):
            parameter.tensor[...] = best

    def _best_from_checkpoint(self, learner: Learner) -> Optional[list]:
        """The parameters of the best epoch from the best file of a :class:`Checkpoint`
        among ``fit``'s callbacks, when that file is of the best epoch; else None."""
        from fastnn.nn import checkpoint, serialize

        for saver in getattr(learner, "callbacks", ()):
            if not isinstance(saver, checkpoint.Checkpoint) or not saver.best_path.is_file():
                continue
            state, arrays = checkpoint.read_checkpoint(saver.best_path)
            if len(state["history"].get(self.monitor, [])) != self.best_epoch + 1:
                continue
            return [checkpoint._like(arrays[serialize._PARAM_PREFIX + name], p.tensor)
                    for name, p in learner.model.named_parameters()]
        return None


# --------------------------------------------------------------------------- learning rates

class LearningRateSchedule(Callback):
    """Base class of the learning-rate schedules: set the optimizer's ``lr`` before every
    epoch to :meth:`lr_at` of that epoch.

    ``base_lr`` is the optimizer's ``lr`` when the schedule first starts (``fit``'s
    ``on_train_begin``), unless given. The rate of an epoch is a function of the epoch
    number, ``base_lr`` and the history of the epochs before it, never of state kept
    between calls, so a resumed run (``fit(..., resume=...)``) uses the same rate at every
    step as an uninterrupted one, and ends bit-identical to it. The rate stays at the last
    epoch's value after ``fit``. ``lrs`` maps each epoch this schedule set to its rate.

    Subclasses implement ``lr_at(epoch, base_lr, history)``.

    Example
    -------
    >>> class Halve(LearningRateSchedule):
    ...     def lr_at(self, epoch, base_lr, history):
    ...         return base_lr / 2 ** epoch
    >>> [Halve(base_lr=0.1).lr_at(epoch, 0.1, {}) for epoch in range(3)]
    [0.1, 0.05, 0.025]
    """

    def __init__(self, base_lr: Optional[float] = None) -> None:
        self.base_lr = None if base_lr is None else _positive(type(self).__name__, "base_lr",
                                                              base_lr)
        self.lrs: dict[int, float] = {}

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        """The learning rate of epoch ``epoch`` (from 0); ``history`` holds the epochs
        before it."""
        raise NotImplementedError

    def on_train_begin(self, learner: Learner) -> None:
        if self.base_lr is None:
            lr = getattr(learner.optimizer, "lr", None)
            if not isinstance(lr, (int, float)):
                raise TypeError(f"{type(self).__name__}: the optimizer "
                                f"{type(learner.optimizer).__name__} has no number lr to "
                                "schedule; use nn.SGD or nn.Adam, or pass base_lr=")
            self.base_lr = float(lr)

    def on_epoch_begin(self, learner: Learner, epoch: int) -> None:
        lr = float(self.lr_at(epoch, self.base_lr, learner.history))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{type(self).__name__}: the learning rate for epoch "
                             f"{epoch + 1} is {lr!r}; a schedule must give a finite number "
                             "> 0 (check its arguments)")
        learner.optimizer.lr = lr
        self.lrs[epoch] = lr


def _positive(name: str, option: str, value: Any, *, below_one: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0 and (not below_one or number < 1)):
        wanted = "a number in (0, 1)" if below_one else "a finite number > 0"
        raise ValueError(f"{name}: {option} must be {wanted}, got {value!r}")
    return number


def _whole(name: str, option: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: {option} must be a whole number >= {low}, got {value!r}")
    return int(value)


class StepDecay(LearningRateSchedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (PyTorch's
    ``StepLR``): ``lr = base_lr * gamma ** (epoch // step_size)``.

    Example
    -------
    >>> schedule = StepDecay(step_size=2, gamma=0.5)
    >>> [schedule.lr_at(epoch, 0.01, {}) for epoch in range(5)]
    [0.01, 0.01, 0.005, 0.005, 0.0025]
    """

    def __init__(self, step_size: int, gamma: float = 0.1, *,
                 base_lr: Optional[float] = None) -> None:
        super().__init__(base_lr)
        self.step_size = _whole("StepDecay", "step_size", step_size)
        self.gamma = _positive("StepDecay", "gamma", gamma)

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """Multiply the learning rate by ``gamma`` every epoch (PyTorch's ``ExponentialLR``):
    ``lr = base_lr * gamma ** epoch``.

    Example
    -------
    >>> schedule = ExponentialDecay(gamma=0.5)
    >>> [schedule.lr_at(epoch, 0.01, {}) for epoch in range(3)]
    [0.01, 0.005, 0.0025]
    """

    def __init__(self, gamma: float, *, base_lr: Optional[float] = None) -> None:
        super().__init__(base_lr)
        self.gamma = _positive("ExponentialDecay", "gamma", gamma)

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        return base_lr * self.gamma ** epoch


class CosineDecay(LearningRateSchedule):
    """Half a cosine from ``base_lr`` at the first epoch down to ``min_lr`` at epoch
    ``epochs`` (PyTorch's ``CosineAnnealingLR`` stepped per epoch): ``lr = min_lr +
    (base_lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2``; ``min_lr`` after ``epochs``.

    Give ``epochs`` the number of epochs of the run: the last one then trains at
    ``min_lr + (base_lr - min_lr) * (1 - cos(pi / epochs)) / 2``, just above ``min_lr``
    (which must be > 0: a zero rate would make the last epoch a no-op).

    Example
    -------
    >>> schedule = CosineDecay(epochs=4, min_lr=1e-4)
    >>> [round(schedule.lr_at(epoch, 0.01, {}), 6) for epoch in range(5)]
    [0.01, 0.00855, 0.00505, 0.00155, 0.0001]
    """

    def __init__(self, epochs: int, min_lr: float = 1e-5, *,
                 base_lr: Optional[float] = None) -> None:
        super().__init__(base_lr)
        self.epochs = _whole("CosineDecay", "epochs", epochs)
        self.min_lr = _positive("CosineDecay", "min_lr", min_lr)

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        if epoch >= self.epochs:
            return self.min_lr
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * epoch /
                                                                     self.epochs)) / 2


class ReduceLROnPlateau(LearningRateSchedule):
    """Multiply the learning rate by ``factor`` once ``monitor`` (default the validation
    loss) has not improved by more than ``min_delta`` for ``patience`` epochs, down to
    ``min_lr`` (Keras's ``ReduceLROnPlateau``, without its cooldown).

    The rate of each epoch is worked out again from the history of the epochs before it,
    so a resumed run reduces it at the same epochs.

    Example
    -------
    >>> schedule = ReduceLROnPlateau(patience=2, factor=0.5)
    >>> history = {"val_loss": [1.0, 0.9, 0.95, 0.92, 0.96, 0.97]}
    >>> [schedule.lr_at(epoch, 0.01, history) for epoch in range(7)]
    [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 3,
                 min_delta: float = 0.0, min_lr: float = 1e-6, *,
                 base_lr: Optional[float] = None) -> None:
        super().__init__(base_lr)
        self.monitor = monitor
        self.factor = _positive("ReduceLROnPlateau", "factor", factor, below_one=True)
        self.patience = _whole("ReduceLROnPlateau", "patience", patience)
        self.min_delta = abs(float(min_delta))
        self.min_lr = _positive("ReduceLROnPlateau", "min_lr", min_lr)

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        values = history.get(self.monitor)
        if values is None and epoch > 0:
            raise KeyError(f"ReduceLROnPlateau: the epoch logs have no {self.monitor!r} "
                           f"(keys: {sorted(history)}); pass validation= to fit to get "
                           "val_loss, or monitor='loss'")
        lr, best, wait = base_lr, math.inf, 0
        for value in (values or [])[:epoch]:
            if value < best - self.min_delta:
                best, wait = value, 0
                continue
            wait += 1
            if wait >= self.patience:
                lr, wait = max(lr * self.factor, min(self.min_lr, lr)), 0
        return lr


class LearningRateScheduler(LearningRateSchedule):
    """Keras's ``LearningRateScheduler``: ``schedule(epoch, lr)`` gives each epoch's rate
    from the previous epoch's (``base_lr`` before the first).

    The rate is found by applying ``schedule`` from epoch 0 each time, so a resumed run
    gets the same rates; ``schedule`` must depend only on its arguments.

    Example
    -------
    >>> schedule = LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5)
    >>> [schedule.lr_at(epoch, 0.01, {}) for epoch in range(4)]
    [0.01, 0.01, 0.005, 0.0025]
    """

    def __init__(self, schedule: Callable[[int, float], float], *,
                 base_lr: Optional[float] = None) -> None:
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) "
                            f"-> lr, got {type(schedule).__name__}")
        super().__init__(base_lr)
        self.schedule = schedule

    def lr_at(self, epoch: int, base_lr: float, history: dict[str, list[float]]) -> float:
        lr = base_lr
        for e in range(epoch + 1):
            lr = float(self.schedule(e, lr))
        return lr
