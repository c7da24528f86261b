"""Timing: interleaved best-of-N measurement, and thread pinning for every library."""

from __future__ import annotations

import time
from typing import Callable

from fastnn import _compat


def _calibrate(fn: Callable[[], object], budget: float) -> int:
    """Calls per timed batch so that a batch lasts at least ``budget`` seconds."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= budget or loops >= 1 << 20:
            return loops
        loops *= 2


def _batch(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


# Seconds to wait when switching libraries: OpenBLAS's idle workers spin for about
# 2**28 cycles (~0.1 s) after each call, and meanwhile a 2-thread OpenMP kernel on a
# 2-core machine runs up to 5x slower (measured: a 512 GEMM after np.matmul, 5.5 ms
# against 1.2 ms; back to normal after 0.2 s).
SETTLE_SECONDS = 0.25


def time_interleaved(fns: dict[str, Callable[[], object]], *, min_time=0.2, repeats=5,
                     settle=SETTLE_SECONDS) -> dict[str, float]:
    """Best-of-``repeats`` seconds per call of each function, the repeats interleaved.

    On a shared machine speed drifts by tens of percent over seconds, so the
    implementations take turns, repeat by repeat (the order rotating), and each sees the
    same conditions. Each turn starts after ``settle`` seconds (the previous library's
    worker threads stop spinning) and one untimed call (this one's threads wake up).
    """
    names = list(fns)
    loops = {}
    for name in names:
        time.sleep(settle)
        loops[name] = _calibrate(fns[name], min_time / repeats)
    best = dict.fromkeys(names, float("inf"))
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(settle)
            fns[name]()
            best[name] = min(best[name], _batch(fns[name], loops[name]))
    return best


def timed_batch(fn: Callable[[], object], seconds: float, clock=time.perf_counter) -> float:
    """Seconds per call (of ``clock``) over calls of ``fn`` lasting about ``seconds``, after
    one untimed call."""
    fn()
    loops, start = 0, clock()
    while True:
        fn()
        loops += 1
        elapsed = clock() - start
        if elapsed >= seconds:
            return elapsed / loops


def time_rounds(fns: dict[str, Callable[[], object]], rounds: int, seconds: float, *,
                settle: float = SETTLE_SECONDS, clock=time.perf_counter) -> dict[str, list]:
    """Per function, its seconds per call in each of ``rounds`` rounds: the functions take
    turns (the order rotating, ``settle`` seconds before each turn), so that a median over
    rounds, and the median of per-round ratios (:func:`median_ratio`), compare them under
    the same conditions on a machine whose speed drifts."""
    names = list(fns)
    times: dict[str, list] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(settle)
            times[name].append(timed_batch(fns[name], seconds, clock))
    return times


def median_ratio(num: list, den: list) -> float:
    """The median over rounds of ``num[i] / den[i]``."""
    import statistics

    return statistics.median(a / b for a, b in zip(num, den))


def pin_threads(n: int):
    """Pin fastnn, BLAS/OpenMP (threadpoolctl) and torch to ``n`` threads, and JAX too when
    it is not imported yet (XLA reads its thread count from the environment at start-up;
    ONNX Runtime sessions take fastnn's count when the benchmark creates them); PyTorch
    also flushes subnormals (``torch.set_flush_denormal``), as fastnn's Learner does."""
    import os
    import sys

    from threadpoolctl import threadpool_limits

    import fastnn
    from fastnn.bench import peers

    if "jax" not in sys.modules:
        os.environ.update(peers.jax_threads_env(n))
    fastnn.set_num_threads(n)
    limits = threadpool_limits(limits=n)
    torch, _ = _compat.torch()
    if torch is not None:
        torch.set_num_threads(n)
        # Subnormals: training on random labels with weight decay shrinks the filters until
        # activations, gradients and Adam's moments turn subnormal, and PyTorch (unlike
        # fastnn's Learner) computes with them: its seed-network step went from 15 to 53 ms
        # after ~600 steps on a Sapphire Rapids-class host, the faster variants reaching
        # that point first. Flushed, as fastnn.nn and TensorFlow's executor run.
        torch.set_flush_denormal(True)
    return limits
