"""fastnn.bench: what ``fastnn bench`` and ``benchmarks/`` measure with, apart from the core.

* :mod:`fastnn.bench.cases` - the :class:`BenchCase` workloads (activations, element-wise,
  pooling and LRN, convolutions, GEMM, the seed network's training and inference), each
  with its NumPy, fastnn and PyTorch implementations;
* :mod:`fastnn.bench.timing` - :func:`time_interleaved` (best of N, the implementations
  taking turns) and :func:`pin_threads`;
* :mod:`fastnn.bench.machine` - :func:`measure_machine` (peak FLOP/s, bandwidth) and
  :func:`bandwidth_roof`;
* :mod:`fastnn.bench.torch_models` - the seed network in PyTorch, for the comparisons.

Nothing here is imported by ``import fastnn``.
"""

from __future__ import annotations

from fastnn.bench.cases import (
    BenchCase,
    activation_cases,
    all_cases,
    conv_cases,
    elementwise_cases,
    gemm_cases,
    network_cases,
    network_flops_per_image,
    pool_lrn_cases,
    seed_flops_per_image,
    training_cases,
)
from fastnn.bench.machine import bandwidth_roof, cache_sizes, measure_machine
from fastnn.bench.timing import SETTLE_SECONDS, pin_threads, time_interleaved

__all__ = ["BenchCase", "all_cases", "activation_cases", "elementwise_cases",
           "pool_lrn_cases", "conv_cases", "gemm_cases", "training_cases",
           "network_cases", "network_flops_per_image",
           "seed_flops_per_image", "time_interleaved", "pin_threads", "SETTLE_SECONDS",
           "cache_sizes", "measure_machine", "bandwidth_roof"]
