"""Shapes and layouts, shared by :mod:`fastnn.ops`, every backend and the layers.

Option normalisation (:func:`pair`, :func:`resolve_padding`), convolution and pooling
output sizes (:func:`conv_output_size` and the shapes built on it) and the NHWC/NCHW (and
HWIO/OIHW) conversions are written here and nowhere else. :mod:`fastnn.ops` validates and
normalises once; a backend receives normalised options and asks this module for the output
shape it allocates.
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


def pool_options(op: str, kernel, stride, padding) -> tuple[Pair, Pair, Pair]:
    """A pooling's ``(kernel, stride, padding)`` as pairs; ``stride`` None is ``kernel``."""
    kernel = pair(op, "kernel", kernel, minimum=1)
    stride = kernel if stride is None else pair(op, "stride", stride, minimum=1)
    return kernel, stride, pair(op, "padding", padding, minimum=0)


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


def conv_output_shape(x_shape, w_shape, stride: Pair, padding: Padding2d, dilation: Pair,
                      layout: str) -> tuple[int, int, int, int]:
    """A convolution's output shape (in ``layout``) from normalised options: ``w_shape`` is
    HWIO for NHWC and OIHW for NCHW, ``padding`` explicit ``((top, bottom), (left, right))``.

    >>> conv_output_shape((2, 28, 28, 1), (3, 3, 1, 32), (1, 1), ((1, 1), (1, 1)), (1, 1), "NHWC")
    (2, 28, 28, 32)
    """
    n, h, w, _ = nhwc_shape(x_shape, layout)
    kh, kw, _, c_out = hwio_shape(w_shape, layout)
    ho = conv_output_size(h, kh, stride[0], *padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], *padding[1], dilation[1])
    return image_shape((n, ho, wo, c_out), layout)


def pool_output_shape(x_shape, kernel: Pair, stride: Pair, padding: Pair,
                      layout: str) -> tuple[int, int, int, int]:
    """A pooling's output shape (in ``layout``) from normalised options (``padding`` the
    same on both sides of an axis).

    >>> pool_output_shape((2, 3, 28, 28), (2, 2), (2, 2), (0, 0), "NCHW")
    (2, 3, 14, 14)
    """
    n, h, w, c = nhwc_shape(x_shape, layout)
    ho = conv_output_size(h, kernel[0], stride[0], padding[0], padding[0])
    wo = conv_output_size(w, kernel[1], stride[1], padding[1], padding[1])
    return image_shape((n, ho, wo, c), layout)


# --------------------------------------------------------------------------- layouts
# Images are NHWC or NCHW, convolution weights HWIO or OIHW (with NCHW images). The helpers
# below convert shapes, and arrays as transposed views (NumPy or CuPy; no copy: a backend
# whose kernels need contiguous memory wraps them in ``ascontiguousarray``).

def nhwc_shape(shape, layout: str) -> tuple[int, int, int, int]:
    """``(n, h, w, c)`` of a 4-D image shape in either layout."""
    if layout == "NHWC":
        return tuple(shape)
    n, c, h, w = shape
    return (n, h, w, c)


def image_shape(nhwc, layout: str) -> tuple[int, int, int, int]:
    """The shape in ``layout`` of an image batch whose ``(n, h, w, c)`` is ``nhwc``."""
    n, h, w, c = nhwc
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)


def hwio_shape(shape, layout: str) -> tuple[int, int, int, int]:
    """``(kh, kw, c_in, c_out)`` of a weight shape in either layout (HWIO or OIHW)."""
    if layout == "NHWC":
        return tuple(shape)
    o, i, kh, kw = shape
    return (kh, kw, i, o)


def to_nhwc(x, layout: str):
    """An image batch in ``layout`` as an NHWC view (NHWC passes through)."""
    return x if layout == "NHWC" else x.transpose(0, 2, 3, 1)


def from_nhwc(y, layout: str):
    """An NHWC image batch as a view in ``layout`` (inverse of :func:`to_nhwc`)."""
    return y if layout == "NHWC" else y.transpose(0, 3, 1, 2)


def to_hwio(w, layout: str):
    """Weights of ``layout`` (HWIO for NHWC, OIHW for NCHW) as an HWIO view."""
    return w if layout == "NHWC" else w.transpose(2, 3, 1, 0)


def from_hwio(w, layout: str):
    """HWIO weights as a view in ``layout``'s weight order (inverse of :func:`to_hwio`)."""
    return w if layout == "NHWC" else w.transpose(3, 2, 0, 1)
