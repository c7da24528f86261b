"""fastnn.thinc: FastnnOps and the fastnn optimizers, checked by Thinc's own test suites
(run as Thinc ships them, through ``thinc_plugin.py``) and against NumpyOps directly.

Skipped as a whole where Thinc is not installed (``pip install 'fastnn[thinc]'``; the
test extra brings it).
"""

from __future__ import annotations

import doctest
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

thinc_api = pytest.importorskip("thinc.api", reason="Thinc is not installed "
                                                    "(pip install 'fastnn[thinc]')")

import fastnn.thinc  # noqa: E402
from fastnn.thinc import ACCELERATED, SGD, Adam, FastnnOps, FastnnOptimizer  # noqa: E402
from fastnn.thinc import _ops as thinc_ops  # noqa: E402

NumpyOps, Ops = thinc_api.NumpyOps, thinc_api.Ops
HERE = pathlib.Path(__file__).resolve().parent
README = HERE.parent / "README.md"


# ---------------------------------------------------------------------- Thinc's suites

def _run_thinc_suite(tmp_path, target: str, *options: str) -> dict:
    """Thinc's tests under ``target`` (a module or package of ``thinc.tests``), run as
    shipped with thinc_plugin.py loaded, in a subprocess from an empty folder (no fastnn
    pytest settings, Thinc's hypothesis profile and global ops kept out of this run)."""
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "thinc_plugin", "-p", "no:cacheprovider",
         "--pyargs", target, "-q", "-rfEs", f"--fastnn-report={report}", *options],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    summary = json.loads(report.read_text())
    summary["tail"] = tail
    return summary


def _skipped_for_numpy_ops_too(summary: dict) -> None:
    """Every FastnnOps test that did not run was skipped for the other backends as well,
    for the same reason: a THINC_DEFECTS entry or one of Thinc's own skips (no GPU,
    optional libraries), never one of FastnnOps's own."""
    outcomes, ours = summary["outcomes"], set(summary["on_fastnn"])
    others = {(k.split("[")[0], v) for k, v in outcomes.items() if k not in ours}
    for name in ours:
        if outcomes[name] != "passed":
            assert outcomes[name].startswith("skipped"), (name, outcomes[name])
            assert (name.split("[")[0], outcomes[name]) in others, (name, outcomes[name])


def test_thinc_ops_suite_passes_with_fastnn_ops_among_the_backends(tmp_path):
    """thinc/tests/backends/test_ops.py with FastnnOps added wherever it tests NumpyOps:
    every test passes, except those thinc_plugin.THINC_DEFECTS names (skipped with the
    reason, for every backend) and those Thinc itself skips (no GPU)."""
    summary = _run_thinc_suite(tmp_path, "thinc.tests.backends.test_ops")
    ours = summary["on_fastnn"]
    assert sum(summary["outcomes"][k] == "passed" for k in ours) >= 100, summary["tail"]
    assert any(name.endswith("[FastnnOps]") for name in ours)  # the signatures test
    _skipped_for_numpy_ops_too(summary)


def test_thinc_layer_suite_passes_on_fastnn_ops(tmp_path):
    """thinc/tests/layers with FastnnOps as Thinc's current ops: every model the tests
    build computes on fastnn, and each accelerated method runs."""
    summary = _run_thinc_suite(tmp_path, "thinc.tests.layers", "--fastnn-current-ops")
    passed = re.search(r"(\d+) passed", summary["tail"])
    assert passed and int(passed.group(1)) >= 500, summary["tail"]
    calls = summary["calls"]
    for method in ("gemm", "affine", "relu", "backprop_relu", "softmax", "get_dropout_mask"):
        assert calls.get(method, 0) > 0, (method, calls)


# ---------------------------------------------------------------------- registration

def test_get_ops_finds_fastnn_through_the_entry_point():
    ops = thinc_api.get_ops("fastnn")
    assert isinstance(ops, FastnnOps) and isinstance(ops, NumpyOps)
    with thinc_api.use_ops("fastnn"):
        assert thinc_api.get_current_ops().name == "fastnn"
    assert thinc_api.registry.optimizers.get("fastnn.Adam.v1") is Adam
    assert thinc_api.registry.optimizers.get("fastnn.SGD.v1") is SGD


