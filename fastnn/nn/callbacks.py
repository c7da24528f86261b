"""Training callbacks: hooks the Learner calls around epochs; EarlyStopping."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

from fastnn.nn._arrays import Array

if TYPE_CHECKING:
    from fastnn.nn.learner import Learner


class Callback:
    """Base class; override any hook. Set ``learner.stop_training = True`` to stop.

    ``logs`` holds the epoch's numbers: ``loss``, ``samples_per_s``, each metric (e.g.
    ``accuracy``) and, with a validation set, ``val_loss`` and ``val_<metric>``.
    """

    def on_train_begin(self, learner: Learner) -> None:
        """Called once when ``fit`` starts."""

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
        if (self.restore_best and self._snapshot is not None
                and self.best_epoch != self.last_epoch):
            for parameter, best in zip(learner.model.parameters, self._snapshot):
                parameter.tensor[...] = best
