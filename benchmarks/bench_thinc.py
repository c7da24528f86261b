"""Thinc models on NumpyOps against FastnnOps (``fastnn.thinc``), and a per-op table.

``python benchmarks/bench_thinc.py`` prints Markdown tables:

* training and inference examples/s of Thinc's MNIST MLP (Thinc's example: ``Relu(512,
  dropout=0.2) >> Relu(512, dropout=0.2) >> Softmax()``, ``Adam(0.001)``, batches of
  128; here on the bundled digits, flattened) under NumpyOps with Thinc's Adam, FastnnOps
  with Thinc's Adam, and FastnnOps with :func:`fastnn.thinc.Adam`;
* the same for a spaCy-shaped tagger (spaCy's default CNN ``tok2vec``: ``HashEmbed(96)``,
  a ``Maxout(96, 3 pieces, LayerNorm)`` mix and four ``residual(expand_window(1) >>
  Maxout)`` blocks, then ``Softmax(50)``, on batches of 32 sentences of 10-30 tokens);
* each accelerated Thinc method, NumpyOps against FastnnOps, at the MLP's shapes and on
  4-element arrays (per-call overhead).

Every variant runs in this process with fastnn, BLAS (threadpoolctl) and torch pinned to
``--threads`` (default 2); Thinc's BLIS is single-threaded. The variants take turns, round
by round (the order rotating, a pause before each turn), and the tables give the median
over rounds and the median of the per-round ratios. ``--clock cpu --threads 1`` times the
process's CPU time instead, for a machine other jobs keep busy. For the NumpyOps baseline
on OpenBLAS run it with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (``env -u``);
the header says which BLAS kernel threadpoolctl reports.

Under pytest (``benchmarks/`` is part of the suite) ``test_smoke`` runs each variant and
case once, untimed, and checks that both ops compute the same MLP.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

try:
    import thinc.api as thinc_api
except ImportError:  # the pytest smoke test says so and skips
    thinc_api = None

WIDTH, TAGS = 96, 50


def _mnist(batch: int, count: int = 8):
    from fastnn.data import load_mnist

    (x, y), _ = load_mnist()
    X = x.reshape(len(x), -1).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[y]
    return [(X[i * batch:(i + 1) * batch], Y[i * batch:(i + 1) * batch]) for i in range(count)]


def mnist_mlp(ops: str):
    """Thinc's MNIST MLP on ``ops`` ("numpy" or "fastnn"), initialised from seed 0."""
    thinc_api.fix_random_seed(0)
    with thinc_api.use_ops(ops):
        model = thinc_api.chain(thinc_api.Relu(nO=512, dropout=0.2),
                                thinc_api.Relu(nO=512, dropout=0.2), thinc_api.Softmax())
    X, Y = _mnist(8, 1)[0]
    return model.initialize(X=X, Y=Y)


def _sentences(batch: int, count: int = 4):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        lengths = rng.integers(10, 31, batch)
        ids = [rng.integers(0, 2**63, (n, 1), dtype=np.uint64) for n in lengths]
        tags = [np.eye(TAGS, dtype=np.float32)[rng.integers(0, TAGS, n)] for n in lengths]
        out.append((ids, tags))
    return out


def spacy_tagger(ops: str):
    """A tagger on spaCy's default CNN tok2vec shape, on ``ops``, initialised from seed 0."""
    t = thinc_api
    t.fix_random_seed(0)
    with t.use_ops(ops):
        block = t.residual(t.chain(t.expand_window(1), t.Maxout(WIDTH, WIDTH * 3, nP=3,
                                                                normalize=True)))
        model = t.with_array(t.chain(t.HashEmbed(WIDTH, 5000, column=0),
                                     t.Maxout(WIDTH, WIDTH, nP=3, normalize=True),
                                     t.clone(block, 4), t.Softmax(TAGS)))
    ids, tags = _sentences(2, 1)[0]
    return model.initialize(X=ids, Y=tags)


