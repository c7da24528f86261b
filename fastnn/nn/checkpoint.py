"""Training checkpoints: what :meth:`Learner.fit` needs to continue a run exactly.

A checkpoint is a model file (:func:`fastnn.nn.save`'s format, so :func:`fastnn.nn.load`
reads the model from it) with the training state beside it: the optimizer's state (Adam's
moments and step counts, SGD's velocities), the random generators (the shuffle order's and
every Dropout layer's), the history so far and the position in the run, down to the step
within an epoch. ``Learner.fit(..., resume=path)`` puts all of that back, so a resumed run
ends bit-identical to one that was never interrupted (on the same backend, thread count and
kernel ISA).

:class:`Checkpoint` writes one after every epoch (``checkpoint-last.npz``) and whenever the
monitored value improves (``checkpoint-best.npz``); Ctrl-C during ``fit`` writes the last
one at the end of the current batch before ``fit`` raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from fastnn._files import atomic_write
from fastnn.nn import serialize
from fastnn.nn._arrays import to_numpy
from fastnn.nn.callbacks import Callback
from fastnn.nn.serialize import ModelFileError

if TYPE_CHECKING:
    from fastnn.nn.learner import Learner

PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT_VERSION = 1
_STATE_KEY = "__fastnn_training_state__"
_OPTIMIZER_PREFIX = "optimizer/"


class TrainingInterrupted(KeyboardInterrupt):
    """``Learner.fit`` stopped at the end of a batch after Ctrl-C (SIGINT).

    The message says where, and how to resume. Attributes: ``epoch`` and ``step`` (the
    last finished step, both from 1), ``steps`` (per epoch) and ``checkpoint`` (the file
    written, or None when ``fit`` had no :class:`Checkpoint` callback).
    """

    def __init__(self, message: str, *, epoch: int, step: int, steps: int,
                 checkpoint: Optional[str]) -> None:
        super().__init__(message)
        self.epoch, self.step, self.steps, self.checkpoint = epoch, step, steps, checkpoint

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Position:
    """Where a run stands: ``epoch`` finished epochs, then ``step`` finished steps of the
    next one, whose order came from the shuffle generator in state ``epoch_rng``."""

    epoch: int = 0
    step: int = 0
    epoch_rng: Optional[dict] = None
    totals: dict = field(default_factory=dict)
    elapsed: float = 0.0
    ranks: int = 1  # of a distributed run (fastnn.distributed): what a step's batch spans


def _generators(model) -> list[np.random.Generator]:
    """Every layer's own random generator (Dropout's), in a fixed order."""
    found = []

    def walk(layer) -> None:
        rng = getattr(layer, "_rng", None)
        if isinstance(rng, np.random.Generator):
            found.append(rng)
        for child in getattr(layer, "layers", ()):
            walk(child)

    walk(model)
    return found


def _optimizer_state(learner: Learner) -> tuple[dict, dict[str, np.ndarray]]:
    """The optimizer's per-parameter state, keyed by parameter name: scalars for the
    header, arrays for the archive."""
    index = {id(p): name for name, p in learner.model.named_parameters()}
    scalars: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    for parameter, state in getattr(learner.optimizer, "state", {}).items():
        name = index.get(id(parameter))
        if name is None:
            continue  # a parameter of another model: not this run's
        scalars[name] = {}
        for key, value in state.items():
            if hasattr(value, "shape"):
                arrays[f"{_OPTIMIZER_PREFIX}{name}/{key}"] = to_numpy(value)
            else:
                scalars[name][key] = value
    return scalars, arrays


def save_checkpoint(learner: Learner, path: PathLike, position: Position, *,
                    meta: Optional[dict] = None) -> None:
    """Write ``learner``'s training state at ``position`` to ``path`` (atomically)."""
    scalars, optimizer_arrays = _optimizer_state(learner)
    state = {
        "version": CHECKPOINT_VERSION,
        "epoch": position.epoch, "step": position.step,
        "epoch_rng": position.epoch_rng, "totals": position.totals,
        "elapsed": position.elapsed, "ranks": position.ranks,
        "shuffle_rng": learner._rng.bit_generator.state if learner._rng else None,
        "layer_rngs": [g.bit_generator.state for g in _generators(learner.model)],
        "history": learner.history, "run": learner._run,
        "optimizer": {"type": type(learner.optimizer).__name__, "state": scalars},
        "meta": meta if meta is not None else learner.checkpoint_meta,
    }
    header = {"format": serialize.FORMAT_VERSION, "model": serialize.layer_spec(learner.model)}
    arrays = {serialize._SPEC_KEY: np.array(json.dumps(header)),
              _STATE_KEY: np.array(json.dumps(state))}
    for name, parameter in learner.model.named_parameters():
        arrays[serialize._PARAM_PREFIX + name] = to_numpy(parameter.tensor)
    arrays.update(optimizer_arrays)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as file:
        np.savez(file, **arrays)


