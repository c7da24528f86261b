"""The cases of ``fastnn bench`` under pytest-benchmark: one benchmark per (case, impl).

Run with ``pytest benchmarks --benchmark-enable --benchmark-group-by=param:case``; plain
``pytest`` runs each once, untimed, as a smoke test.
"""

from __future__ import annotations

import pytest

from fastnn import bench

PARAMS = [pytest.param(case, impl, id=f"{case.name}-{impl}")
          for case in bench.all_cases() for impl in case.impls]


@pytest.mark.parametrize("case, impl", PARAMS)
def test_op(benchmark, case, impl):
    fn = case.impls[impl]()
    benchmark.group = case.name
    benchmark.extra_info.update(case=case.name, impl=impl)
    benchmark(fn)