def _optimizer(kind: str):
    if kind == "fastnn":
        from fastnn.thinc import Adam
        return Adam(0.001)
    return thinc_api.Adam(0.001)


def _train_fn(model, batches, optimizer, ragged=False):
    state = {"i": 0}

    def run():
        i = state["i"] = (state["i"] + 1) % len(batches)
        X, Y = batches[i]
        Yh, backprop = model.begin_update(X)
        backprop([a - b for a, b in zip(Yh, Y)] if ragged else Yh - Y)
        model.finish_update(optimizer)
    return run


def _infer_fn(model, batches):
    state = {"i": 0}

    def run():
        i = state["i"] = (state["i"] + 1) % len(batches)
        model.predict(batches[i][0])
    return run


VARIANTS = [("numpy", "thinc"), ("fastnn", "thinc"), ("fastnn", "fastnn")]


def model_cases(batch_mlp: int = 128, batch_tagger: int = 32):
    """(title, examples per call, {variant: fn}) for both models, training and inference."""
    mlp_batches, sentences = _mnist(batch_mlp), _sentences(batch_tagger)
    tokens = statistics.mean(sum(len(s) for s in ids) for ids, _ in sentences)
    cases = []
    for name, make, batches, per_call, ragged in (
            ("Thinc MNIST MLP", mnist_mlp, mlp_batches, batch_mlp, False),
            ("spaCy-shaped tagger", spacy_tagger, sentences, tokens, True)):
        cases.append((f"{name}, training", per_call, {
            f"{ops}+{opt}": _train_fn(make(ops), batches, _optimizer(opt), ragged)
            for ops, opt in VARIANTS}))
        cases.append((f"{name}, inference", per_call, {
            ops: _infer_fn(make(ops), batches) for ops in ("numpy", "fastnn")}))
    return cases


# --------------------------------------------------------------------------- per-op cases

def op_cases(batch: int = 128):
    """(name, NumpyOps call, FastnnOps call): each accelerated method at the MLP's shapes,
    and on 4-element arrays."""
    from fastnn.thinc import Adam, FastnnOps

    numpy_ops, fastnn_ops = thinc_api.NumpyOps(), FastnnOps()
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    X, W, b = rand(batch, 784), rand(512, 784), rand(512)
    H, dH = rand(batch, 512), rand(batch, 512)
    L, dL = rand(batch, 10), rand(batch, 10)
    x4, d4, row4 = rand(4), rand(4), rand(1, 4)
    a2, w2, b2 = rand(2, 2), rand(2, 2), rand(2)
    params = [rand(512 * 784) * 0.01 for _ in range(4)]
    params[3] = np.abs(params[3])
    thinc_opt, fastnn_opt = thinc_api.Adam(0.001), Adam(0.001)
    weights, grads = rand(512, 784), rand(512, 784)
    cases = []

    def case(name, fn):
        cases.append((name, lambda: fn(numpy_ops), lambda: fn(fastnn_ops)))

    case(f"gemm {batch}x784 @ (512x784).T", lambda o: o.gemm(X, W, trans2=True))
    case(f"gemm (dW) ({batch}x512).T @ {batch}x784", lambda o: o.gemm(H, X, trans1=True))
    case(f"affine {batch}x784 -> 512", lambda o: o.affine(X, W, b))
    case(f"relu {batch}x512", lambda o: o.relu(H))
    case(f"backprop_relu {batch}x512", lambda o: o.backprop_relu(dH, H))
    case(f"sigmoid {batch}x512", lambda o: o.sigmoid(H))
    case(f"softmax {batch}x10", lambda o: o.softmax(L))
    case(f"backprop_softmax {batch}x10", lambda o: o.backprop_softmax(L, dL))
    case(f"get_dropout_mask {batch}x512", lambda o: o.get_dropout_mask((batch, 512), 0.2))
    case("adam 401,408 params", lambda o: o.adam(*params, 0.9, 0.999, 1e-8, 1e-9))
    cases.append(("optimizer step 512x784 (Thinc Adam / fastnn Adam)",
                  lambda: thinc_opt((0, "W"), weights, grads),
                  lambda: fastnn_opt((0, "W"), weights, grads)))
    case("relu 4", lambda o: o.relu(x4))
    case("backprop_relu 4", lambda o: o.backprop_relu(d4, x4))
    case("sigmoid 4", lambda o: o.sigmoid(x4))
    case("softmax 1x4", lambda o: o.softmax(row4))
    case("gemm 2x2", lambda o: o.gemm(a2, w2, trans2=True))
    case("affine 2x2", lambda o: o.affine(a2, w2, b2))
    return cases


