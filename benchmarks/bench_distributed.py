"""Data-parallel training on one machine: 1 process x T threads against N ranks x T/N
threads, the same global batch, and what the gradient allreduce costs per step.

Run it both ways and compare (BENCHMARKS.md, "Distributed"):

    python benchmarks/bench_distributed.py --threads 2 --global-batch 128
    mpiexec -n 2 python benchmarks/bench_distributed.py --threads 1 --global-batch 128

Each run trains the seed network on the bundled digits for ``--steps`` timed steps after
``--warmup`` (the same first samples each time), in ``--rounds`` rounds, and prints the
median and best images/s of the rounds, the step time and, under MPI, the time spent in
``Communicator.allreduce_gradients`` per step (timed on rank 0, reported as median over the
steps, with the bytes reduced). ``--json FILE`` appends the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import fastnn
from fastnn import data, distributed, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads per process")
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    comm = distributed.init(threads=args.threads) if distributed.launched_by_mpi() > 1 else None
    fastnn.set_num_threads(args.threads)
    ranks = 1 if comm is None else comm.size
    if args.global_batch % ranks:
        raise SystemExit(f"--global-batch {args.global_batch} is not a multiple of {ranks} ranks")
    bs = args.global_batch // ranks
    (x, y), _ = data.load_mnist()
    model = models.seed_convnet(seed=0)
    learner = models.seed_learner(model)
    learner.distributed = comm
    if comm is not None:
        learner._rng = np.random.default_rng(0)
        learner._join(comm, resumed=False)

    reduce_times: list[float] = []
    if comm is not None:
        inner = comm.allreduce_gradients

        def timed(*a, **k):
            start = time.perf_counter()
            result = inner(*a, **k)
            reduce_times.append(time.perf_counter() - start)
            return result

        comm.allreduce_gradients = timed

    def step(i: int) -> None:
        start = (i * args.global_batch) % (len(x) - args.global_batch)
        first = start + (0 if comm is None else comm.rank * bs)
        xb, yb = x[first:first + bs], y[first:first + bs]
        if comm is None:
            learner._step(xb, yb)
        else:
            learner._distributed_step(xb, yb, 1.0 / ranks, False)

    model.train()
    rates = []
    for _ in range(args.rounds):
        for i in range(args.warmup):
            step(i)
        if comm is not None:
            comm.barrier()
        reduce_times.clear()
        begin = time.perf_counter()
        for i in range(args.steps):
            step(i)
        seconds = time.perf_counter() - begin
        if comm is not None:
            seconds = comm.max(seconds)
        rates.append(args.steps * args.global_batch / seconds)
    if comm is not None and not comm.is_root:
        return
    gradient_bytes = sum(p.gradient.nbytes for p in model.parameters)
    result = {"ranks": ranks, "threads_per_rank": args.threads, "global_batch": args.global_batch,
              "images_per_s_median": statistics.median(rates), "images_per_s_best": max(rates),
              "step_ms_median": 1e3 * args.global_batch / statistics.median(rates),
              "gradient_bytes": gradient_bytes}
    if reduce_times:
        result["allreduce_ms_median"] = 1e3 * statistics.median(reduce_times)
    line = (f"{ranks} rank(s) x {args.threads} thread(s), global batch {args.global_batch}: "
            f"{result['images_per_s_median']:,.0f} images/s median of {args.rounds} rounds "
            f"(best {result['images_per_s_best']:,.0f}), step {result['step_ms_median']:.2f} ms")
    if reduce_times:
        line += (f", allreduce of {gradient_bytes / 1e6:.2f} MB {result['allreduce_ms_median']:.3f}"
                 " ms per step")
    print(line, flush=True)
    if args.json:
        with open(args.json, "a") as file:
            file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
