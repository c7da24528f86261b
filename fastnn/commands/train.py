"""``fastnn train``, ``fastnn evaluate MODEL``, ``fastnn predict MODEL FILE``: the seed
convnet (:func:`fastnn.models.seed_convnet`) on MNIST.

``train`` fits the network on the training digits (the bundled 8,000 by default), validates
on the evaluation digits (the bundled last 2,000) after every epoch, and writes to ``--out``:
``model.npz`` (architecture and weights, :func:`fastnn.nn.save`), ``history.json`` (the
per-epoch numbers) and ``curves.png`` (loss and accuracy, when matplotlib is installed).
The same ``--seed``, backend and thread count give the same numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

# Epochs of a default `fastnn train`: the seed's 20, which take under a minute on two
# cores with the cpu backend (43 s on the shared 2-core development machine, 2026-11-23;
# 180 s when another job shares the cores). The NumPy reference backend is ~10x slower.
DEFAULT_EPOCHS = 20
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- arguments

def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=None,
                        help="compute backend (default: the best available; see `fastnn info`)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fastnn's kernels and BLAS (default: all cores)")


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None,
                        help="MNIST as a directory of IDX files or an .npz (default: the "
                             "bundled digits, 8,000 to train and 2,000 to evaluate)")
    # For tests and quick checks: use only the first N training and evaluation digits.
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "train":
        parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                            help=f"passes over the training digits (default: {DEFAULT_EPOCHS}, as "
                                 "the seed; under a minute on two cores)")
        parser.add_argument("--batch-size", type=int, default=64,
                            help="digits per step (default: 64, TFLearn's)")
        parser.add_argument("--lr", type=float, default=0.01,
                            help="Adam's learning rate (default: 0.01, the seed's)")
        parser.add_argument("--seed", type=int, default=0,
                            help="seed of the initial weights, shuffling and dropout (default: 0)")
        parser.add_argument("--out", default="runs",
                            help="folder for model.npz, history.json, curves.png (default: runs/)")
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar (the per-epoch lines still print)")
        _data(parser)
    elif name == "evaluate":
        parser.add_argument("model", help="a model saved by `fastnn train` (.npz)")
        parser.add_argument("--batch-size", type=int, default=500, help="digits per batch")
        _data(parser)
    elif name == "predict":
        parser.add_argument("model", help="a model saved by `fastnn train` (.npz)")
        parser.add_argument("file", help="a 28x28 grayscale image: .png or .npy (white digit on "
                                         "black, as MNIST; see --invert)")
        parser.add_argument("--invert", action="store_true",
                            help="invert the image first (for a dark digit on a light background)")
    _common(parser)


# --------------------------------------------------------------------------- shared set-up

@contextlib.contextmanager
def _compute(args: argparse.Namespace):
    """Apply --threads and --backend for the enclosed work."""
    import fastnn
    from fastnn import backends

    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be >= 1, got {args.threads}")
        fastnn.set_num_threads(args.threads)
    if args.backend is None:
        yield backends.current()
        return
    if args.backend not in backends.available():
        why = backends.unavailable().get(args.backend)
        known = ", ".join(backends.available())
        raise CommandError(f"backend {args.backend!r} is not available"
                           + (f" ({why})" if why else "") + f"; available: {known}")
    with backends.use(args.backend) as backend:
        yield backend


def _load_data(args: argparse.Namespace):
    from fastnn.data import load_mnist

    try:
        (x, y), (x_eval, y_eval) = load_mnist(args.data)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.limit is not None:
        if args.limit < 1:
            raise CommandError(f"--limit must be >= 1, got {args.limit}")
        x, y, x_eval, y_eval = x[:args.limit], y[:args.limit], x_eval[:args.limit], \
            y_eval[:args.limit]
    return (x, y), (x_eval, y_eval)


def _on(backend, *arrays):
    """The arrays as ``backend`` takes them (CuPy arrays for cuda: one copy to the device)."""
    return tuple(backend.xp.asarray(a) for a in arrays)


def _load_model(path: str):
    from fastnn import nn

    if not os.path.isfile(path):
        raise CommandError(f"no model file at {path} (train one with `fastnn train`)")
    try:
        return nn.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"{path}: cannot load the model ({exc})") from None


# --------------------------------------------------------------------------- train

class _EpochReport:
    """Callback: one line per epoch on stdout, whether or not a progress bar shows."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.start = time.perf_counter()

    def on_train_begin(self, learner) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, learner, epoch: int, logs: dict) -> None:
        print(f"epoch {epoch + 1}/{self.epochs}: loss {logs['loss']:.4f}, accuracy "
              f"{100 * logs['accuracy']:.2f}% | validation loss {logs['val_loss']:.4f}, "
              f"accuracy {100 * logs['val_accuracy']:.2f}% | {logs['samples_per_s']:.0f} "
              f"images/s | {time.perf_counter() - self.start:.0f} s", flush=True)

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
        print("matplotlib is not installed (pip install 'fastnn[plot]'): no curves.png")
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(args: argparse.Namespace) -> int:
    import fastnn
    from fastnn import models, nn

    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise CommandError("--epochs and --batch-size must be >= 1 and --lr > 0")
    (x, y), (x_eval, y_eval) = _load_data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with _compute(args) as backend:
        print(f"seed convnet: {len(x)} training and {len(x_eval)} evaluation digits, "
              f"{args.epochs} epochs of batches of {args.batch_size}, Adam lr {args.lr}, "
              f"backend {backend.name}, {fastnn.get_num_threads()} threads, seed {args.seed}",
              flush=True)
        model = models.seed_convnet(seed=args.seed).to(backend)
        x, y, x_eval, y_eval = _on(backend, x, y, x_eval, y_eval)
        learner = models.seed_learner(model, lr=args.lr)
        start = time.perf_counter()
        learner.fit(x, y, epochs=args.epochs, bs=args.batch_size, validation=(x_eval, y_eval),
                    callbacks=[_EpochReport(args.epochs)], progress=not args.no_progress,
                    seed=args.seed)
        elapsed = time.perf_counter() - start
    history = learner.history
    nn.save(model, out / MODEL_FILE)
    record = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
              "seed": args.seed, "backend": backend.name, "threads": fastnn.get_num_threads(),
              "train_digits": len(x), "evaluation_digits": len(x_eval),
              "seconds": elapsed, **history}
    (out / HISTORY_FILE).write_text(json.dumps(record, indent=1) + "\n")
    curves = plot_curves(history, out / CURVES_FILE)
    print(f"final: validation accuracy {100 * history['val_accuracy'][-1]:.2f}% "
          f"(loss {history['val_loss'][-1]:.4f}) on {len(x_eval)} digits after "
          f"{args.epochs} epochs, {elapsed:.0f} s, "
          f"{np.mean(history['samples_per_s']):.0f} images/s")
    print(f"saved {out / MODEL_FILE}, {out / HISTORY_FILE}"
          + (f", {curves}" if curves else ""))
    return 0


