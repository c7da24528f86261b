"""Shape rules shared by every backend and by the validator in :mod:`fastnn.ops`.

A convolution or pooling output size is computed here and nowhere else.
"""

from __future__ import annotations

from typing import Union

# Every size option (kernel, stride, padding, dilation, LRN radius) stays below this, so the
# native kernels' 64-bit index arithmetic (a product of two options and a size) cannot
# overflow, whatever the caller passes.
OPTION_LIMIT = 2**31

Pair = tuple[int, int]
Padding2d = tuple[Pair, Pair]  # ((top, bottom), (left, right))
PaddingArg = Union[int, str, tuple]


def pair(op: str, name: str, value, *, minimum: int) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints, each at least ``minimum``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        result = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(result) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    if max(result) >= OPTION_LIMIT:
        raise ValueError(f"{op}: {name} must be < 2**31, got {value!r}")
    return result


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Output length along one axis of a convolution or pooling window.

    >>> conv_output_size(28, 3, 1, 1, 1)
    28
    """
    span = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - span) // stride + 1


def resolve_padding(op: str, padding: PaddingArg, in_hw: Pair, kernel_hw: Pair, stride_hw: Pair,
                    dilation_hw: Pair = (1, 1)) -> Padding2d:
    """Turn a user padding spec into explicit ``((top, bottom), (left, right))``.

    Accepts an int, an ``(h, w)`` pair, a pair of ``(before, after)`` pairs, ``"valid"``
    (no padding) or ``"same"`` (TensorFlow's rule: output = ceil(input / stride), with the
    odd pixel of padding at the bottom/right).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            result = []
            for size, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw):
                out = -(-size // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
                result.append((total // 2, total - total // 2))
            return (result[0], result[1])
        raise ValueError(
            f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 2
        and all(isinstance(p, (tuple, list)) for p in padding)
    ):
        top_bottom = pair(op, "padding", tuple(padding[0]), minimum=0)
        left_right = pair(op, "padding", tuple(padding[1]), minimum=0)
        return (top_bottom, left_right)
    ph, pw = pair(op, "padding", padding, minimum=0)
    return ((ph, ph), (pw, pw))
