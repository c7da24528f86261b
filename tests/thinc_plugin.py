"""A pytest plugin that runs Thinc's own test files, as Thinc ships them, on FastnnOps.

``tests/test_thinc.py`` starts ``pytest -p thinc_plugin --pyargs thinc.tests...`` in a
subprocess (Thinc's conftest sets a hypothesis profile and its tests set Thinc's global
ops: neither should leak into fastnn's own run). The plugin

* puts FastnnOps among the backends under test: wherever a test is parametrized over a
  list holding a NumpyOps instance (Thinc's ``ALL_OPS``, ``XP_OPS``, ``CPU_OPS``, the lists
  its layer tests build) the list gains ``FastnnOps()`` (id ``fastnn``), and where it holds
  the NumpyOps class, the FastnnOps class (id ``FastnnOps``);
* with ``--fastnn-current-ops``, makes ``FastnnOps()`` Thinc's current ops for the whole
  run, so every model a test builds without naming its ops computes on fastnn;
* skips the tests of :data:`THINC_DEFECTS`, by name, each with its reason: failures caused
  by Thinc's test code itself, which fail the same way for NumpyOps;
* writes a summary to the JSON file ``--fastnn-report`` names: the outcome of each test,
  which of them ran on FastnnOps and, with ``--fastnn-current-ops``, how often each of FastnnOps's
  accelerated methods was called.
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import json

import numpy as np
import pytest
from _pytest.mark.structures import ParameterSet


def _float_of_one_element_array_fails() -> bool:
    try:
        float(np.zeros(1))
    except TypeError:
        return True
    return False


# Thinc test -> why it is skipped: a test function's name (all its parametrizations), or
# "name[glob]" for those whose parameter id matches the fnmatch glob. Each entry names a
# defect of Thinc's test code and the condition it shows under; none is a FastnnOps failure.
THINC_DEFECTS = {}
if _float_of_one_element_array_fails():
    THINC_DEFECTS["test_compare_activations_to_torch"] = (
        "Thinc's test calls float() on a 1-element array (float(dx_thinc)), which NumPy "
        f"{np.__version__} refuses (TypeError: only 0-dimensional arrays can be converted to "
        "Python scalars); it fails the same way for NumpyOps and Ops")


def pytest_addoption(parser):
    group = parser.getgroup("fastnn")
    group.addoption("--fastnn-current-ops", action="store_true",
                    help="make FastnnOps Thinc's current ops for the whole run")
    group.addoption("--fastnn-report", default=None, help="write a JSON summary here")


def pytest_configure(config):
    from thinc.api import set_current_ops

    from fastnn.thinc import FastnnOps

    config._fastnn_ops = FastnnOps()
    config._fastnn_lists = set()
    config._fastnn_outcomes = {}
    config._fastnn_items = set()
    config._fastnn_calls = collections.Counter()
    if config.getoption("--fastnn-current-ops"):
        set_current_ops(config._fastnn_ops)
        _count_calls(config._fastnn_calls)


def _count_calls(calls):
    """Count the calls of FastnnOps's accelerated methods (the report shows that the tests
    ran on them)."""
    from fastnn.thinc import ACCELERATED, FastnnOps

    for name in ACCELERATED:
        method = getattr(FastnnOps, name)

        @functools.wraps(method)
        def counted(*args, _method=method, _name=name, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)
        setattr(FastnnOps, name, counted)


def _add_fastnn(config, values):
    """Append FastnnOps to a parametrize list that tests NumpyOps (once per list)."""
    from thinc.api import NumpyOps

    from fastnn.thinc import FastnnOps

    if not isinstance(values, list) or id(values) in config._fastnn_lists:
        return
    plain = [v.values[0] if isinstance(v, ParameterSet) and v.values else v for v in values]
    if any(type(v) is NumpyOps for v in plain):
        values.append(pytest.param(config._fastnn_ops, id="fastnn"))
    elif any(v is NumpyOps for v in plain):
        values.append(pytest.param(FastnnOps, id="FastnnOps"))
    else:
        return
    config._fastnn_lists.add(id(values))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    for mark in getattr(obj, "pytestmark", []) if callable(obj) else []:
        if mark.name == "parametrize" and len(mark.args) >= 2:
            _add_fastnn(collector.config, mark.args[1])


def _named(item, pattern: str) -> bool:
    name, _, params = pattern.partition("[")
    if getattr(item, "originalname", item.name) != name:
        return False
    callspec = getattr(item, "callspec", None)
    return not params or (callspec is not None and fnmatch.fnmatchcase(callspec.id,
                                                                        params[:-1]))


def pytest_collection_modifyitems(config, items):
    for item in items:
        for pattern, reason in THINC_DEFECTS.items():
            if _named(item, pattern):
                item.add_marker(pytest.mark.skip(reason=f"Thinc defect: {reason}"))


def _on_fastnn(item) -> bool:
    if item.config.getoption("--fastnn-current-ops"):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(
        s in ("fastnn", "FastnnOps") for s in callspec.id.split("-"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    outcomes = item.config._fastnn_outcomes
    if _on_fastnn(item):
        item.config._fastnn_items.add(report.nodeid)
    if report.when == "call" or report.outcome != "passed":
        if outcomes.get(report.nodeid) in (None, "passed"):
            outcomes[report.nodeid] = report.outcome
        if report.skipped and isinstance(report.longrepr, tuple):
            outcomes[report.nodeid] = "skipped: " + str(report.longrepr[2])


def pytest_sessionfinish(session):
    path = session.config.getoption("--fastnn-report")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"outcomes": session.config._fastnn_outcomes,
                   "on_fastnn": sorted(session.config._fastnn_items),
                   "calls": dict(session.config._fastnn_calls)}, f, indent=1, sort_keys=True)
