"""``fastnn train``, ``fastnn evaluate MODEL``, ``fastnn predict MODEL FILE``: the seed
convnet (:func:`fastnn.models.seed_convnet`) on MNIST or your own data (``--data``: what
:func:`fastnn.data.load` reads, as 28x28 grayscale images, one output per class).

``train`` fits the network on the training digits (the bundled 8,000 by default), validates
on the evaluation digits (the bundled last 2,000) after every epoch, and writes to ``--out``:
``model.npz`` (architecture and weights, :func:`fastnn.nn.save`), ``history.json`` (the
per-epoch numbers) and ``curves.png`` (loss and accuracy, when matplotlib is installed).
The same ``--seed``, backend and thread count give the same numbers. Each file is
replaced atomically (:func:`fastnn._files.atomic_write`): a failure while writing leaves
the previous one as it was.

User errors print one line ``fastnn <command>: error: <message>``; exit status 2 when an
option or a file it names cannot be used (checked before any work), 1 when the command
fails while running (see :mod:`fastnn.commands._common`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from fastnn._files import atomic_write, save_figure
from fastnn.commands._common import (
    FAILURE,
    INTERRUPTED,
    MAX_THREADS,
    CommandError,
    output_folder,
    positive_int,
    positive_number,
    seed_int,
    threads_int,
)

# Epochs of a default `fastnn train`: the seed's 20, which take under a minute on two
# cores with the cpu backend (43 s on the shared 2-core development machine, 2026-11-23;
# 180 s when another job shares the cores). The NumPy reference backend is ~10x slower.
DEFAULT_EPOCHS = 20
DEFAULT_OUT = "runs"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"

__all__ = ["CommandError", "read_digits", "plot_curves", "add_arguments", "run"]


# --------------------------------------------------------------------------- arguments

# --recipe: the learning rate and its schedule; --lr and --lr-schedule override either.
RECIPES = {"seed": {"lr": 0.01, "lr_schedule": "constant"},
           "stable": {"lr": 0.001, "lr_schedule": "cosine"}}
DEFAULT_RECIPE = "seed"


def _cosine(lr: float, epochs: int):
    from fastnn import nn

    return nn.CosineDecay(epochs=epochs, min_lr=lr / 100)


def _step(lr: float, epochs: int):
    from fastnn import nn

    return nn.StepDecay(step_size=5, gamma=0.5)


def _exponential(lr: float, epochs: int):
    from fastnn import nn

    return nn.ExponentialDecay(gamma=0.9)


def _plateau(lr: float, epochs: int):
    from fastnn import nn

    return nn.ReduceLROnPlateau(factor=0.2, patience=2, min_lr=lr / 1000)


# --lr-schedule NAME: (help text, the callback for (lr, epochs), or None for none)
SCHEDULES = {
    "constant": ("the same rate every epoch", None),
    "cosine": ("half a cosine from --lr down to --lr/100 over --epochs", _cosine),
    "step": ("halve the rate every 5 epochs", _step),
    "exponential": ("multiply the rate by 0.9 every epoch", _exponential),
    "plateau": ("divide the rate by 5 when the validation loss has not improved for 2 "
                "epochs", _plateau),
}

def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=None,
                        help="compute backend (default: the best available; see `fastnn info`)")
    parser.add_argument("--threads", type=threads_int, default=None,
                        help="threads for fastnn's kernels and BLAS, 1-1024 (default: all "
                             "cores)")


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None,
                        help="a folder of MNIST-format IDX files (MNIST, Fashion-MNIST, "
                             "KMNIST), a folder of images per class (DATA/<class>/*.png, "
                             ".jpg, ...; read as 28x28 grayscale, needs Pillow), or an .npz "
                             "(x_train, y_train, x_test, y_test, or x, y) of 28x28 images "
                             "(default: the bundled digits, 8,000 to train and 2,000 to "
                             "evaluate)")
    # For tests and quick checks: use only the first N training and evaluation digits.
    parser.add_argument("--limit", type=positive_int, default=None, help=argparse.SUPPRESS)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "train":
        parser.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS,
                            help=f"passes over the training digits (default: {DEFAULT_EPOCHS}, as "
                                 "the seed; under a minute on two cores)")
        parser.add_argument("--batch-size", type=positive_int, default=64,
                            help="digits per step, >= 1 (default: 64, TFLearn's)")
        parser.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                            help="the learning rate and its schedule: seed (Adam lr 0.01 "
                                 "throughout, as the seed; the validation accuracy swings by a "
                                 "point between epochs) or stable (lr 0.001 with a cosine "
                                 "decay: steadier, higher at the end); --lr and --lr-schedule "
                                 "change either part (default: seed)")
        parser.add_argument("--lr", type=positive_number, default=None,
                            help="Adam's learning rate, a finite number > 0 (default: 0.01, "
                                 "the seed's; 0.001 with --recipe stable); with a schedule, the "
                                 "rate of the first epoch")
        parser.add_argument("--lr-schedule", choices=list(SCHEDULES), default=None,
                            help="how the learning rate changes between epochs: "
                                 + "; ".join(f"{name}: {text}" for name, (text, _)
                                             in SCHEDULES.items())
                                 + " (default: constant; cosine with --recipe stable)")
        parser.add_argument("--early-stopping", metavar="PATIENCE", type=positive_int,
                            default=None,
                            help="stop once the validation loss has not improved for PATIENCE "
                                 "epochs, and save the weights of the epoch with the lowest "
                                 "validation loss (default: run all --epochs)")
        parser.add_argument("--seed", type=seed_int, default=0,
                            help="seed of the initial weights, shuffling and dropout, >= 0 "
                                 "(default: 0)")
        parser.add_argument("--out", default=DEFAULT_OUT,
                            help="folder for model.npz, history.json, curves.png (default: runs/)")
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar (the per-epoch lines still print; without a "
                                 "terminal on stderr there is no bar anyway)")
        parser.add_argument("--resume", metavar="CHECKPOINT", default=None,
                            help="continue an interrupted run from its checkpoint (e.g. "
                                 "runs/checkpoint-last.npz; every epoch writes one, Ctrl-C "
                                 "too): the run's --batch-size, --lr, --seed, --data, "
                                 "--recipe, --lr-schedule and --early-stopping come from it, "
                                 "--epochs may raise the total; the result is the same as an "
                                 "uninterrupted run's")
        _data(parser)
    elif name == "evaluate":
        parser.add_argument("model", help="a model saved by `fastnn train` (.npz)")
        parser.add_argument("--batch-size", type=positive_int, default=500,
                            help="digits per batch, >= 1 (default: 500)")
        _data(parser)
    elif name == "predict":
        parser.add_argument("model", help="a model saved by `fastnn train` (.npz)")
        parser.add_argument("file", help="an image (white digit on black, as MNIST; see "
                                         "--invert): a .png, .jpg or any format Pillow reads "
                                         "(converted to grayscale and resized to 28x28 if "
                                         "need be, which it reports), or a 28x28 .npy (n of "
                                         "them) of integer pixels 0-255 or floats in [0, 1]")
        parser.add_argument("--invert", action="store_true",
                            help="invert the image first (for a dark digit on a light background)")
    _common(parser)


# --------------------------------------------------------------------------- shared set-up

def _check_compute(args: argparse.Namespace) -> None:
    """Refuse a bad --threads or --backend before any work."""
    from fastnn import backends

    if args.threads is not None and not (isinstance(args.threads, int)
                                         and 1 <= args.threads <= MAX_THREADS):
        raise CommandError(f"--threads must be a whole number from 1 to {MAX_THREADS}, got "
                           f"{args.threads!r}")
    if args.backend is not None and args.backend not in backends.available():
        why = backends.unavailable().get(args.backend)
        known = ", ".join(backends.available())
        raise CommandError(f"--backend {args.backend}: backend {args.backend!r} is not "
                           "available" + (f" ({why})" if why else "") + f"; available: {known}")


@contextlib.contextmanager
def _compute(args: argparse.Namespace):
    """Apply --threads and --backend for the enclosed work."""
    import fastnn
    from fastnn import backends

    _check_compute(args)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    if args.backend is None:
        yield backends.current()
        return
    with backends.use(args.backend) as backend:
        yield backend


SEED_IMAGE = (28, 28)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's "L" mode


def _load_data(args: argparse.Namespace, *, training: bool):
    """The :class:`fastnn.data.Dataset` ``--data`` names (or the bundled digits), as the
    seed convnet takes it: 28x28x1 images (RGB arrays are converted to grayscale, other
    sizes refused; an image folder is read as 28x28 grayscale). ``training``: the training
    split must hold images too (``evaluate`` needs only the evaluation split). Returns the
    dataset and a note on what was converted (or ``""``)."""
    import zlib

    from fastnn import data

    source = f"--data {args.data}" if args.data is not None else "the bundled MNIST digits"
    try:
        dataset = data.load(args.data, size=SEED_IMAGE, color="grayscale")
    except (OSError, EOFError, ValueError, ImportError, zlib.error) as exc:
        message = str(exc) or type(exc).__name__
        if message.startswith("load_mnist: "):
            message = message[len("load_mnist: "):]
        if args.data is not None:
            if message.startswith(args.data + ":") or message.startswith(args.data + " "):
                message = message[len(args.data):].lstrip(": ")
            message = f"--data {args.data}: {message}"
        raise CommandError(message) from None
    note = ""
    train, val = dataset.train, dataset.validation
    h, w, c = dataset.image_shape
    if (h, w) != SEED_IMAGE:
        raise CommandError(f"{source}: the images are {h}x{w}; the seed convnet takes 28x28 "
                           "(resize them first, or give a folder of images per class, which "
                           "is resized)")
    if c == 3:
        train, val = (data.Split(np.ascontiguousarray((part.x @ _LUMA)[..., None]), part.y)
                      for part in (train, val))
        note = " (RGB, converted to grayscale for the seed convnet)"
    elif dataset.kind == "images":
        note = " (read as 28x28 grayscale for the seed convnet)"
    if args.limit is not None:
        if args.limit < 1:
            raise CommandError(f"--limit must be >= 1, got {args.limit}")
        train = data.Split(train.x[:args.limit], train.y[:args.limit])
        val = data.Split(val.x[:args.limit], val.y[:args.limit])
    if training and len(train) == 0:
        raise CommandError(f"{source}: has no training digits (x_train is empty); training "
                           "needs at least one")
    if len(val) == 0:
        raise CommandError(f"{source}: has no evaluation digits (x_test is empty); "
                           f"{'training validates on' if training else 'evaluate scores'} "
                           "them, so at least one is needed")
    if training and len(dataset.classes) < 2:
        raise CommandError(f"{source}: has only one class ({dataset.classes[0]}); training a "
                           "classifier needs two or more")
    dataset = data.Dataset(train, val, dataset.classes, dataset.source, dataset.kind)
    return dataset, note


def _describe(dataset, note: str) -> str:
    """``data: <source>: <counts, image size, classes><note>``, for the log."""
    return f"data: {dataset.source}: {dataset.describe()}{note}"


def _on(backend, *arrays):
    """The arrays as ``backend`` takes them (CuPy arrays for cuda: one copy to the device)."""
    return tuple(backend.xp.asarray(a) for a in arrays)


def _load_model(path: str):
    from fastnn import nn

    if not os.path.isfile(path):
        what = "a folder" if os.path.isdir(path) else "no such file"
        raise CommandError(f"no model file at {path} ({what}); give the model.npz that "
                           "`fastnn train` wrote")
    try:
        return nn.load(path)
    except OSError as exc:
        raise CommandError(f"{path}: cannot read the model ({exc.strerror or exc})") from None
    except ValueError as exc:  # nn.ModelFileError: the message names the file
        raise CommandError(str(exc)) from None


def _check_model(model, path: str, backend) -> int:
    """Refuse a model that is not a 28x28x1-images-to-class-scores network, before use;
    return its number of classes."""
    from fastnn.nn._arrays import to_numpy

    model.eval()
    try:
        output = model(backend.xp.zeros((1, 28, 28, 1), np.float32))
    except Exception as exc:  # noqa: BLE001 - whatever the layers refuse about the input
        raise CommandError(f"{path}: the model does not take 28x28x1 digits "
                           f"({type(exc).__name__}: {exc})") from None
    finally:
        model.train()
    if len(output.shape) != 2 or output.shape[0] != 1 or output.shape[1] < 2:
        raise CommandError(f"{path}: the model outputs shape {tuple(output.shape)} for one "
                           "digit; expected class scores (1, classes >= 2)")
    if not np.isfinite(to_numpy(output)).all():
        raise CommandError(f"{path}: the model's output is not finite (its weights hold NaN "
                           "or infinity); train it again")
    return int(output.shape[1])


# --------------------------------------------------------------------------- train

class _StopIfDiverged:
    """Callback: stop at the first epoch whose loss is not finite (nothing is saved)."""

    def __init__(self) -> None:
        self.epoch: Optional[int] = None
        self.loss = math.nan
        self.what = "loss"

    def on_train_begin(self, learner) -> None:
        pass

    def on_epoch_end(self, learner, epoch: int, logs: dict) -> None:
        for key in ("loss", "val_loss"):
            if not math.isfinite(logs.get(key, 0.0)):
                self.epoch, self.loss = epoch + 1, logs[key]
                self.what = "loss" if key == "loss" else "validation loss"
                learner.stop_training = True
                return

    def on_train_end(self, learner) -> None:
        pass


def _first_clause(exc: Exception) -> str:
    """Where a diverged run broke down, without the Python-API advice that follows."""
    text = str(exc).removeprefix("Learner.fit: ")
    return text.split(". ")[0]


class _EpochReport:
    """Callback: one line per epoch on stdout, whether or not a progress bar shows."""

    def __init__(self, epochs: int, schedule=None) -> None:
        self.epochs = epochs
        self.schedule = schedule  # a learning-rate schedule: its rate ends each line
        self.start = time.perf_counter()

    def on_train_begin(self, learner) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, learner, epoch: int, logs: dict) -> None:
        print(f"epoch {epoch + 1}/{self.epochs}: loss {logs['loss']:.4f}, accuracy "
              f"{100 * logs['accuracy']:.2f}% | validation loss {logs['val_loss']:.4f}, "
              f"accuracy {100 * logs['val_accuracy']:.2f}% | {logs['samples_per_s']:.0f} "
              f"images/s | {time.perf_counter() - self.start:.0f} s"
              + (f" | lr {learner.optimizer.lr:.3g}" if self.schedule is not None else ""),
              flush=True)

    def on_train_end(self, learner) -> None:
        pass


def plot_curves(history: dict, path: Path) -> Optional[Path]:
    """Loss and accuracy per epoch, training and validation, side by side."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print(f"no {path.name}: drawing it needs matplotlib, which is not installed "
              f"(pip install 'fastnn[plot]', then train again)")
        return None
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, history["loss"], "o-", label="training")
    loss_ax.plot(epochs, history["val_loss"], "s-", label="validation")
    loss_ax.set_ylabel("cross-entropy (+ L2)")
    acc_ax.plot(epochs, 100 * np.asarray(history["accuracy"]), "o-", label="training")
    acc_ax.plot(epochs, 100 * np.asarray(history["val_accuracy"]), "s-", label="validation")
    acc_ax.set_ylabel("accuracy (%)")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("fastnn seed convnet on MNIST")
    fig.tight_layout()
    return save_figure(fig, path)


