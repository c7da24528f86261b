"""Benchmark cases shared by ``fastnn bench`` and ``benchmarks/`` (pytest-benchmark).

A :class:`BenchCase` names one workload (an op at one shape) and, for each implementation
(``numpy``: the plain NumPy a user would write; ``fastnn-<backend>``; ``torch``), a
factory that prepares inputs and returns a zero-argument callable to time. Ratios are
always against ``numpy`` measured in the same run, with every library pinned to the same
thread count.

Example
-------
>>> [c.name for c in activation_cases(sizes=(10,))][:2]
['relu/10', 'relu_backward/10']
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import numpy as np

from fastnn import _compat, backends, ops

Factory = Callable[[], Callable[[], object]]


@dataclasses.dataclass
class BenchCase:
    name: str
    group: str
    impls: dict[str, Factory]
    bytes_moved: float = 0.0  # for memory-bound ops: GB/s against measured bandwidth
    flops: float = 0.0        # for compute-bound ops: GFLOP/s against measured peak


def _fastnn_impls(make: Callable[[str], Callable[[], object]]) -> dict[str, Factory]:
    """One ``fastnn-<backend>`` entry per available CPU-side backend (reference excluded:
    it is the plain NumPy row)."""
    impls = {}
    for name in backends.available():
        if name in ("reference", "cuda"):
            continue

        def factory(name=name):
            fn = make(name)

            def run():
                with backends.use(name):
                    return fn()
            run()  # warm up (numba compiles here, not in the timing)
            return run
        impls[f"fastnn-{name}"] = factory
    return impls


_NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu_backward": lambda dy, y: dy * (y > 0),
    "sigmoid_backward": lambda dy, y: dy * y * (1 - y),
    "tanh_backward": lambda dy, y: dy * (1 - y * y),
}


def activation_cases(sizes=(100_000, 1_000_000, 10_000_000), dtype=np.float32):
    """relu/sigmoid/tanh forward and backward at each size, out= preallocated for fastnn."""
    cases = []
    torch, _ = _compat.torch()
    for size in sizes:
        for name in ("relu", "sigmoid", "tanh"):
            for backward in (False, True):
                op = f"{name}_backward" if backward else name
                rng = np.random.default_rng(0)
                x = rng.standard_normal(size).astype(dtype)
                dy = rng.standard_normal(size).astype(dtype)
                y = _NUMPY_ACTIVATIONS[name](x).astype(dtype)
                args = (dy, y) if backward else (x,)
                out = np.empty(size, dtype)

                def make_fastnn(_backend, op=op, args=args, out=out):
                    fn = getattr(ops, op)
                    return lambda: fn(*args, out=out)

                impls: dict[str, Factory] = {
                    "numpy": lambda op=op, args=args: (
                        lambda: _NUMPY_ACTIVATIONS[op](*args)),
                }
                impls.update(_fastnn_impls(make_fastnn))
                if torch is not None:
                    impls["torch"] = _torch_activation(torch, name, backward, args)
                cases.append(BenchCase(
                    f"{op}/{size}", "activations", impls,
                    bytes_moved=x.itemsize * size * (3 if backward else 2)))
    return cases


def _torch_activation(torch, name, backward, args):
    def factory():
        tensors = [torch.from_numpy(a) for a in args]
        out = torch.empty_like(tensors[0])
        if not backward:
            x = tensors[0]
            if name == "relu":
                return lambda: torch.clamp_min(x, 0, out=out)
            fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]
            return lambda: fn(x, out=out)
        # What autograd runs for these: the fused *_backward kernels of ATen.
        dy, y = tensors
        if name == "relu":
            return lambda: torch.ops.aten.threshold_backward(dy, y, 0)
        if name == "sigmoid":
            return lambda: torch.ops.aten.sigmoid_backward(dy, y)
        return lambda: torch.ops.aten.tanh_backward(dy, y)
    return factory


def all_cases() -> list[BenchCase]:
    return activation_cases()


# ------------------------------------------------------------------ timing and machine

def time_callable(fn: Callable[[], object], *, min_time=0.2, repeats=5) -> float:
    """Best-of-``repeats`` seconds per call, each repeat looping for at least ``min_time / repeats``."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / repeats or loops >= 1 << 20:
            break
        loops *= 2
    best = elapsed / loops
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


def pin_threads(n: int):
    """Pin fastnn, BLAS/OpenMP (threadpoolctl) and torch to ``n`` threads."""
    import fastnn
    from threadpoolctl import threadpool_limits

    fastnn.set_num_threads(n)
    limits = threadpool_limits(limits=n)
    torch, _ = _compat.torch()
    if torch is not None:
        torch.set_num_threads(n)
    return limits


def measure_machine() -> dict:
    """Peak float32 FLOP/s (FMA probe) and triad memory bandwidth, with the current threads."""
    native, _ = _compat.native()
    result: dict[str, Optional[float]] = {"peak_gflops": None, "bandwidth_gbs": None}
    if native is not None:
        result["peak_gflops"] = native.measure_peak_flops(0.3) / 1e9 or None
        n = 1 << 25  # 3 x 128 MiB: far beyond the caches
        a, b, c = (np.ones(n, np.float32) for _ in range(3))
        result["bandwidth_gbs"] = native.measure_triad_bandwidth(a, b, c, 5) / 1e9
    return result