# --------------------------------------------------------------------------- report

def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine(threads: int) -> str:
    from threadpoolctl import threadpool_info

    import fastnn
    from fastnn.bench.machine import cpu_model

    model = cpu_model()
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
            f"{i.get('num_threads')} threads)" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
           if k in os.environ] or ["OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset"]
    return (f"{model}; {threads} threads (fastnn {fastnn.get_num_threads()}); fastnn "
            f"{fastnn.__version__}, Thinc {_version('thinc')}, blis {_version('blis')}, NumPy "
            f"{np.__version__}, Python {platform.python_version()}; BLAS: {', '.join(blas)}; "
            f"{', '.join(env)}")


def main(argv=None) -> None:
    from fastnn.bench.timing import median_ratio, pin_threads, time_rounds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per turn")
    parser.add_argument("--no-ops", action="store_true", help="skip the per-op table")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    pin_threads(args.threads)
    print(machine(args.threads) + f"; {args.clock} clock, {args.rounds} rounds")
    print()
    print("| case | NumpyOps + Thinc Adam | FastnnOps + Thinc Adam | FastnnOps + fastnn Adam "
          "| FastnnOps / NumpyOps (median of rounds) |")
    print("|---|---|---|---|---|")
    for title, per_call, fns in model_cases():
        t = time_rounds(fns, args.rounds, args.seconds, clock=clock)
        rate = {k: per_call / statistics.median(v) for k, v in t.items()}
        names = list(fns)
        cells = [f"{rate[n]:,.0f}/s" for n in names]
        if len(cells) == 2:  # inference: no optimizer
            cells = [cells[0], "", cells[1]]
        ratio = median_ratio(t[names[0]], t[names[-1]])
        print(f"| {title} | " + " | ".join(cells) + f" | **{ratio:.2f}x** |", flush=True)
    if args.no_ops:
        return
    print()
    print("Per call, float32 (median of rounds):")
    print()
    print("| Thinc method | NumpyOps | FastnnOps | speed-up |")
    print("|---|---|---|---|")
    for name, numpy_fn, fastnn_fn in op_cases():
        t = time_rounds({"numpy": numpy_fn, "fastnn": fastnn_fn}, args.rounds,
                        args.seconds / 4, settle=0.1, clock=clock)
        med = {k: statistics.median(v) * 1e6 for k, v in t.items()}
        unit = (lambda us: f"{us:,.2f} us") if med["numpy"] < 10 else (lambda us: f"{us:,.0f} us")
        print(f"| {name} | {unit(med['numpy'])} | {unit(med['fastnn'])} | "
              f"**{median_ratio(t['numpy'], t['fastnn']):.2f}x** |", flush=True)


# --------------------------------------------------------------------------- pytest smoke

def test_smoke():
    import pytest

    if thinc_api is None:
        pytest.skip("Thinc is not installed: fastnn.thinc needs it")
    X = _mnist(16, 1)[0][0]
    np.testing.assert_allclose(mnist_mlp("fastnn").predict(X), mnist_mlp("numpy").predict(X),
                               rtol=1e-4, atol=1e-6)
    for _, _, fns in model_cases(batch_mlp=8, batch_tagger=2):
        for fn in fns.values():
            fn()
    for _, numpy_fn, fastnn_fn in op_cases(batch=4):
        numpy_fn()
        fastnn_fn()


if __name__ == "__main__":
    main()