def save_history(record: dict, path: Path) -> None:
    """``history.json``: the run's settings and per-epoch numbers (written atomically)."""
    with atomic_write(path, "w") as file:
        file.write(json.dumps(record, indent=1) + "\n")


# The options that shape a run: a resumed run takes them from its checkpoint.
# (Checkpoints written before --recipe, --lr-schedule and --early-stopping existed lack
# those keys: their runs had the seed's constant rate and no early stopping.)
RUN_OPTIONS = {"batch_size": ("--batch-size", 64), "lr": ("--lr", None), "seed": ("--seed", 0),
               "data": ("--data", None), "limit": ("--limit", None),
               "recipe": ("--recipe", None), "lr_schedule": ("--lr-schedule", None),
               "early_stopping": ("--early-stopping", None)}
_BEFORE_SCHEDULES = {"recipe": DEFAULT_RECIPE, "lr_schedule": "constant",
                     "early_stopping": None}


def _resume_options(args: argparse.Namespace) -> None:
    """Take the run's options from the checkpoint ``--resume`` names; refuse ones given
    that contradict it."""
    from fastnn.nn import ModelFileError, checkpoint

    path = args.resume
    if not os.path.isfile(path):
        raise CommandError(f"--resume {path}: no such file" + (
            " (a folder: name the checkpoint in it, e.g. checkpoint-last.npz)"
            if os.path.isdir(path) else ""))
    try:
        meta = checkpoint.read_checkpoint(path)[0].get("meta") or {}
    except ModelFileError as exc:
        raise CommandError(f"--resume {exc}") from None
    if "batch_size" not in meta:
        raise CommandError(f"--resume {path}: not a checkpoint of `fastnn train` (it has no "
                           "run options); resume it with Learner.fit(..., resume=...)")
    for key, (option, default) in RUN_OPTIONS.items():
        given = getattr(args, key)
        used = meta[key] if key in meta else _BEFORE_SCHEDULES[key]
        if given != default and given != used:
            was = f"{option} {used}" if used is not None else f"no {option}"
            raise CommandError(f"--resume {path}: the run used {was}; drop "
                               f"{option} {given}, or start a new run without --resume")
        setattr(args, key, used)
    if args.epochs == DEFAULT_EPOCHS:  # not given: the run's own total
        args.epochs = meta["epochs"]
    if args.out == DEFAULT_OUT:  # not given: where the run was writing
        args.out = os.path.dirname(os.path.abspath(path))


