"""The sequence ops (maxout, seq2col, ragged reductions, gather_add) at spaCy-like sizes:
fastnn's cpu backend against its NumPy reference and against Thinc's ``NumpyOps``.

A batch of 2,000 tokens in documents of 1-60 tokens, widths of 96 and 300, maxout with 3
pieces, seq2col with one neighbour each side, a 5,000-row hash-embedding table with 4
uint32 keys per token. Each op runs through ``fastnn.ops`` (its checks included) under
``backends.use``; Thinc's ``NumpyOps`` method of the same meaning takes the same arrays.
All three run interleaved, best of ``--repeats`` rounds (``fastnn.bench.timing``), at each
``--threads`` count (fastnn's only; the reference and Thinc run these ops on one thread).

    python benchmarks/bench_seq_ops.py --threads 1 2 [--widths 96 300] [--markdown]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from fastnn import backends, ops
from fastnn.bench.timing import pin_threads, time_interleaved

TOKENS = 2000
PIECES = 3
NW = 1
TABLE_ROWS = 5000
KEYS = 4


def _lengths(rng, total):
    lengths = []
    while sum(lengths) < total:
        lengths.append(int(rng.integers(1, 61)))
    lengths[-1] -= sum(lengths) - total
    return np.array([n for n in lengths if n > 0], np.int32)


def cases(width, rng):
    """(name, fastnn call, Thinc call or None) at this width."""
    f32 = np.float32
    lengths = _lengths(rng, TOKENS)
    x3 = rng.standard_normal((TOKENS, width, PIECES)).astype(f32)
    x = rng.standard_normal((TOKENS, width)).astype(f32)
    with backends.use("reference"):
        _, which = ops.maxout(x3)
        _, max_which = ops.reduce_max(x, lengths)
    dy = rng.standard_normal((TOKENS, width)).astype(f32)
    dcols = rng.standard_normal((TOKENS, width * (2 * NW + 1))).astype(f32)
    dsum = rng.standard_normal((lengths.size, width)).astype(f32)
    table = rng.standard_normal((TABLE_ROWS, width)).astype(f32)
    keys = rng.integers(0, TABLE_ROWS, (TOKENS, KEYS)).astype(np.uint32)
    return [
        ("maxout", lambda: ops.maxout(x3), lambda t: t.maxout(x3)),
        ("maxout_backward", lambda: ops.maxout_backward(dy, which, PIECES),
         lambda t: t.backprop_maxout(dy, which, PIECES)),
        ("seq2col", lambda: ops.seq2col(x, nw=NW, lengths=lengths),
         lambda t: t.seq2col(x, NW, lengths=lengths)),
        ("seq2col_backward", lambda: ops.seq2col_backward(dcols, nw=NW, lengths=lengths),
         lambda t: t.backprop_seq2col(dcols, NW, lengths=lengths)),
        ("reduce_sum", lambda: ops.reduce_sum(x, lengths), lambda t: t.reduce_sum(x, lengths)),
        ("reduce_sum_backward", lambda: ops.reduce_sum_backward(dsum, lengths),
         lambda t: t.backprop_reduce_sum(dsum, lengths)),
        ("reduce_mean", lambda: ops.reduce_mean(x, lengths),
         lambda t: t.reduce_mean(x, lengths)),
        ("reduce_mean_backward", lambda: ops.reduce_mean_backward(dsum, lengths),
         lambda t: t.backprop_reduce_mean(dsum, lengths)),
        ("reduce_max", lambda: ops.reduce_max(x, lengths), lambda t: t.reduce_max(x, lengths)),
        ("reduce_max_backward", lambda: ops.reduce_max_backward(dsum, max_which, lengths),
         lambda t: t.backprop_reduce_max(dsum, max_which, lengths)),
        ("gather_add", lambda: ops.gather_add(table, keys), lambda t: t.gather_add(table, keys)),
    ]


def _on(backend, fn):
    def call():
        with backends.use(backend):
            return fn()
    return call


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--widths", type=int, nargs="+", default=[96, 300])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--ops", nargs="*", help="only these ops")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    try:
        from thinc.api import NumpyOps
        thinc = NumpyOps()
    except ImportError:
        thinc = None
        print("thinc is not installed: its column stays empty", file=sys.stderr)
    rows = []
    for width in args.widths:
        for name, fastnn_call, thinc_call in cases(width, np.random.default_rng(width)):
            if args.ops and name not in args.ops:
                continue
            for threads in args.threads:
                pin_threads(threads)
                fns = {"reference": _on("reference", fastnn_call), "cpu": _on("cpu", fastnn_call)}
                if thinc is not None:
                    fns["thinc"] = lambda thinc_call=thinc_call: thinc_call(thinc)
                best = time_interleaved(fns, min_time=args.min_time, repeats=args.repeats)
                rows.append((name, width, threads, best))
                print(f"{name:22s} O={width:<4d} {threads} thr  "
                      + "  ".join(f"{k} {v * 1e6:9.1f} us" for k, v in best.items()),
                      file=sys.stderr, flush=True)
    if args.markdown:
        print("| op | O | threads | fastnn cpu (µs) | reference (µs) | Thinc NumpyOps (µs) "
              "| vs reference | vs Thinc |")
        print("|---|---|---|---|---|---|---|---|")
        for name, width, threads, best in rows:
            cpu, ref, th = best["cpu"], best["reference"], best.get("thinc")
            print(f"| {name} | {width} | {threads} | {cpu * 1e6:.1f} | {ref * 1e6:.1f} | "
                  f"{'' if th is None else f'{th * 1e6:.1f}'} | {ref / cpu:.1f}x | "
                  f"{'' if th is None else f'{th / cpu:.2f}x'} |")
    return 0


def test_every_case_computes_what_the_reference_and_thinc_compute():
    """Each case once, untimed, at a small width: the cpu backend (where built) gives the
    reference's result, and Thinc's NumpyOps the same where thinc is installed."""
    try:
        from thinc.api import NumpyOps
        thinc = NumpyOps()
    except ImportError:
        thinc = None
    names = [n for n in ("cpu",) if n in backends.available()]
    for name, fastnn_call, thinc_call in cases(8, np.random.default_rng(0)):
        expected = _on("reference", fastnn_call)()
        results = [_on(n, fastnn_call)() for n in names]
        if thinc is not None:
            results.append(thinc_call(thinc))
        for result in results:
            for got, want in zip(result if isinstance(result, tuple) else (result,),
                                 expected if isinstance(expected, tuple) else (expected,)):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


if __name__ == "__main__":
    sys.exit(main())
