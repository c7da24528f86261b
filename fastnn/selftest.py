"""``fastnn selftest``: does this install compute correctly on this machine?

For every available backend other than the reference (``fastnn.backends.available()``),
every op of the contract (:mod:`fastnn.ops`) that the backend implements itself is run on
a few shapes, both float dtypes and both image layouts, forward and backward, and compared
with the NumPy reference backend; the cpu backend is checked again at every lower kernel
ISA this CPU runs (``FASTNN_ISA``, read once per process: in a subprocess each). A small
convnet then trains for a few steps on every backend, the reference included, and must
learn. Tolerances are those of the parity tests: per dtype, relative to the largest
reference value (float32: rtol 2e-4, atol 2e-5; float64: rtol 1e-10, atol 1e-12); integer
results (max-pooling's argmax, dropout's mask) must be equal.

Nothing here needs pytest: it runs from a plain ``pip install fastnn``.

Example
-------
>>> from fastnn import selftest
>>> report = selftest.run(backends=["reference"], isa=False, training=False, out=None)
>>> report.ok, report.failures
(True, [])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

__all__ = ["TOLERANCES", "Failure", "Report", "run", "cases"]

# (rtol, atol relative to the largest reference value), as tests/support.py
TOLERANCES = {
    np.dtype(np.float32): (2e-4, 2e-5),
    np.dtype(np.float64): (1e-10, 1e-12),
}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ISA_ORDER = ["portable", "avx2", "avx512"]


class _Case(NamedTuple):
    op: str
    label: str  # shape and options, for the report
    build: Callable  # (rng, dtype) -> (args, kwargs)
    inplace: bool = False  # compare the (mutated) arguments, not the result


@dataclass
class Failure:
    """One check that did not agree with the reference (or raised).

    Example
    -------
    >>> print(Failure("cpu", "avx2", "relu", "7x13", "float32", "3 of 91 values differ"))
    cpu (kernel ISA avx2): relu [7x13, float32]: 3 of 91 values differ
    """

    backend: str
    isa: Optional[str]
    op: str
    case: str
    dtype: str
    error: str

    def __str__(self) -> str:
        where = self.backend + (f" (kernel ISA {self.isa})" if self.isa else "")
        return f"{where}: {self.op} [{self.case}, {self.dtype}]: {self.error}"


@dataclass
class Row:
    """The result for one backend (at one kernel ISA): a row of the table."""

    backend: str
    isa: Optional[str]
    ops: int = 0
    checks: int = 0
    failed: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class Report:
    """What :func:`run` found: ``ok`` when every check passed.

    Example
    -------
    >>> report = Report(training={"cpu": "ok"})
    >>> report.ok
    True
    >>> report.failures.append(Failure("cpu", None, "tanh", "7x13", "float64", "raised"))
    >>> report.ok
    False
    """

    rows: list[Row] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    training: dict[str, str] = field(default_factory=dict)  # backend -> "ok" or why not
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and all(v == "ok" for v in self.training.values())


# --------------------------------------------------------------------------- the cases

def _randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _strided(x):
    """The same values as a non-contiguous view (every other element of a wider array)."""
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    wide[..., ::2] = x
    return wide[..., ::2]


def cases() -> list[_Case]:
    """The selftest's cases: a few per op of :mod:`fastnn.ops`, every op covered.

    Each has ``op``, ``label`` (shape and options) and ``build(rng, dtype) -> (args,
    kwargs)``.

    Example
    -------
    >>> from fastnn import ops
    >>> {c.op for c in cases()} == set(ops.__all__)
    True
    """
    from fastnn import backends, ops

    found: list[_Case] = []

    def case(op, label, inplace=False):
        def register(build):
            found.append(_Case(op, label, build, inplace))
            return build
        return register

    for m, n, k, ta, tb in [(7, 5, 3, False, False), (17, 33, 9, True, False),
                            (64, 10, 256, False, True), (3, 1, 40, True, True)]:
        @case("gemm", f"{m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'}")
        def _(rng, dtype, m=m, n=n, k=k, ta=ta, tb=tb):
            a = _randn(rng, (k, m) if ta else (m, k), dtype)
            b = _randn(rng, (n, k) if tb else (k, n), dtype)
            return (a, b), dict(trans_a=ta, trans_b=tb)

    @case("gemm", "9x13x11 alpha 0.5 beta -2 strided a")
    def _(rng, dtype):
        return (_strided(_randn(rng, (9, 11), dtype)), _randn(rng, (11, 13), dtype)), dict(
            alpha=0.5, beta=-2.0, out=_randn(rng, (9, 13), dtype))

    for activation in (None, "relu", "tanh"):
        @case("linear", f"13x31 @ 31x19 {activation or 'no'} activation")
        def _(rng, dtype, activation=activation):
            return (_randn(rng, (13, 31), dtype), _randn(rng, (31, 19), dtype),
                    _randn(rng, (19,), dtype)), dict(activation=activation)

    # (n, h, w, c_in, c_out, kernel, stride, padding, dilation)
    convs = [(2, 7, 9, 3, 4, 3, 1, "same", 1), (3, 8, 6, 1, 5, 3, 2, 1, 1),
             (2, 28, 28, 1, 8, 3, 1, "same", 1), (2, 14, 14, 32, 64, 3, 1, "same", 1),
             (1, 10, 11, 3, 17, 3, 1, "valid", 2)]

    def conv_inputs(rng, dtype, config, layout):
        n, h, w, cin, cout, k, stride, padding, dilation = config
        x = _randn(rng, (n, h, w, cin) if layout == "NHWC" else (n, cin, h, w), dtype)
        wt = _randn(rng, (k, k, cin, cout) if layout == "NHWC" else (cout, cin, k, k), dtype)
        return x, wt, dict(stride=stride, padding=padding, dilation=dilation, layout=layout)

    for config in convs:
        for layout in ("NHWC", "NCHW"):
            n, h, w, cin, cout, k, stride, padding, dilation = config
            label = (f"{n}x{h}x{w}x{cin} -> {cout}, {k}x{k} stride {stride} padding "
                     f"{padding} dilation {dilation} {layout}")

            @case("conv2d", label)
            def _(rng, dtype, config=config, layout=layout):
                x, wt, options = conv_inputs(rng, dtype, config, layout)
                return (x, wt, _randn(rng, (config[4],), dtype)), options

            @case("conv2d_backward_data", label)
            def _(rng, dtype, config=config, layout=layout):
                x, wt, options = conv_inputs(rng, dtype, config, layout)
                with backends.use("reference"):
                    y = ops.conv2d(x, wt, **options)
                return (_randn(rng, y.shape, dtype), wt, x.shape), options

            @case("conv2d_backward_weights", label)
            def _(rng, dtype, config=config, layout=layout):
                x, wt, options = conv_inputs(rng, dtype, config, layout)
                with backends.use("reference"):
                    y = ops.conv2d(x, wt, **options)
                return (_randn(rng, y.shape, dtype), x, wt.shape), options

    @case("conv2d", "2x7x9x3 -> 4, 3x3 same, fused relu")
    def _(rng, dtype):
        x, wt, options = conv_inputs(rng, dtype, convs[0], "NHWC")
        return (x, wt, _randn(rng, (4,), dtype)), dict(options, activation="relu")

    for config, layout in [((2, 12, 10, 1, 32, 3, 1, "same", 1), "NHWC"),
                           ((2, 12, 10, 1, 32, 3, 1, "same", 1), "NCHW"),
                           ((1, 9, 9, 3, 16, 3, 1, "same", 1), "NHWC")]:
        @case("conv2d_relu_max_pool2d", f"{'x'.join(map(str, config[:4]))} -> {config[4]} "
                                        f"{layout}")
        def _(rng, dtype, config=config, layout=layout):
            x, wt, options = conv_inputs(rng, dtype, config, layout)
            return (x, wt, _randn(rng, (config[4],), dtype)), options

    for shape, layout in [((4, 7), "NHWC"), ((2, 5, 6, 3), "NHWC"), ((2, 5, 6, 3), "NCHW")]:
        @case("bias_backward", f"{'x'.join(map(str, shape))} {layout}")
        def _(rng, dtype, shape=shape, layout=layout):
            return (_randn(rng, shape, dtype),), dict(layout=layout)

    # (n, h, w, c, kernel, stride, padding)
    pools = [(2, 8, 8, 16, 2, 2, 0), (2, 7, 9, 3, 3, 2, 1), (1, 5, 6, 33, 2, 1, 0)]
    for config in pools:
        for layout in ("NHWC", "NCHW"):
            n, h, w, c, kernel, stride, padding = config
            shape = (n, h, w, c) if layout == "NHWC" else (n, c, h, w)
            options = dict(kernel=kernel, stride=stride, padding=padding, layout=layout)
            label = f"{'x'.join(map(str, shape))} {kernel}/{stride} pad {padding} {layout}"

            @case("max_pool2d", label)
            def _(rng, dtype, shape=shape, options=options):
                return (_randn(rng, shape, dtype),), options

            @case("max_pool2d_backward", label)
            def _(rng, dtype, shape=shape, options=options):
                with backends.use("reference"):
                    y, argmax = ops.max_pool2d(_randn(rng, shape, dtype), **options)
                return (_randn(rng, y.shape, dtype), argmax, shape), {}

            @case("avg_pool2d", label)
            def _(rng, dtype, shape=shape, options=options):
                return (_randn(rng, shape, dtype),), dict(options, count_include_pad=False)

            @case("avg_pool2d_backward", label)
            def _(rng, dtype, shape=shape, options=options):
                with backends.use("reference"):
                    y = ops.avg_pool2d(_randn(rng, shape, dtype), **options)
                return (_randn(rng, y.shape, dtype), shape), options

    for shape in [(7, 13), (3, 5, 7, 2), (100_003,)]:
        label = "x".join(map(str, shape))
        for name in ("relu", "sigmoid", "tanh"):
            @case(name, label)
            def _(rng, dtype, shape=shape):
                return (_randn(rng, shape, dtype) * 4,), {}

            @case(f"{name}_backward", label)
            def _(rng, dtype, shape=shape, name=name):
                with backends.use("reference"):
                    y = getattr(ops, name)(_randn(rng, shape, dtype) * 3)
                return (_randn(rng, shape, dtype), y), {}

    @case("relu", "7x13 strided")
    def _(rng, dtype):
        return (_strided(_randn(rng, (7, 13), dtype)),), {}

    for shape in [(4, 10), (64, 10), (3, 5, 7)]:
        label = "x".join(map(str, shape))
        for name in ("softmax", "log_softmax"):
            @case(name, label)
            def _(rng, dtype, shape=shape):
                return (_randn(rng, shape, dtype) * 10,), {}

        @case("softmax_backward", label)
        def _(rng, dtype, shape=shape):
            with backends.use("reference"):
                y = ops.softmax(_randn(rng, shape, dtype))
            return (_randn(rng, shape, dtype), y), {}

    for kind in ("index", "onehot"):
        for n, classes in [(7, 3), (64, 10)]:
            def labels(rng, dtype, n=n, classes=classes, kind=kind):
                ids = rng.integers(0, classes, n)
                return ids if kind == "index" else np.eye(classes, dtype=dtype)[ids]

            @case("softmax_cross_entropy", f"{n}x{classes} {kind} labels")
            def _(rng, dtype, n=n, classes=classes, labels=labels):
                return (_randn(rng, (n, classes), dtype) * 3, labels(rng, dtype)), {}

            @case("softmax_cross_entropy_backward", f"{n}x{classes} {kind} labels")
            def _(rng, dtype, n=n, classes=classes, labels=labels):
                with backends.use("reference"):
                    probs = ops.softmax(_randn(rng, (n, classes), dtype))
                return (0.7, probs, labels(rng, dtype)), {}

    for shape in [(5, 3), (4, 2, 3)]:
        @case("mse_loss", "x".join(map(str, shape)))
        def _(rng, dtype, shape=shape):
            return (_randn(rng, shape, dtype), _randn(rng, shape, dtype)), {}

    for shape, radius in [((2, 4, 5, 7), 2), ((2, 3, 3, 32), 5), ((1, 2, 2, 33), 40)]:
        for layout in ("NHWC", "NCHW"):
            n, h, w, c = shape
            xshape = shape if layout == "NHWC" else (n, c, h, w)
            options = dict(depth_radius=radius, bias=1.0, alpha=0.1, beta=0.75, layout=layout)
            label = f"{'x'.join(map(str, xshape))} radius {radius} {layout}"

            @case("local_response_norm", label)
            def _(rng, dtype, xshape=xshape, options=options):
                return (_randn(rng, xshape, dtype),), options

            @case("local_response_norm_backward", label)
            def _(rng, dtype, xshape=xshape, options=options):
                x = _randn(rng, xshape, dtype)
                with backends.use("reference"):
                    y, scale = ops.local_response_norm(x, **options)
                return (_randn(rng, xshape, dtype), x, y, scale), options

    for shape, keep in [((1000,), 0.8), ((64, 128), 0.5)]:
        label = f"{'x'.join(map(str, shape))} keep {keep}"

        @case("dropout", label)
        def _(rng, dtype, shape=shape, keep=keep):
            return (_randn(rng, shape, dtype),), dict(keep_prob=keep,
                                                     seed=int(rng.integers(2**63)))

        @case("dropout_backward", label)
        def _(rng, dtype, shape=shape, keep=keep):
            return (_randn(rng, shape, dtype), rng.random(shape) < keep), dict(keep_prob=keep)

    for momentum, nesterov, decay in [(0.0, False, 0.0), (0.9, True, 1e-3)]:
        @case("sgd_update", f"37x5 momentum {momentum} nesterov {nesterov} weight decay "
                            f"{decay}", inplace=True)
        def _(rng, dtype, momentum=momentum, nesterov=nesterov, decay=decay):
            velocity = _randn(rng, (37, 5), dtype) if momentum else None
            return (_randn(rng, (37, 5), dtype), _randn(rng, (37, 5), dtype), velocity), dict(
                lr=0.1, momentum=momentum, weight_decay=decay, nesterov=nesterov)

    for step, decay, size in [(1, 0.0, 1000), (7, 1e-3, 100_003)]:
        @case("adam_update", f"{size} step {step} weight decay {decay}", inplace=True)
        def _(rng, dtype, step=step, decay=decay, size=size):
            return (_randn(rng, (size,), dtype), _randn(rng, (size,), dtype),
                    _randn(rng, (size,), dtype) * 0.1,
                    rng.random(size).astype(dtype) * 0.1), dict(step=step, lr=0.01,
                                                                weight_decay=decay)

    # The sequence ops at spaCy-like sizes: ragged lengths with an empty sequence.
    lengths = np.array([5, 0, 9, 1, 17], np.int32)
    for width in (7, 96):
        @case("maxout", f"31x{width}x3")
        def _(rng, dtype, width=width):
            return (_randn(rng, (31, width, 3), dtype),), {}

        @case("maxout_backward", f"31x{width}x3")
        def _(rng, dtype, width=width):
            with backends.use("reference"):
                _, which = ops.maxout(_randn(rng, (31, width, 3), dtype))
            return (_randn(rng, (31, width), dtype), which, 3), {}

        for nw in (1, 2):
            @case("seq2col", f"32x{width} nw {nw} lengths {lengths.tolist()}")
            def _(rng, dtype, width=width, nw=nw):
                return (_randn(rng, (32, width), dtype),), dict(nw=nw, lengths=lengths)

            @case("seq2col_backward", f"32x{width * (2 * nw + 1)} nw {nw} lengths "
                                      f"{lengths.tolist()}")
            def _(rng, dtype, width=width, nw=nw):
                return (_randn(rng, (32, width * (2 * nw + 1)), dtype),), dict(
                    nw=nw, lengths=lengths)

        for name in ("reduce_sum", "reduce_mean"):
            @case(name, f"32x{width} lengths {lengths.tolist()}")
            def _(rng, dtype, width=width):
                return (_randn(rng, (32, width), dtype), lengths), {}

            @case(f"{name}_backward", f"5x{width} lengths {lengths.tolist()}")
            def _(rng, dtype, width=width):
                return (_randn(rng, (5, width), dtype), lengths), {}

        positive = np.array([5, 2, 9, 1, 15], np.int32)

        @case("reduce_max", f"32x{width} lengths {positive.tolist()}")
        def _(rng, dtype, width=width, positive=positive):
            return (_randn(rng, (32, width), dtype), positive), {}

        @case("reduce_max_backward", f"5x{width} lengths {positive.tolist()}")
        def _(rng, dtype, width=width, positive=positive):
            with backends.use("reference"):
                _, which = ops.reduce_max(_randn(rng, (32, width), dtype), positive)
            return (_randn(rng, (5, width), dtype), which, positive), {}

        @case("gather_add", f"table 50x{width}, 40x4 uint32 indices")
        def _(rng, dtype, width=width):
            return (_randn(rng, (50, width), dtype),
                    rng.integers(0, 50, (40, 4)).astype(np.uint32)), {}

    return found


# --------------------------------------------------------------------------- checking

def _to_numpy(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy(v) for v in value)
    if hasattr(value, "get") and hasattr(value, "__cuda_array_interface__"):
        return value.get()
    return value


def _on(backend, value):
    if isinstance(value, np.ndarray) and backend.name == "cuda":
        return backend.xp.asarray(value)
    return value


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def _evaluate(name: str, c: _Case, args, kwargs):
    from fastnn import backends, ops

    backend = backends.get(name)
    args = [_on(backend, _copy(a)) for a in args]
    kwargs = {k: _on(backend, _copy(v)) for k, v in kwargs.items()}
    with backends.use(name):
        result = getattr(ops, c.op)(*args, **kwargs)
    if c.inplace:
        return tuple(_to_numpy(a) for a in args if a is not None)
    return _to_numpy(result)


def _compare(actual, expected, dtype) -> Optional[str]:
    """``None`` when ``actual`` matches ``expected`` within the dtype's tolerance, else
    what differs."""
    if isinstance(expected, tuple):
        if not isinstance(actual, tuple) or len(actual) != len(expected):
            return f"returned {type(actual).__name__}, expected a tuple of {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            why = _compare(a, e, dtype)
            if why:
                return f"result {i}: {why}"
        return None
    if expected is None:
        return None if actual is None else f"returned {type(actual).__name__}, expected None"
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return f"shape {actual.shape}, expected {expected.shape}"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind in "biu":
        wrong = int(np.count_nonzero(actual != expected))
        return f"{wrong} of {expected.size} values differ" if wrong else None
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    finite = np.isfinite(expected)
    scale = float(np.abs(expected[finite]).max()) if finite.any() else 1.0
    allowed = atol * max(scale, 1.0) + rtol * np.abs(expected)
    same_special = (np.isnan(actual) & np.isnan(expected)) | (actual == expected)
    bad = ~same_special & ~(np.abs(actual - expected) <= allowed)
    if not bad.any():
        return None
    with np.errstate(invalid="ignore"):
        error = np.where(bad, np.nan_to_num(np.abs(actual - expected), nan=np.inf), -1.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(error)), expected.shape))
    return (f"{int(bad.sum())} of {expected.size} values outside the tolerance (rtol "
            f"{rtol:g}, atol {atol:g} x {max(scale, 1.0):.3g}); the worst at {index}: "
            f"{float(actual[index])!r}, expected {float(expected[index])!r}")


def _overrides(name: str, op: str) -> bool:
    """Whether backend ``name`` has its own ``op`` (not the reference's, which it would
    compare with itself)."""
    from fastnn import backends
    from fastnn.backends.reference import ReferenceBackend

    if name == "cuda":
        return True
    return getattr(type(backends.get(name)), op) is not getattr(ReferenceBackend, op)


def _check_backend(name: str, isa: Optional[str] = None) -> tuple[Row, list[Failure]]:
    row, failures = Row(name, isa), []
    start = time.perf_counter()
    own = [c for c in cases() if _overrides(name, c.op)]
    row.ops = len({c.op for c in own})
    for c in own:
        for dtype in _DTYPES:
            rng = np.random.default_rng(zlib.crc32(f"{c.op} {c.label}".encode()))
            args, kwargs = c.build(rng, dtype)
            row.checks += 1
            try:
                expected = _evaluate("reference", c, args, kwargs)
                actual = _evaluate(name, c, args, kwargs)
                why = _compare(actual, expected, dtype)
            except Exception as exc:  # noqa: BLE001 - a crash is a failed check, named
                why = f"raised {type(exc).__name__}: {exc}"
            if why:
                row.failed += 1
                failures.append(Failure(name, isa, c.op, c.label, dtype.name, why))
    row.seconds = time.perf_counter() - start
    return row, failures


def _train(name: str) -> str:
    """A small convnet learns a two-class image problem on backend ``name``: "ok" or why
    not."""
    from fastnn import backends, nn

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 0.3, (128, 8, 8, 1)).astype(np.float32)
    Y = rng.integers(0, 2, 128)
    X[Y == 1, :4] += 0.7  # class 1: a bright top half
    backend = backends.get(name)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, activation="relu", rng=1), nn.MaxPool2d(2),
                          nn.LocalResponseNorm(2), nn.Flatten(), nn.Linear(64, 16, rng=2),
                          nn.ReLU(), nn.Dropout(0.9, seed=3), nn.Linear(16, 2, rng=4))
    model.to(backend)
    learner = nn.Learner(model, nn.softmax_cross_entropy, nn.Adam(lr=0.01))
    Xb, Yb = backend.xp.asarray(X), backend.xp.asarray(Y)
    try:
        with np.errstate(all="ignore"):
            losses = learner.fit(Xb, Yb, epochs=4, bs=32, progress=False, seed=0)
            accuracy = learner.evaluate(Xb, Yb)["accuracy"]
    except Exception as exc:  # noqa: BLE001 - a crash is a failed check, named
        return f"training raised {type(exc).__name__}: {exc}"
    if not (np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0] and accuracy >= 0.95):
        return (f"did not learn: loss {losses[0]:.3g} -> {losses[-1]:.3g} over 4 epochs, "
                f"accuracy {100 * accuracy:.0f}% (a correct install reaches >= 95%)")
    return "ok"


def _lower_isas() -> list[str]:
    from fastnn import _compat

    native, _ = _compat.native()
    if native is None:
        return []
    best = native.detected_isa()
    return _ISA_ORDER[:_ISA_ORDER.index(best)] if best in _ISA_ORDER else []


def _selected_isa() -> Optional[str]:
    from fastnn import _compat

    native, _ = _compat.native()
    return native.selected_isa() if native is not None else None


def _child_main() -> None:
    """In a subprocess with ``FASTNN_ISA`` set: check the cpu backend, print JSON."""
    row, failures = _check_backend("cpu", _selected_isa())
    print(json.dumps({"row": row.__dict__, "failures": [f.__dict__ for f in failures]}))


def _check_cpu_at(isa: str) -> tuple[Row, list[Failure]]:
    """The cpu backend's checks in a subprocess whose kernels run at ``isa``."""
    code = (f"import sys; sys.path[:] = {json.dumps(sys.path)}; "
            "import fastnn.selftest as s; s._child_main()")
    env = dict(os.environ, FASTNN_ISA=isa)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=300)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - the subprocess failed: say how
        why = getattr(locals().get("done"), "stderr", "") or f"{type(exc).__name__}: {exc}"
        row = Row("cpu", isa, failed=1, seconds=time.perf_counter() - start)
        return row, [Failure("cpu", isa, "(all)", "subprocess", "-",
                             "the check at this ISA did not run: " + why.strip()[-400:])]
    return Row(**result["row"]), [Failure(**f) for f in result["failures"]]