def _join_mpi_job(args: argparse.Namespace):
    """The job's :class:`fastnn.distributed.Communicator` when an MPI launcher (mpirun,
    mpiexec, srun) started this process among several; else None. Ranks other than 0 print
    nothing to stdout (their errors still reach stderr)."""
    from fastnn import distributed

    if distributed.launched_by_mpi() <= 1:
        return None
    try:
        comm = distributed.init(threads=args.threads)
    except distributed.DistributedError as exc:
        raise CommandError(f"started by an MPI launcher, but {exc}") from None
    if not comm.is_root:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)
    return comm


def _apply_recipe(args: argparse.Namespace) -> None:
    """Fill in --lr and --lr-schedule from --recipe where they were not given."""
    if args.recipe is None:
        args.recipe = DEFAULT_RECIPE
    if args.recipe not in RECIPES:
        raise CommandError(f"--recipe must be one of {', '.join(sorted(RECIPES))}, got "
                           f"{args.recipe!r}")
    recipe = RECIPES[args.recipe]
    if args.lr is None:
        args.lr = recipe["lr"]
    if args.lr_schedule is None:
        args.lr_schedule = recipe["lr_schedule"]
    if args.lr_schedule not in SCHEDULES:
        raise CommandError(f"--lr-schedule must be one of {', '.join(SCHEDULES)}, got "
                           f"{args.lr_schedule!r}")
    if args.early_stopping is not None and not (isinstance(args.early_stopping, int)
                                                and args.early_stopping >= 1):
        raise CommandError(f"--early-stopping must be a whole number of epochs >= 1, got "
                           f"{args.early_stopping!r}")


