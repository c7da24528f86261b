"""`fastnn selftest` passes on this install, and fails, naming the op, backend and shape,
when a backend computes wrongly."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fastnn import backends, ops, selftest
from fastnn.cli import main as cli

ACCELERATED = [name for name in backends.available() if name != "reference"]


def test_selftest_passes_here(capsys):
    assert cli(["selftest"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("verdict: OK - ") and lines[-1].endswith(
        "this install computes correctly on this machine")
    for name in ACCELERATED:
        assert any(line.startswith(name + " ") for line in lines), (name, out)
    assert "training a small convnet for 4 epochs: reference ok" in out
    assert "FAILED" not in out


def test_every_op_of_the_contract_has_a_case():
    assert {c.op for c in selftest.cases()} == set(ops.__all__)


@pytest.mark.parametrize("name", ACCELERATED)
def test_a_wrong_op_fails_the_selftest_and_is_named(monkeypatch, name):
    backend_type = type(backends.get(name))
    original = backend_type.tanh

    def wrong(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        return result * 1.001  # off by 0.1%: beyond float32's tolerance

    monkeypatch.setattr(backend_type, "tanh", wrong)
    out = io.StringIO()
    report = selftest.run([name], isa=False, training=False, out=out)
    assert not report.ok
    assert {f.op for f in report.failures} == {"tanh"}
    assert {f.backend for f in report.failures} == {name}
    text = out.getvalue()
    where = f"{name} (kernel ISA {selftest._selected_isa()})" if name == "cpu" else name
    assert f"FAILED {where}: tanh [7x13, float32]: " in text
    assert "values outside the tolerance" in text
    assert text.strip().splitlines()[-1].startswith(
        f"verdict: FAILED - {len(report.failures)} checks failed (first: tanh on {name}); "
        "this install does NOT compute correctly")


def test_the_command_exits_1_on_a_failure(monkeypatch, capsys):
    backend_type = type(backends.get("cpu"))

    def crash(self, *args, **kwargs):
        raise RuntimeError("illegal instruction (simulated)")

    monkeypatch.setattr(backend_type, "max_pool2d", crash)
    assert cli(["selftest", "--backend", "cpu", "--no-isa"]) == 1
    out = capsys.readouterr().out
    assert (f"FAILED cpu (kernel ISA {selftest._selected_isa()}): max_pool2d [2x8x8x16 2/2 "
            "pad 0 NHWC, float32]: raised RuntimeError: illegal instruction (simulated)") in out
    assert "verdict: FAILED" in out


def test_training_that_does_not_learn_fails(monkeypatch):
    backend_type = type(backends.get("cpu"))
    monkeypatch.setattr(backend_type, "adam_update", lambda self, *a, **k: None)
    out = io.StringIO()
    report = selftest.run(["cpu"], isa=False, out=out)
    assert not report.ok and report.training["cpu"].startswith("did not learn")
    assert "FAILED cpu: training: did not learn" in out.getvalue()


def test_the_lower_isas_run_in_subprocesses():
    lower = selftest._lower_isas()
    if not lower:
        pytest.skip("this CPU runs only the portable kernels")
    report = selftest.run(["cpu"], training=False, out=None)
    assert report.ok
    assert [row.isa for row in report.rows][1:] == list(reversed(lower))
    assert all(row.checks == report.rows[0].checks for row in report.rows)


def test_an_unavailable_backend_is_refused(capsys):
    with pytest.raises(ValueError, match="selftest: backend 'nope' is not available"):
        selftest.run(["nope"], out=None)
    assert cli(["selftest", "--backend", "nope"]) == 2
    assert "--backend nope: backend 'nope' is not available" in capsys.readouterr().err


def test_compare_names_the_worst_value():
    expected = np.array([1.0, 2.0, 3.0], np.float32)
    assert selftest._compare(expected.copy(), expected, np.float32) is None
    wrong = expected.copy()
    wrong[1] = 2.5
    assert "1 of 3 values outside the tolerance" in selftest._compare(wrong, expected,
                                                                      np.float32)
    assert "the worst at (1,)" in selftest._compare(wrong, expected, np.float32)
    nan = np.array([np.nan, 1.0])
    assert selftest._compare(nan.copy(), nan, np.float64) is None