def _numba_kernels() -> list:
    """The numba backend's kernels (numba dispatchers), to read their cache statistics."""
    import importlib
    import pkgutil

    import fastnn.backends.numba as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found += [obj for obj in vars(module).values()
                  if hasattr(obj, "stats") and hasattr(obj, "py_func")]
    return found


def _numba_cold() -> Optional[str]:
    """Where numba caches fastnn's kernels, when that folder holds none of them yet (this
    run compiles them), else None."""
    try:
        folders = {kernel.stats.cache_path for kernel in _numba_kernels()}
    except Exception:  # noqa: BLE001 - another numba: no prediction, the count still comes
        return None
    for folder in sorted(f for f in folders if f):
        if not os.path.isdir(folder) or not any(n.endswith(".nbi") for n in os.listdir(folder)):
            return folder
    return None


def _numba_compiled() -> int:
    """How many numba kernel signatures this process compiled (not loaded from the cache)."""
    try:
        return sum(sum(kernel.stats.cache_misses.values()) for kernel in _numba_kernels())
    except Exception:  # noqa: BLE001
        return 0


# --------------------------------------------------------------------------- run

def run(backends: Optional[list[str]] = None, *, isa: bool = True, training: bool = True,
        out: Any = "stdout") -> Report:
    """Run the self-test; print the table and the verdict to ``out`` (a text file; default
    ``sys.stdout``; None: print nothing).

    ``backends``: the backends to check (default: every available one; the reference is
    the oracle: only its training is checked). ``isa``: also check the cpu backend at every
    lower kernel ISA this CPU runs (one subprocess each). ``training``: the small training
    run on each backend. Returns a :class:`Report`; ``report.ok`` is the verdict. Raises
    ValueError for a backend that is not available.

    Example
    -------
    >>> report = run(["reference"], isa=False)  # doctest: +ELLIPSIS
    fastnn ... selftest: backends reference; ...
    ...
    training a small convnet for 4 epochs: reference ok
    verdict: OK - 0 checks against the reference passed, ... computes correctly on this machine
    >>> report.ok, report.training
    (True, {'reference': 'ok'})
    """
    from fastnn import __version__, _threads
    from fastnn import backends as registry

    if out == "stdout":
        out = sys.stdout  # the one current now (tests capture it)

    def say(text: str = "") -> None:
        if out is not None:
            print(text, file=out, flush=True)

    available = registry.available()
    names = list(available) if backends is None else list(backends)
    for name in names:
        if name not in available:
            why = registry.unavailable().get(name)
            raise ValueError(f"selftest: backend {name!r} is not available"
                             + (f" ({why})" if why else "")
                             + f"; available: {', '.join(available)}")
    start = time.perf_counter()
    report = Report()
    say(f"fastnn {__version__} selftest: backends {', '.join(names)}; kernel ISA "
        f"{_selected_isa() or 'none (no native extension)'}; "
        f"{_threads.get_num_threads()} threads")
    say("each op the backend implements, on a few shapes, float32 and float64, NHWC and "
        "NCHW, forward and backward, against the reference backend")
    header = f"{'backend':<10} {'kernel ISA':<11} {'ops':>4} {'checks':>7} {'failed':>7} " \
             f"{'seconds':>8}"
    table: list[str] = []
    for name in names:
        if name == "reference":
            continue
        if name == "numba":
            folder = _numba_cold()
            if folder is not None:
                say(f"numba: compiling its kernels for this CPU (the first run only: numba "
                    f"caches them in {folder}); this takes a few minutes...")
        row, failures = _check_backend(name, _selected_isa() if name == "cpu" else None)
        if name == "numba":
            compiled = _numba_compiled()
            if compiled:
                row.note = (f"compiled {compiled} kernel{'s' * (compiled != 1)}, cached for "
                            "the next run")
        report.rows.append(row)
        report.failures += failures
        if name == "cpu" and isa:
            for level in reversed(_lower_isas()):
                row, failures = _check_cpu_at(level)
                report.rows.append(row)
                report.failures += failures
    if report.rows:
        say(header)
        for row in report.rows:
            line = (f"{row.backend:<10} {row.isa or '-':<11} {row.ops:>4} {row.checks:>7} "
                    f"{row.failed:>7} {row.seconds:>8.1f}")
            say(line + (f"  ({row.note})" if row.note else ""))
            table.append(line)
    else:
        say("(no backend besides the reference to compare)")
    for failure in report.failures:
        say(f"FAILED {failure}")
    if training:
        for name in names:
            report.training[name] = _train(name)
        say("training a small convnet for 4 epochs: " + ", ".join(
            f"{name} {'ok' if why == 'ok' else 'FAILED'}" for name, why in
            report.training.items()))
        for name, why in report.training.items():
            if why != "ok":
                say(f"FAILED {name}: training: {why}")
    report.seconds = time.perf_counter() - start
    checks = sum(row.checks for row in report.rows)
    if report.ok:
        say(f"verdict: OK - {checks} checks against the reference passed"
            + (", and every backend trained" if training else "")
            + f" ({report.seconds:.0f} s); this install computes correctly on this machine")
    else:
        failed = len(report.failures) + sum(v != "ok" for v in report.training.values())
        first = report.failures[0] if report.failures else None
        what = (f"{first.op} on {first.backend}" if first else
                "training on " + ", ".join(n for n, v in report.training.items() if v != "ok"))
        say(f"verdict: FAILED - {failed} check{'s' * (failed != 1)} failed (first: {what}); "
            "this install does NOT compute correctly on this machine: use the reference "
            "backend (--backend reference) and report the lines above")
    return report


if __name__ == "__main__":  # python -m fastnn.selftest
    raise SystemExit(0 if run().ok else 1)