def _schedule_line(args: argparse.Namespace, schedule) -> str:
    """How the learning rate and the stopping go, for the log (``""`` for the seed's)."""
    parts = []
    if schedule is not None:
        parts.append(f"lr schedule {args.lr_schedule}: {SCHEDULES[args.lr_schedule][0]}"
                     .replace("--lr/100", f"{args.lr / 100:g}").replace("--lr", f"{args.lr:g}")
                     .replace("--epochs", f"{args.epochs} epochs"))
    if args.early_stopping is not None:
        parts.append(f"early stopping after {args.early_stopping} epoch"
                     f"{'s' * (args.early_stopping != 1)} without a lower validation loss")
    if not parts:
        return ""
    prefix = f"recipe {args.recipe}: " if args.recipe != DEFAULT_RECIPE else ""
    return prefix + "; ".join(parts)


def train(args: argparse.Namespace) -> int:
    import fastnn
    from fastnn import models, nn

    comm = _join_mpi_job(args)
    ranks = 1 if comm is None else comm.size
    if args.resume is not None:
        _resume_options(args)
    _apply_recipe(args)
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if not (isinstance(value, int) and value >= 1):
            raise CommandError(f"{option} must be a whole number >= 1, got {value!r}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise CommandError(f"--lr must be a finite number > 0, got {args.lr!r}")
    if not (isinstance(args.seed, int) and args.seed >= 0):
        raise CommandError(f"--seed must be a whole number >= 0, got {args.seed!r}")
    _check_compute(args)
    dataset, note = _load_data(args, training=True)
    (x, y), (x_eval, y_eval) = dataset
    classes = dataset.classes
    output_folder("--out", args.out)
    out = Path(args.out)
    diverged = _StopIfDiverged()
    with _compute(args) as backend:
        print(_describe(dataset, note), flush=True)
        print(f"seed convnet: {len(x)} training and {len(x_eval)} evaluation digits, "
              f"{args.epochs} epochs of batches of {args.batch_size}, Adam lr {args.lr}, "
              f"backend {backend.name}, {fastnn.get_num_threads()} threads, seed {args.seed}",
              flush=True)
        if comm is not None:
            print(f"distributed over {ranks} MPI ranks: a batch of {args.batch_size} per rank, "
                  f"{args.batch_size * ranks} per step, {fastnn.get_num_threads()} thread(s) "
                  f"per rank; the learning rate is not scaled (lr {args.lr} for the global "
                  f"batch of {args.batch_size * ranks}; --lr sets it)", flush=True)
        model = models.seed_convnet(seed=args.seed, classes=len(classes)).to(backend)
        x, y, x_eval, y_eval = _on(backend, x, y, x_eval, y_eval)
        learner = models.seed_learner(model, lr=args.lr)
        learner.checkpoint_meta = {"epochs": args.epochs,
                                   **{key: getattr(args, key) for key in RUN_OPTIONS}}
        saver = nn.Checkpoint(out)
        make_schedule = SCHEDULES[args.lr_schedule][1]
        schedule = make_schedule(args.lr, args.epochs) if make_schedule else None
        stopper = (nn.EarlyStopping(patience=args.early_stopping)
                   if args.early_stopping is not None else None)
        extra = [c for c in (schedule, stopper) if c is not None]
        line = _schedule_line(args, schedule)
        if line:
            print(line, flush=True)
        start = time.perf_counter()
        # Overflow in a diverging run is reported once, below, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                learner.fit(x, y, epochs=args.epochs, bs=args.batch_size,
                            validation=(x_eval, y_eval),
                            callbacks=[_EpochReport(args.epochs, schedule), diverged,
                                       *extra, saver],
                            # a bar only on a terminal: in a log file the per-epoch
                            # lines say it all, without a redrawn bar's every frame
                            progress=not args.no_progress and sys.stderr.isatty(),
                            seed=args.seed,
                            resume=args.resume, distributed=comm)
            except nn.TrainingInterrupted as exc:  # Ctrl-C, at the end of a batch
                where = str(exc).split("; ")[0].removeprefix("Learner.fit: ")
                raise CommandError(f"{where}; resume with: fastnn train --resume "
                                   f"{saver.last_path}", INTERRUPTED) from None
            except OSError as exc:  # a checkpoint could not be written (a full disk)
                name = exc.filename or str(saver.last_path)
                raise CommandError(f"cannot write {name} ({exc.strerror or exc}); an earlier "
                                   f"{Path(name).name} there is unchanged", FAILURE) from None
            except nn.TrainingDiverged as exc:  # a training loss went NaN/inf mid-epoch
                raise CommandError(f"the training diverged: {_first_clause(exc)}; nothing was "
                                   f"saved to {out}; try a smaller --lr than {args.lr}",
                                   FAILURE) from None
        elapsed = time.perf_counter() - start
    if diverged.epoch is not None:
        raise CommandError(f"the training diverged ({diverged.what} {diverged.loss} at epoch "
                           f"{diverged.epoch}); nothing was saved to {out}; try a smaller "
                           f"--lr than {args.lr}", FAILURE)
    history = learner.history
    record = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
              "seed": args.seed, "backend": backend.name, "threads": fastnn.get_num_threads(),
              "train_digits": len(x), "evaluation_digits": len(x_eval),
              "classes": list(classes), "seconds": elapsed, "ranks": ranks,
              "global_batch_size": args.batch_size * ranks, "recipe": args.recipe,
              "lr_schedule": args.lr_schedule, "early_stopping": args.early_stopping,
              **history}
    if schedule is not None:  # each epoch's rate (a function of the epoch and history)
        record["lr_per_epoch"] = [schedule.lr_at(e, schedule.base_lr, {
            k: v[:e] for k, v in history.items()}) for e in range(len(history["loss"]))]
    ran = len(history["loss"])
    kept = ran  # the epoch whose weights model.npz holds
    if stopper is not None and stopper.stopped_epoch is not None:
        kept = stopper.best_epoch + 1
        record["stopped_after_epoch"], record["best_epoch"] = ran, kept
    if comm is not None and not comm.is_root:
        return 0  # rank 0 writes the files
    target = out / MODEL_FILE
    try:
        nn.save(model, target)
        target = out / HISTORY_FILE
        save_history(record, target)
        target = out / CURVES_FILE
        curves = plot_curves(history, target)
    except OSError as exc:
        raise CommandError(f"cannot write {target} ({exc.strerror or exc}); an earlier "
                           f"{target.name} there is unchanged", FAILURE) from None
    if kept != ran:
        print(f"early stopping: the validation loss has not improved for "
              f"{args.early_stopping} epoch{'s' * (args.early_stopping != 1)}; stopped after "
              f"epoch {ran} of {args.epochs}, model.npz holds the weights of epoch {kept}")
    elif ran < args.epochs:
        print(f"early stopping: stopped after epoch {ran} of {args.epochs}")
    print(f"final: validation accuracy {100 * history['val_accuracy'][kept - 1]:.2f}% "
          f"(loss {history['val_loss'][kept - 1]:.4f}) on {len(x_eval)} digits after "
          f"{args.epochs if ran == args.epochs else ran} epochs"
          + (f" (the weights of epoch {kept})" if kept != ran else "")
          + f", {elapsed:.0f} s, {np.mean(history['samples_per_s']):.0f} images/s")
    print(f"saved {out / MODEL_FILE}, {out / HISTORY_FILE}"
          + (f", {curves}" if curves else ""))
    return 0


