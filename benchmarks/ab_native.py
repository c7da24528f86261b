"""A/B two builds of ``fastnn._C`` in one process, interleaved: the way to judge a kernel
change on a noisy machine.

On a shared 2-vCPU machine the speed of the same binary moves by 30% from one minute to
the next (the host's other tenants), and a library measured right after NumPy or PyTorch
runs against their spinning worker threads. Timing the old and the new build in the same
process, call after call, and keeping each one's best exposes both to the same
conditions, so their ratio is meaningful where two separate runs are not.

    cp $(python -c "import fastnn._C as C; print(C.__file__)") /tmp/old.so   # before
    # ... change a kernel, rebuild ...
    python benchmarks/ab_native.py /tmp/old.so \\
        $(python -c "import fastnn._C as C; print(C.__file__)") --threads 1 --rounds 30

Cases (``--cases``): ``conv``, the seed network's conv2 (64x14x14x32 -> 64, 3x3 "same"),
all three passes; ``dilated``, 3x3 convolutions with dilation 2; ``direct``, the direct
kernels of first layers; ``gemm``, square products and the seed's dense-layer shapes;
``lrn``, LRN forward and backward at the seed's shapes; ``pool``, 2x2 max-pool forward and
backward; ``wide``, 3x3 convolutions with 64-256 channels; ``widths``, 640x288 products at
output widths from 20 to 384 (the dense register tile is chosen by the output width).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np


def load(tag: str, path: str):
    """Import the extension at ``path`` under the package name ``tag`` (its init symbol
    is PyInit__C whatever the package, so two builds can live side by side)."""
    spec = importlib.util.spec_from_file_location(f"{tag}._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conv_padding(native, pad):
    """The padding argument of the build's conv bindings: ((top, bottom), (left, right))
    since they recompute the output size, (top, left) before."""
    if "padding" in (native.conv2d.__doc__ or ""):
        return ((pad, pad), (pad, pad))
    return (pad, pad)


def conv_cases(native, batch=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 14, 14, 32), dtype=np.float32)
    w = rng.standard_normal((3, 3, 32, 64), dtype=np.float32)
    dy = rng.standard_normal((batch, 14, 14, 64), dtype=np.float32)
    y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
    one, pad = (1, 1), conv_padding(native, 1)
    return {
        "conv2d": lambda: native.conv2d(x, w, None, one, pad, one, None, y),
        "conv2d_backward_data": lambda: native.conv2d_backward_data(dy, w, one, pad, one, dx),
        "conv2d_backward_weights": lambda: native.conv2d_backward_weights(dy, x, one, pad, one,
                                                                          dw),
    }


def wide_cases(native):
    """3x3 "same" convolutions with many channels (Winograd's shapes): the CIFAR-shaped
    network's 64->64 at 32x32, 128->128 at 16x16 and 128->256 at 8x8 (batch 32), and a
    ResNet-18 stage, 256->256 at 14x14 (batch 8); each pass."""
    rng = np.random.default_rng(0)
    cases = {}
    one, pad = (1, 1), conv_padding(native, 1)
    for batch, size, c_in, c_out in ((32, 32, 64, 64), (32, 16, 128, 128), (32, 8, 128, 256),
                                     (8, 14, 256, 256)):
        x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32)
        w = rng.standard_normal((3, 3, c_in, c_out), dtype=np.float32)
        dy = rng.standard_normal((batch, size, size, c_out), dtype=np.float32)
        y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
        tag = f"{size}x{size}x{c_in}->{c_out}"
        cases[f"fwd/{tag}"] = lambda x=x, w=w, y=y: native.conv2d(x, w, None, one, pad, one,
                                                                  "relu", y)
        cases[f"bwd_data/{tag}"] = lambda dy=dy, w=w, dx=dx: native.conv2d_backward_data(
            dy, w, one, pad, one, dx)
        cases[f"bwd_w/{tag}"] = lambda dy=dy, x=x, dw=dw: native.conv2d_backward_weights(
            dy, x, one, pad, one, dw)
    return cases


def dilated_cases(native):
    """3x3 convolutions with dilation 2, "same" padding (DeepLab-style): 64->64 at 32x32,
    batch 32 (the conv-shapes table's layer), and 128->128 at 28x28, batch 8; each pass."""
    rng = np.random.default_rng(0)
    cases = {}
    one, two, pad = (1, 1), (2, 2), conv_padding(native, 2)
    for batch, size, c_in, c_out in ((32, 32, 64, 64), (8, 28, 128, 128)):
        x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32)
        w = rng.standard_normal((3, 3, c_in, c_out), dtype=np.float32)
        dy = rng.standard_normal((batch, size, size, c_out), dtype=np.float32)
        y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
        tag = f"{size}x{size}x{c_in}->{c_out}d2"
        cases[f"fwd/{tag}"] = lambda x=x, w=w, y=y: native.conv2d(x, w, None, one, pad, two,
                                                                  "relu", y)
        cases[f"bwd_data/{tag}"] = lambda dy=dy, w=w, dx=dx: native.conv2d_backward_data(
            dy, w, one, pad, two, dx)
        cases[f"bwd_w/{tag}"] = lambda dy=dy, x=x, dw=dw: native.conv2d_backward_weights(
            dy, x, one, pad, two, dw)
    return cases


def direct_cases(native):
    """The direct kernels (short patches): the seed's conv1 (64x28x28x1 -> 32), an
    ImageNet-sized first layer (8x224x224x3 -> 32) and a 512x512 image, whose padded
    input is bigger than one tile; forward (relu) and backward-weights, 3x3 "same"."""
    rng = np.random.default_rng(0)
    cases = {}
    one, pad = (1, 1), conv_padding(native, 1)
    for shape in ((64, 28, 28, 1), (8, 224, 224, 3), (1, 512, 512, 3)):
        x = rng.standard_normal(shape, dtype=np.float32)
        w = rng.standard_normal((3, 3, shape[3], 32), dtype=np.float32)
        dy = rng.standard_normal(shape[:3] + (32,), dtype=np.float32)
        y, dw = np.empty_like(dy), np.empty_like(w)
        tag = "x".join(map(str, shape))
        cases[f"direct/{tag}"] = lambda x=x, w=w, y=y: native.conv2d(x, w, None, one, pad, one,
                                                                     "relu", y)
        cases[f"direct_bw/{tag}"] = lambda x=x, dy=dy, dw=dw: native.conv2d_backward_weights(
            dy, x, one, pad, one, dw)
    return cases


def gemm_cases(native):
    rng = np.random.default_rng(0)
    cases = {}
    # (m, k, n, trans_a): square, the seed's first dense layer forward and its dW, then
    # its 10-class output layer forward and dW.
    for m, k, n, trans_a in ((256, 256, 256, False), (512, 512, 512, False),
                             (1024, 1024, 1024, False), (2048, 2048, 2048, False),
                             (64, 3136, 128, False),
                             (3136, 64, 128, True), (64, 256, 10, False), (256, 64, 10, True)):
        a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        name = f"gemm/{'TN' if trans_a else 'NN'}/{m}x{k}x{n}"
        cases[name] = lambda a=a, b=b, c=c, t=trans_a: native.gemm(a, b, c, t, False)
    return cases


def lrn_cases(native):
    """LRN forward and backward at the seed's two shapes (depth_radius 5, beta 0.75)."""
    rng = np.random.default_rng(0)
    cases = {}
    for shape in ((64, 14, 14, 32), (64, 7, 7, 64)):
        x = rng.standard_normal(shape, dtype=np.float32)
        y, scale, dx = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        native.local_response_norm(x, y, scale, 5, 1.0, 1e-4, 0.75)
        dy = rng.standard_normal(shape, dtype=np.float32)
        tag = "x".join(map(str, shape))
        y_out, scale_out = np.empty_like(x), np.empty_like(x)  # y, scale stay the inputs below
        cases[f"lrn/{tag}"] = lambda x=x, y=y_out, s=scale_out: native.local_response_norm(
            x, y, s, 5, 1.0, 1e-4, 0.75)
        cases[f"lrn_backward/{tag}"] = lambda a=(dy, x, y, scale, dx): (
            native.local_response_norm_backward(*a, 5, 1e-4, 0.75))
    return cases


def pool_cases(native):
    """2x2 max-pool forward and backward at the seed's two shapes."""
    rng = np.random.default_rng(0)
    cases = {}
    for shape in ((64, 28, 28, 32), (64, 14, 14, 64)):
        n, h, w, c = shape
        x = rng.standard_normal(shape, dtype=np.float32)
        y = np.empty((n, h // 2, w // 2, c), np.float32)
        argmax = np.empty(y.shape, np.int64)
        native.max_pool2d(x, y, argmax, (2, 2), (2, 2), (0, 0), False)
        y_out, argmax_out, dx = np.empty_like(y), np.empty_like(argmax), np.empty_like(x)
        tag = "x".join(map(str, shape))
        cases[f"max_pool2d/{tag}"] = lambda x=x, y=y_out, a=argmax_out: native.max_pool2d(
            x, y, a, (2, 2), (2, 2), (0, 0), False)
        cases[f"max_pool2d_backward/{tag}"] = lambda dy=y, a=argmax, dx=dx: (
            native.max_pool2d_backward(dy, a, dx))
    return cases


def width_cases(native):
    """640 x 288 by 288 x n at output widths around the register tiles' (the dense tile
    follows n), plain, with transposed A (a weight gradient) and with transposed B (a
    layer with (out, in) weights)."""
    rng = np.random.default_rng(0)
    cases = {}
    m, k = 640, 288
    for n in (20, 32, 40, 48, 50, 80, 96, 100, 128, 144, 200, 288, 384):
        for trans_a, trans_b in ((False, False), (True, False), (False, True)):
            a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
            b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
            c = np.empty((m, n), np.float32)
            tag = ("T" if trans_a else "N") + ("T" if trans_b else "N")
            cases[f"gemm/{tag}/{m}x{k}x{n}"] = (
                lambda a=a, b=b, c=c, ta=trans_a, tb=trans_b: native.gemm(a, b, c, ta, tb))
    return cases


CASES = {"conv": conv_cases, "dilated": dilated_cases, "direct": direct_cases,
         "wide": wide_cases, "gemm": gemm_cases, "lrn": lrn_cases, "pool": pool_cases,
         "widths": width_cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cases", choices=sorted(CASES), default="conv")
    args = parser.parse_args()
    builds = {"old": load("ab_old", args.old), "new": load("ab_new", args.new)}
    cases = {}
    for tag, native in builds.items():
        native.set_num_threads(args.threads)
        for name, fn in CASES[args.cases](native).items():
            cases[name, tag] = fn
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):
        for key, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    print(f"best of {args.rounds} interleaved rounds, {args.threads} thread(s)")
    for name in dict.fromkeys(name for name, _ in cases):
        old, new = best[name, "old"], best[name, "new"]
        print(f"{name:<26} old {old * 1e3:8.4f} ms   new {new * 1e3:8.4f} ms   "
              f"new is {old / new:.3f}x as fast")


if __name__ == "__main__":
    main()
