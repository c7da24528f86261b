"""``fastnn summary``: the layers, output shapes and parameter counts of a saved model."""

from __future__ import annotations

import argparse

from fastnn.commands._common import CommandError


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a sample shape such as 28,28,1, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes such as 28,28,1, got {text!r}")
    return shape


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file (.npz) written by `fastnn train` or "
                                      "fastnn.nn.save, or a checkpoint")
    parser.add_argument("--input-shape", type=_shape, default=(28, 28, 1),
                        help="one sample's shape, without the batch axis (default: 28,28,1, "
                             "the seed convnet's NHWC digits)")


def run(name: str, args: argparse.Namespace) -> int:
    from fastnn.commands.train import _load_model

    model = _load_model(args.model)
    try:
        table = model.summary(input_shape=args.input_shape)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"{args.model}: the model does not take samples of shape "
                           f"{args.input_shape} ({exc}); give --input-shape") from None
    print(f"{args.model}:")
    print(table)
    return 0