# --------------------------------------------------------------------------- evaluate

def evaluate(args: argparse.Namespace) -> int:
    from fastnn import models

    if not (isinstance(args.batch_size, int) and args.batch_size >= 1):
        raise CommandError(f"--batch-size must be a whole number >= 1, got {args.batch_size!r}")
    _check_compute(args)
    model = _load_model(args.model)
    dataset, note = _load_data(args, training=False)
    _, (x_eval, y_eval) = dataset
    with _compute(args) as backend:
        model.to(backend)
        classes = _check_model(model, args.model, backend)
        top = int(max(dataset.train.y.max(initial=0), y_eval.max(initial=0)))
        if top >= classes:
            raise CommandError(f"{args.model}: the model scores {classes} classes but "
                               f"{'--data ' + args.data if args.data else 'the data'} has "
                               f"labels up to {top}; evaluate it on data like its training "
                               "data")
        print(_describe(dataset, note), flush=True)
        x_eval, y_eval = _on(backend, x_eval, y_eval)
        scores = models.seed_learner(model.to(backend)).evaluate(x_eval, y_eval,
                                                                 bs=args.batch_size)
    print(f"{args.model}: loss {scores['loss']:.4f}, accuracy {100 * scores['accuracy']:.2f}% "
          f"on {len(x_eval)} evaluation digits")
    return 0


