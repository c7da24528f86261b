"""Time per op of one training step (or, with ``--inference``, one evaluation-mode forward
pass) of the seed convnet (or, with ``--network``, LeNet-5 or the CIFAR-shaped network) on a
fastnn backend.

Every method of the backend object, and every native entry point :mod:`fastnn.ops` calls
directly, is wrapped with a timer (so each op is timed where it runs, whichever
``fastnn.ops`` entry or helper called it); what is left of the step is the
Python around the kernels (op validation, layer bookkeeping, the loss). ``gemm`` calls of
one row (``axpy`` and ``sum_of_squares`` in :mod:`fastnn.nn._arrays`: gradient accumulation,
L2 terms) are reported apart from the dense layers' products.

Usage::

    python benchmarks/profile_training.py --backend cpu --batch 64 --threads 2
    python benchmarks/profile_training.py --inference --batch 256 --threads 1 --clock cpu
    python benchmarks/profile_training.py --network lenet5 --batch 64 --threads 1 --clock cpu

``--clock cpu`` times with the process's CPU time instead of the wall clock: with
``--threads 1`` that is each op's own compute, unaffected by other jobs on a busy machine
(with more threads it also counts the OpenMP/BLAS workers' spinning, so use it with 1).
"""

from __future__ import annotations

import argparse
import collections
import time

from fastnn import backends, bench, models
from fastnn.bench.cases import NETWORKS, _network_batches, _seed_batches


def _label(name, args):
    if name.startswith("conv2d"):  # which layer: its (c_in -> c_out)
        w_shape = args[2] if name == "conv2d_backward_weights" else args[1].shape
        return f"{name} ({w_shape[2]}->{w_shape[3]})"
    if name == "gemm":
        a = args[0]
        return "gemm (axpy / sum of squares)" if a.shape[0] == 1 else "gemm (dense backward)"
    return name


def profile(backend: str = "cpu", batch: int = 64, steps: int = 20, warmup: int = 3,
            clock=time.perf_counter, training: bool = True, network: str = "seed"):
    """``(rows, mean step seconds, best step seconds)``; rows of ``(op, calls per step,
    seconds per step)``, the last one the time outside every op."""
    target = backends.get(backend)
    totals: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.defaultdict(int)
    recording = [False]
    depth = [0]
    wrapped = []
    def timer(name, method):
        def timed(*args, **kwargs):
            # Only the outermost op is timed: a backend method composed of others (the
            # fused conv2d_relu_max_pool2d where it has no kernel) counts once, as itself.
            if not recording[0] or depth[0]:
                return method(*args, **kwargs)
            depth[0] += 1
            start = clock()
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
                label = _label(name, args)
                totals[label] += clock() - start
                calls[label] += 1
        return timed

    for name in dir(type(target)):
        method = getattr(target, name)
        if name.startswith("_") or not callable(method) or name in ("accepts",):
            continue
        setattr(target, name, timer(name, method))
        wrapped.append(name)
    # fastnn.ops calls these directly (gemm and linear with out=), bypassing the methods.
    natives = target.native_entries
    target.native_entries = {name: timer(name, fn) for name, fn in natives.items()}
    try:
        if network == "seed":
            model, lr = models.seed_convnet(seed=0), models.SEED_LR
            images, labels = _seed_batches(batch)
        else:
            builder, input_shape, _, _ = NETWORKS[network]
            model, lr = getattr(models, builder)(seed=0), models.NETWORK_LR
            images, labels = _network_batches(input_shape, batch)
        if training:
            step = models.seed_learner(model.train(), lr=lr).fit_batch
        else:
            model.eval()

            def step(x, _labels):
                return model(x)
        with backends.use(backend):
            for i in range(warmup):
                step(images[i % len(images)], labels[i % len(labels)])
            best, total = float("inf"), 0.0
            recording[0] = True
            for i in range(steps):
                start = clock()
                step(images[i % len(images)], labels[i % len(labels)])
                elapsed = clock() - start
                best, total = min(best, elapsed), total + elapsed
            recording[0] = False
            mean = total / steps  # the same steps as the op totals (timer overhead: ~1 us/op)
    finally:
        for name in wrapped:
            delattr(target, name)
        target.native_entries = natives
    rows = sorted(((op, calls[op] / steps, t / steps) for op, t in totals.items()),
                  key=lambda row: -row[2])
    kernels = sum(row[2] for row in rows)
    rows.append(("(Python outside the kernels)", 0, max(mean - kernels, 0.0)))
    return rows, mean, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--network", choices=("seed", *NETWORKS), default="seed")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--inference", action="store_true",
                        help="profile the evaluation-mode forward pass instead of a training step")
    args = parser.parse_args()
    bench.pin_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows, mean, best = profile(args.backend, args.batch, args.steps, clock=clock,
                               training=not args.inference, network=args.network)
    what = "one forward pass (eval)" if args.inference else "one training step"
    print(f"{args.network} network, {what}, backend={args.backend} batch={args.batch} "
          f"threads={args.threads} clock={args.clock}: mean {mean * 1e3:.2f} ms "
          f"({args.batch / mean:,.0f} img/s), best {best * 1e3:.2f} ms")
    print(f"{'op':<34}{'calls':>6}{'ms/step':>10}{'%':>7}")
    for op, count, seconds in rows:
        print(f"{op:<34}{count:>6.0f}{seconds * 1e3:>10.3f}{seconds / mean:>7.1%}")


if __name__ == "__main__":
    main()