def test_a_config_builds_the_fastnn_optimizer():
    config = thinc_api.Config().from_str(
        '[optimizer]\n@optimizers = "fastnn.Adam.v1"\nlearn_rate = 0.01\n')
    optimizer = thinc_api.registry.resolve(config)["optimizer"]
    assert isinstance(optimizer, FastnnOptimizer)


def test_accelerated_methods_are_ops_methods_with_thinc_signatures():
    import inspect

    for method in ACCELERATED:
        ours, base = getattr(FastnnOps, method), getattr(Ops, method)
        assert ours is not getattr(NumpyOps, method), method
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(base).parameters), method


def test_fastnn_ops_pickles_and_copies():
    import copy
    import pickle

    ops = FastnnOps(backend="reference")
    for clone in (pickle.loads(pickle.dumps(ops)), copy.deepcopy(ops)):
        assert clone._be.name == "reference"
        assert clone.relu(np.array([-1.0, 1.0])).tolist() == [0.0, 1.0]


def test_docstring_examples():
    for module in (fastnn.thinc, thinc_ops, fastnn.thinc._optimizers):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0


def test_readme_example_runs_as_written(capsys):
    text = README.read_text(encoding="utf-8")
    section = text.split("## Use fastnn in Thinc", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "__readme__"})
    accuracy = float(re.search(r"accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    assert accuracy > 0.8


# ---------------------------------------------------------------------- against NumpyOps

FAST = FastnnOps()
NUMPY = NumpyOps()
rng = np.random.default_rng(0)


def _rand(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _strided(a):
    """``a``'s values in a strided view (every other column of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    view = wide[..., ::2]
    view[...] = a
    return view


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans1,trans2", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_gemm_and_affine_match_numpy_ops(dtype, trans1, trans2):
    x, y = _rand(5, 7, dtype=dtype), _rand(7, 3, dtype=dtype)
    x, y = (x.T.copy() if trans1 else x), (y.T.copy() if trans2 else y)
    # NumPy's matmul as the reference: Thinc 8.3's NumpyOps.gemm takes float32 only.
    expected = (x.T if trans1 else x) @ (y.T if trans2 else y)
    np.testing.assert_allclose(FAST.gemm(x, y, trans1=trans1, trans2=trans2), expected,
                               rtol=1e-5, atol=1e-5)
    out = np.full(expected.shape, np.nan, dtype)
    assert FAST.gemm(x, y, out=out, trans1=trans1, trans2=trans2) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    strided_out = _strided(np.zeros(expected.shape, dtype))
    assert FAST.gemm(_strided(x), y, out=strided_out, trans1=trans1, trans2=trans2) is (
        strided_out)
    np.testing.assert_allclose(strided_out, expected, rtol=1e-5, atol=1e-5)
    W, b = _rand(4, 7, dtype=dtype), _rand(4, dtype=dtype)
    X = _rand(6, 7, dtype=dtype)
    np.testing.assert_allclose(FAST.affine(X, W, b), X @ W.T + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(FAST.affine(_strided(X), W, b), X @ W.T + b, rtol=1e-5,
                               atol=1e-5)


def test_gemm_outside_the_contract_falls_back_to_numpy_ops():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    for x, y in ((ints, ints.T.copy()), (_rand(2, 3), _rand(3, 2, dtype=np.float64))):
        with pytest.raises(ValueError) as theirs:
            NUMPY.gemm(x, y)
        with pytest.raises(ValueError) as ours:
            FAST.gemm(x, y)
        assert str(ours.value) == str(theirs.value)  # NumpyOps's own error
    assert FastnnOps(use_blis=False).gemm(ints, ints.T.copy()).tolist() == [[5, 14], [14, 50]]
    with pytest.raises(ValueError):
        FAST.gemm(_rand(2, 3), _rand(2, 3))


UNARY = [("relu", ()), ("sigmoid", ())]
BACKWARD = [("backprop_relu", "dY"), ("backprop_sigmoid", "Y")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["relu", "sigmoid"])
@pytest.mark.parametrize("layout", ["plain", "strided", "fortran"])
def test_activations_match_numpy_ops_and_work_in_place(dtype, method, layout):
    X = _rand(6, 5, dtype=dtype) * 10
    expected = getattr(Ops(), method)(X.copy())
    arg = {"plain": X.copy(), "strided": _strided(X), "fortran": np.asfortranarray(X)}[layout]
    np.testing.assert_allclose(getattr(FAST, method)(arg), expected, rtol=1e-6, atol=3e-9)
    assert np.array_equal(arg, X)  # not in place: the input is untouched
    result = getattr(FAST, method)(arg, inplace=True)
    assert result is arg
    np.testing.assert_allclose(arg, expected, rtol=1e-6, atol=3e-9)
    if layout == "strided":
        assert not arg.base[..., 1::2].any()  # the columns between stayed as they were


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method,target", [("backprop_relu", 0), ("backprop_sigmoid", 1)])
@pytest.mark.parametrize("layout", ["plain", "strided"])
def test_backprops_match_numpy_ops_and_work_in_place(dtype, method, target, layout):
    dY = _rand(6, 5, dtype=dtype)
    Y = np.abs(_rand(6, 5, dtype=dtype)) * (rng.random((6, 5)) > 0.3)
    Y = 1 / (1 + np.exp(-Y)) if method == "backprop_sigmoid" else Y
    expected = getattr(Ops(), method)(dY.copy(), Y.copy())
    args = [dY.copy(), Y.copy()]
    if layout == "strided":
        args[target] = _strided(args[target])
    np.testing.assert_allclose(getattr(FAST, method)(*args), expected, rtol=1e-6)
    result = getattr(FAST, method)(*args, inplace=True)
    assert result is args[target]  # Thinc's backprop_sigmoid writes into Y
    np.testing.assert_allclose(result, expected, rtol=1e-6)


@pytest.mark.parametrize("method", ["relu", "sigmoid", "backprop_relu", "softmax"])
def test_integer_and_half_arrays_fall_back_to_numpy_ops(method):
    for X in (np.arange(-3, 3, dtype=np.int64).reshape(2, 3),
              np.linspace(-1, 1, 6, dtype=np.float16).reshape(2, 3)):
        args = (X, X) if method.startswith("backprop") else (X,)
        expected = getattr(NUMPY, method)(*(a.copy() for a in args))
        got = getattr(FAST, method)(*(a.copy() for a in args))
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_softmax_along_any_axis(dtype, axis, temperature):
    base = Ops()
    X = _rand(4, 5, 3, dtype=dtype) * 3
    dY = _rand(4, 5, 3, dtype=dtype)
    Y = FAST.softmax(X, axis=axis, temperature=temperature)
    np.testing.assert_allclose(Y, base.softmax(X, axis=axis, temperature=temperature),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(FAST.backprop_softmax(Y, dY, axis=axis, temperature=temperature),
                               base.backprop_softmax(Y, dY, axis=axis,
                                                     temperature=temperature),
                               rtol=1e-4, atol=1e-6)
    assert Y.flags.c_contiguous
    inplace = X.copy()
    assert FAST.softmax(inplace, inplace=True, axis=axis, temperature=temperature) is inplace
    np.testing.assert_allclose(inplace, Y, rtol=1e-6)


def test_dropout_mask_is_thinc_s_and_follows_fix_random_seed():
    shape = (300, 200)
    for drop in (None, 0.0, 1.0):
        np.testing.assert_array_equal(FAST.get_dropout_mask(shape, drop),
                                      NUMPY.get_dropout_mask(shape, drop))
    thinc_api.fix_random_seed(3)
    mask = FAST.get_dropout_mask(shape, 0.25)
    assert mask.dtype == np.float32 and mask.shape == shape
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((mask == 0).mean() - 0.25) < 0.01
    thinc_api.fix_random_seed(3)
    np.testing.assert_array_equal(FAST.get_dropout_mask(shape, 0.25), mask)
    assert not np.array_equal(FAST.get_dropout_mask(shape, 0.25), mask)


def test_adam_method_matches_numpy_ops():
    state = [_rand(1000), _rand(1000), _rand(1000) * 0.1, np.abs(_rand(1000)) * 0.1]
    ours, theirs = [a.copy() for a in state], [a.copy() for a in state]
    FAST.adam(*ours, 0.9, 0.999, 1e-8, 0.01)
    NUMPY.adam(*theirs, 0.9, 0.999, 1e-8, 0.01)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="incompatible shapes"):
        FAST.adam(_rand(2), _rand(1), _rand(1), _rand(1), 0.9, 0.999, 1e-8, 0.01)


# ---------------------------------------------------------------------- the optimizers

def _train(make_optimizer, ops, steps=6, **kwargs):
    """A few steps of a small Thinc MLP; returns its parameters and the optimizer."""
    thinc_api.fix_random_seed(0)
    with thinc_api.use_ops(ops):
        model = thinc_api.chain(thinc_api.Relu(nO=16, dropout=0.1), thinc_api.Softmax())
    data = np.random.default_rng(1)
    X = data.random((32, 12), dtype=np.float32)
    Y = np.eye(4, dtype=np.float32)[data.integers(0, 4, 32)]
    model.initialize(X=X, Y=Y)
    optimizer = make_optimizer(**kwargs)
    for _ in range(steps):
        Yh, backprop = model.begin_update(X)
        backprop(Yh - Y)
        model.finish_update(optimizer)
        optimizer.step_schedules()
    index = {n.id: i for i, n in enumerate(model.walk())}  # ids differ between models

    def keyed(table):
        return None if table is None else {(index[k[0]], k[1]): v for k, v in table.items()}
    params = {(index[n.id], name): n.get_param(name).copy() for n in model.walk()
              for name in n.param_names}
    state = {name: keyed(getattr(optimizer, name))
             for name in ("mom1", "mom2", "averages", "nr_update")}
    return params, optimizer, state


@pytest.mark.parametrize("kind,kwargs", [
    ("Adam", {"learn_rate": 0.01}),
    ("Adam", {"learn_rate": 0.01, "L2": 0.01, "grad_clip": 0.1}),
    ("Adam", {"learn_rate": 0.01, "L2": 0.01, "L2_is_weight_decay": False,
              "use_averages": False}),
    ("SGD", {"learn_rate": 0.1}),
    ("SGD", {"learn_rate": 0.1, "L2": 1e-3}),
])
@pytest.mark.parametrize("ops", ["numpy", "fastnn"])
def test_fastnn_optimizers_match_thinc_s(kind, kwargs, ops):
    theirs, _, reference = _train(getattr(thinc_api, kind), ops, **kwargs)
    ours, optimizer, state = _train(getattr(fastnn.thinc, kind), ops, **kwargs)
    assert isinstance(optimizer, FastnnOptimizer)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=2e-4, atol=2e-6)
    assert state["nr_update"] == reference["nr_update"]
    for name in ("mom1", "mom2", "averages"):
        mine, other = state[name], reference[name]
        if other is None:
            assert mine is None
            continue
        assert set(mine) == set(other)
        for key in other:
            np.testing.assert_allclose(mine[key], other[key], rtol=2e-4, atol=2e-6)


def test_fastnn_optimizer_takes_thinc_s_path_outside_its_kernels():
    for make in (thinc_api.Adam, Adam):  # float64: Thinc's code, whose f32 moments refuse it
        with pytest.raises(ValueError, match="dtype mismatch"):
            make(0.01)((0, "W"), np.zeros(3), np.ones(3))

@pytest.mark.parametrize("kwargs", [{}, {"L2": 0.01, "grad_clip": 1e-3}])
def test_fastnn_adam_takes_clip_decay_and_averages_in_its_kernel(monkeypatch, kwargs):
    """Adam's clip factor, decoupled decay and average go into adam_update's one pass: the
    NumPy passes of the other path are not run, and the result is Thinc's."""
    def numpy_average(*args):
        raise AssertionError("the average took the NumPy path")
    weights, gradient = _rand(40, 7), _rand(40, 7)
    theirs = thinc_api.Adam(0.01, **kwargs)
    expected_w = weights.copy()
    for _ in range(3):
        theirs((0, "W"), expected_w, gradient.copy())
    monkeypatch.setattr(FastnnOptimizer, "_update_average", numpy_average)
    calls = []
    real = fastnn.ops.adam_update
    monkeypatch.setattr(fastnn.thinc._optimizers.fops, "adam_update",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    ours = Adam(0.01, **kwargs)
    for _ in range(3):
        ours((0, "W"), weights, gradient.copy())
    assert len(calls) == 3 and all(c["average"] is not None for c in calls)
    if kwargs:
        assert all(c["grad_scale"] < 1.0 and c["param_decay"] > 0.0 for c in calls)
    np.testing.assert_allclose(weights, expected_w, rtol=2e-5, atol=2e-7)
    np.testing.assert_allclose(ours.averages[(0, "W")], theirs.averages[(0, "W")],
                               rtol=2e-5, atol=2e-7)


def test_fastnn_optimizer_updates_strided_views_in_place():
    """(Thinc's own Adam updates the wrong elements of a strided view: NumpyOps.adam reads
    its memory as contiguous.)"""
    weights, gradient = _rand(12)[::2], _rand(6)
    expected_w, expected_g = weights.copy(), gradient.copy()
    Adam(0.01)((0, "W"), expected_w, expected_g)
    w, g = Adam(0.01)((0, "W"), weights, gradient)
    assert w is weights and g is gradient
    np.testing.assert_array_equal(weights, expected_w)
    assert not gradient.any()


# ---------------------------------------------------------------------- optional kernels

def test_optional_kernels_are_used_when_fastnn_has_them():
    """A stand-in for fastnn ops not in this version (maxout, reduce_sum, ...): each row of
    OPTIONAL whose op exists replaces NumpyOps's method, called in the op's parameter
    order; bad input still gets Thinc's error."""
    calls = []

    class Namespace:
        @staticmethod
        def maxout(x):
            calls.append("maxout")
            return x.max(axis=-1), x.argmax(axis=-1)

        @staticmethod
        def seq2col(seq, n_w, *, lengths):
            calls.append(("seq2col", n_w, lengths.tolist()))
            return NUMPY.seq2col(seq, n_w, lengths=lengths)

        @staticmethod
        def reduce_sum(x, lengths):
            raise ValueError("reduce_sum: lengths must sum to the rows")

    class Ops2(FastnnOps):
        pass

    assert thinc_ops.install_optional(Ops2, Namespace) == ["maxout", "seq2col", "reduce_sum"]
    ops = Ops2()
    X = _rand(4, 3, 2)
    best, which = ops.maxout(X)
    np.testing.assert_array_equal(best, X.max(axis=-1))
    seq = _rand(5, 2)
    np.testing.assert_array_equal(ops.seq2col(seq, 1), NUMPY.seq2col(seq, 1))
    assert calls == ["maxout", ("seq2col", 1, [5])]
    with pytest.raises(IndexError):  # the stand-in refuses: NumpyOps raises Thinc's error
        ops.reduce_sum(_rand(5, 2), np.array([5, 5, 5], dtype=np.int32))
    np.testing.assert_allclose(ops.reduce_sum(_rand(5, 2), np.array([3, 2], np.int32)).shape,
                               (2, 2))
    assert which.dtype == np.int32  # Thinc's Ints2d, which NumpyOps's backprop_maxout takes
    assert ops.backprop_maxout(np.ones((4, 3), np.float32), which, 2).shape == (4, 3, 2)