# --------------------------------------------------------------------------- predict

def read_digits(path: str, *, invert: bool = False) -> np.ndarray:
    """:func:`fastnn.data.images.read_digits`, raising :class:`CommandError` for a file it
    cannot use."""
    return _read_digits(path, invert=invert)[0]


def _read_digits(path: str, *, invert: bool = False) -> tuple[np.ndarray, str]:
    from fastnn.data import DataError, images

    try:
        return images.read_digits_noted(path, invert=invert)
    except DataError as exc:
        raise CommandError(str(exc)) from None


def _class_names(model_path: str, classes: int) -> Optional[list]:
    """The class names `fastnn train` recorded in the history.json beside the model, when
    they are not just the label numbers and fit the model; else ``None``."""
    try:
        with open(Path(model_path).parent / HISTORY_FILE) as file:
            names = json.load(file).get("classes")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(names, list) or len(names) != classes or \
            names == [str(i) for i in range(classes)]:
        return None
    return [str(name) for name in names]


def predict(args: argparse.Namespace) -> int:
    from fastnn import models
    from fastnn.nn._arrays import to_numpy

    _check_compute(args)
    model = _load_model(args.model)
    digits, note = _read_digits(args.file, invert=args.invert)
    with _compute(args) as backend:
        model.to(backend)
        classes = _check_model(model, args.model, backend)
        (digits,) = _on(backend, digits)
        probabilities = to_numpy(models.seed_learner(model).predict(digits))
    if not np.isfinite(probabilities).all():
        raise CommandError(f"{args.model}: the model's output for {args.file} is not finite; "
                           "nothing to report", FAILURE)
    if note:
        print(note)
    names = _class_names(args.model, classes)
    for i, row in enumerate(probabilities):
        label = f"{args.file}" + (f"[{i}]" if len(probabilities) > 1 else "")
        best = int(row.argmax())
        name = f" {names[best]!r}" if names else ""
        print(f"{label}: class {best}{name} ({100 * row.max():.1f}%)")
        print("  probabilities: " + "  ".join(f"{d}: {p:.3f}" for d, p in enumerate(row)))
    if not args.invert and digits.mean() > 0.5:
        print("note: the image is mostly light; MNIST digits are light on dark, so try --invert")
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    commands = {"train": train, "evaluate": evaluate, "predict": predict}
    try:
        return commands[name](args)
    except CommandError as exc:
        print(f"fastnn {name}: error: {exc}", file=sys.stderr)
        return exc.status