def read_checkpoint(path: PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(state, arrays)`` of a checkpoint file; :class:`ModelFileError` for anything else."""
    where = os.fspath(path)
    serialize._sniff(path, where)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _STATE_KEY not in archive.files:
                raise ModelFileError(f"{where}: a model file without training state, not a "
                                     "checkpoint (fastnn.nn.Checkpoint writes those; "
                                     "fastnn train writes checkpoint-last.npz)")
            arrays = {key: serialize._member(archive, key, where) for key in archive.files}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged archive, whatever the zip layer says
        raise serialize._corrupt(where, exc) from exc
    try:
        state = json.loads(str(arrays.pop(_STATE_KEY)))
    except ValueError as exc:
        raise serialize._corrupt(where, exc) from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ModelFileError(f"{where}: checkpoint format {state.get('version')!r} is not "
                             f"{CHECKPOINT_VERSION}; it was written by another fastnn")
    return state, arrays


def restore(learner: Learner, path: PathLike) -> tuple[dict, Position]:
    """Put the state of checkpoint ``path`` into ``learner`` (model, optimizer, generators,
    history). Returns the checkpoint's run options and the position to continue from."""
    where = os.fspath(path)
    state, arrays = read_checkpoint(path)
    params = learner.model.named_parameters()
    saved = sorted(k[len(serialize._PARAM_PREFIX):] for k in arrays
                   if k.startswith(serialize._PARAM_PREFIX))
    if saved != sorted(name for name, _ in params):
        raise ModelFileError(f"{where}: the checkpoint's parameters ({len(saved)}) are not "
                             f"this model's ({len(params)}); resume with the model it was "
                             "written for")
    for name, parameter in params:
        value = arrays[serialize._PARAM_PREFIX + name]
        if value.shape != tuple(parameter.tensor.shape):
            raise ModelFileError(f"{where}: parameter {name} has shape {value.shape} in the "
                                 f"checkpoint, {tuple(parameter.tensor.shape)} in the model")
    optimizer = state["optimizer"]
    if optimizer["type"] != type(learner.optimizer).__name__:
        raise ModelFileError(f"{where}: written with a {optimizer['type']} optimizer, resumed "
                             f"with {type(learner.optimizer).__name__}; use the same optimizer")
    generators = _generators(learner.model)
    if len(generators) != len(state["layer_rngs"]):
        raise ModelFileError(f"{where}: the checkpoint holds {len(state['layer_rngs'])} layer "
                             f"random generators, the model has {len(generators)}")
    for name, parameter in params:
        parameter.tensor[...] = _like(arrays[serialize._PARAM_PREFIX + name], parameter.tensor)
    learner.optimizer.state.clear()
    by_name = dict(params)
    for name, scalars in optimizer["state"].items():
        entry = dict(scalars)
        prefix = f"{_OPTIMIZER_PREFIX}{name}/"
        for key, value in arrays.items():
            if key.startswith(prefix):
                entry[key[len(prefix):]] = _like(value, by_name[name].tensor, copy=True)
        learner.optimizer.state[by_name[name]] = entry
    for generator, saved_state in zip(generators, state["layer_rngs"]):
        generator.bit_generator.state = saved_state
    learner.history = {k: list(v) for k, v in state["history"].items()}
    learner._run = state["run"]
    rng = np.random.default_rng()
    rng.bit_generator.state = state["shuffle_rng"]
    learner._rng = rng
    position = Position(epoch=state["epoch"], step=state["step"], epoch_rng=state["epoch_rng"],
                        totals=state["totals"], elapsed=state["elapsed"],
                        ranks=state.get("ranks", 1))
    return state.get("meta") or {}, position


def _like(value: np.ndarray, like, *, copy: bool = False):
    """``value`` as an array of ``like``'s kind (NumPy or CuPy) and dtype."""
    if isinstance(like, np.ndarray):
        return value.astype(like.dtype, copy=copy)
    import cupy  # a model on the GPU

    return cupy.asarray(value, dtype=like.dtype)


class Checkpoint(Callback):
    """Write the training state after every epoch, and the best one so far.

    ``folder/checkpoint-last.npz`` after every epoch (and at the end of the batch where
    Ctrl-C stopped ``fit``); ``folder/checkpoint-best.npz`` whenever ``monitor`` (default
    ``val_loss``, else the training ``loss``) reaches a new minimum. Both are model files
    as well: ``fastnn.nn.load`` reads their model. Resume with
    ``Learner.fit(..., resume=folder / "checkpoint-last.npz")``.

    Example
    -------
    >>> import numpy as np, tempfile
    >>> from fastnn import nn
    >>> X = np.random.default_rng(0).uniform(size=(32, 2)).astype(np.float32)
    >>> Y = X.sum(axis=1, keepdims=True)
    >>> folder = tempfile.mkdtemp()
    >>> learner = nn.Learner(nn.Sequential(nn.Linear(2, 1, rng=0)), nn.mse_loss, nn.SGD(0.1))
    >>> _ = learner.fit(X, Y, epochs=2, bs=8, progress=False, seed=0,
    ...                 callbacks=[nn.Checkpoint(folder)])
    >>> more = nn.Learner(nn.Sequential(nn.Linear(2, 1, rng=5)), nn.mse_loss, nn.SGD(0.1))
    >>> _ = more.fit(X, Y, epochs=3, bs=8, progress=False, resume=f"{folder}/checkpoint-last.npz")
    >>> len(more.history["loss"])
    3
    """

    LAST = "checkpoint-last.npz"
    BEST = "checkpoint-best.npz"

    def __init__(self, folder: PathLike, *, monitor: Optional[str] = None,
                 save_best: bool = True) -> None:
        self.folder = Path(folder)
        self.monitor = monitor
        self.save_best = bool(save_best)
        self.best = math.inf

    @property
    def last_path(self) -> Path:
        return self.folder / self.LAST

    @property
    def best_path(self) -> Path:
        return self.folder / self.BEST

    def on_train_begin(self, learner: Learner) -> None:
        key = self._key(learner.history)
        values = learner.history.get(key, []) if key else []
        self.best = min(values, default=math.inf)  # a resumed run keeps its best so far

    def _key(self, logs: dict) -> Optional[str]:
        if self.monitor is not None:
            return self.monitor
        return "val_loss" if "val_loss" in logs else "loss"

    def on_epoch_end(self, learner: Learner, epoch: int, logs: dict[str, float]) -> None:
        if not learner.is_root:  # in a distributed run rank 0 writes, the others track
            self._track(logs)
            return
        _save(learner, self.last_path)
        key = self._key(logs)
        if key not in logs:
            raise KeyError(f"Checkpoint: the epoch logs have no {key!r} (keys: "
                           f"{sorted(logs)}); pass validation= to fit to get val_loss")
        if self.save_best and logs[key] < self.best:
            self.best = logs[key]
            _save(learner, self.best_path)

    def _track(self, logs: dict[str, float]) -> None:
        key = self._key(logs)
        if key in logs and logs[key] < self.best:
            self.best = logs[key]


def _save(learner: Learner, path: Path) -> None:
    """Write a checkpoint; an OSError names the checkpoint (a failed fsync names nothing)."""
    try:
        learner.save_checkpoint(path)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