# --------------------------------------------------------------------------- evaluate

def evaluate(args: argparse.Namespace) -> int:
    from fastnn import models

    model = _load_model(args.model)
    _, (x_eval, y_eval) = _load_data(args)
    with _compute(args) as backend:
        x_eval, y_eval = _on(backend, x_eval, y_eval)
        scores = models.seed_learner(model.to(backend)).evaluate(x_eval, y_eval,
                                                                 bs=args.batch_size)
    print(f"{args.model}: loss {scores['loss']:.4f}, accuracy {100 * scores['accuracy']:.2f}% "
          f"on {len(x_eval)} evaluation digits")
    return 0


# --------------------------------------------------------------------------- predict

def _read_png(path: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    try:
        import matplotlib.image as mpimg
    except ImportError:
        raise CommandError("reading a PNG needs matplotlib (pip install 'fastnn[plot]') or "
                           "Pillow; or save the digit as a 28x28 .npy") from None
    pixels = np.asarray(mpimg.imread(path), dtype=np.float32)
    if pixels.ndim == 3:  # RGB(A) floats in [0, 1]: luminance, ignoring alpha
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return pixels


def read_digits(path: str, *, invert: bool = False) -> np.ndarray:
    """Images for the network, ``(n, 28, 28, 1)`` float32 in [0, 1], from a .png or .npy.

    A .npy may hold one digit (28×28 or 28×28×1) or several (n×28×28 or n×28×28×1); uint8
    pixels are scaled from 0-255, float pixels are taken as already in [0, 1].
    """
    if not os.path.isfile(path):
        raise CommandError(f"no such file: {path}")
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        try:
            pixels = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: not a readable .npy file ({exc})") from None
        if pixels.dtype == np.uint8:
            pixels = pixels.astype(np.float32) / 255.0
        elif pixels.dtype.kind in "fiu":
            pixels = pixels.astype(np.float32)
        else:
            raise CommandError(f"{path}: pixels must be numbers, got {pixels.dtype}")
    elif suffix == ".png":
        try:
            pixels = _read_png(path)
        except CommandError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the image reader raises
            raise CommandError(f"{path}: cannot read the PNG ({exc})") from None
    else:
        raise CommandError(f"{path}: expected a .png or .npy file")
    if pixels.ndim >= 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[1:] != (28, 28):
        raise CommandError(f"{path}: expected a 28x28 image (or n of them), got shape "
                           f"{tuple(pixels.shape)}")
    if invert:
        pixels = 1.0 - pixels
    return np.ascontiguousarray(pixels[..., None], dtype=np.float32)


def predict(args: argparse.Namespace) -> int:
    from fastnn import models
    from fastnn.nn._arrays import to_numpy

    model = _load_model(args.model)
    digits = read_digits(args.file, invert=args.invert)
    with _compute(args) as backend:
        (digits,) = _on(backend, digits)
        probabilities = to_numpy(models.seed_learner(model.to(backend)).predict(digits))
    for i, row in enumerate(probabilities):
        label = f"{args.file}" + (f"[{i}]" if len(probabilities) > 1 else "")
        print(f"{label}: class {int(row.argmax())} ({100 * row.max():.1f}%)")
        print("  probabilities: " + "  ".join(f"{d}: {p:.3f}" for d, p in enumerate(row)))
    if not args.invert and digits.mean() > 0.5:
        print("note: the image is mostly light; MNIST digits are light on dark, so try --invert")
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    commands = {"train": train, "evaluate": evaluate, "predict": predict}
    try:
        return commands[name](args)
    except CommandError as exc:
        print(f"fastnn {name}: {exc}", file=sys.stderr)
        return 2
