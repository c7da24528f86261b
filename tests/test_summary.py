"""``Layer.summary()``: per-layer output shapes and parameter counts, totals in bytes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fastnn import backends, models, nn

SEED_SHAPES = [(None, 28, 28, 32), (None, 14, 14, 32), (None, 14, 14, 32),
               (None, 14, 14, 64), (None, 7, 7, 64), (None, 7, 7, 64), (None, 3136),
               (None, 128), (None, 128), (None, 256), (None, 256), (None, 10)]


@pytest.fixture(autouse=True)
def reference():
    with backends.use("reference"):
        yield


def test_seed_convnet_summary_counts_every_parameter():
    model = models.seed_convnet()
    summary = model.summary(input_shape=(28, 28, 1))
    assert [row.index for row in summary.rows] == [str(i) for i in range(12)]
    assert [row.output_shape for row in summary.rows] == SEED_SHAPES
    for row, layer in zip(summary.rows, model.layers):
        assert row.parameters == sum(p.tensor.size for p in layer.parameters)
        assert row.bytes == sum(p.tensor.nbytes for p in layer.parameters)
    assert [row.parameters for row in summary.rows] == [
        3 * 3 * 1 * 32 + 32, 0, 0, 3 * 3 * 32 * 64 + 64, 0, 0, 0, 3136 * 128 + 128, 0,
        128 * 256 + 256, 0, 256 * 10 + 10]
    assert summary.total_parameters == sum(p.tensor.size for p in model.parameters) == 455946
    assert summary.total_bytes == 4 * 455946
    text = str(summary)
    assert text.splitlines()[0] == "Sequential, input (None, 28, 28, 1) float32"
    assert re.search(r"^0 +Conv2d\(1, 32, kernel_size=3, activation='relu', "
                     r"weight_decay=0\.001\) +\(None, 28, 28, 32\) +320$", text, re.M)
    assert re.search(r"^7 +Linear\(3136, 128, activation='tanh'\) +\(None, 128\) +401,536$",
                     text, re.M)
    assert text.splitlines()[-1] == "total: 455,946 parameters, 1,823,784 bytes (1.74 MiB)"
    assert repr(summary) == text


def test_summary_takes_the_input_shape_from_the_last_call():
    model = models.seed_convnet(dtype=np.float64)
    with pytest.raises(ValueError, match=re.escape(
            "Sequential(12 layers).summary(): no input shape: pass input_shape=")):
        model.summary()
    model(np.zeros((3, 28, 28, 1)))
    summary = model.summary()
    assert summary.input_shape == (None, 28, 28, 1)
    assert [row.output_shape for row in summary.rows] == SEED_SHAPES
    assert summary.total_bytes == 8 * 455946
    assert model.summary(input_shape=(None, 28, 28, 1)).rows == summary.rows


def test_summary_leaves_buffers_outputs_and_modes_alone():
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.Tanh(), nn.Dropout(0.5, seed=0),
                          nn.Linear(8, 2, rng=1))
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y, backward = model.forward(X)
    kept = y.copy()
    model.summary(input_shape=(4,))
    assert model.training and all(layer.training for layer in model)
    np.testing.assert_array_equal(y, kept)
    assert backward(np.ones((5, 2), np.float32)).shape == (5, 4)  # still the latest forward


def test_nested_sequential_rows_and_a_single_layer():
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6, 3, rng=0), nn.ReLU()))
    summary = model.summary(input_shape=(2, 3))
    assert [(r.index, r.layer, r.output_shape, r.parameters) for r in summary.rows] == [
        ("0", "Flatten()", (None, 6), 0), ("1.0", "Linear(6, 3)", (None, 3), 21),
        ("1.1", "ReLU()", (None, 3), 0)]
    single = nn.Linear(3, 2, bias=False, rng=0).summary(input_shape=(3,))
    assert [(r.index, r.layer, r.parameters) for r in single.rows] == [
        ("0", "Linear(3, 2, bias=False)", 6)]
    assert str(single).splitlines()[-1] == "total: 6 parameters, 24 bytes"


def test_summary_print_fn_and_bad_input_shapes():
    printed = []
    summary = nn.Sequential(nn.Linear(2, 1, rng=0)).summary((2,), print_fn=printed.append)
    assert printed == [str(summary)]
    with pytest.raises(ValueError, match=re.escape(
            "layer 0 (Conv2d(1, 32, kernel_size=3, activation='relu', weight_decay=0.001)): "
            "expects 4-D NHWC x")) as info:
        models.seed_convnet().summary(input_shape=(1, 28, 28, 1))
    assert "input_shape is one sample's shape, without the batch axis" in str(info.value)
    with pytest.raises(TypeError, match="input_shape must be a tuple of ints"):
        models.seed_convnet().summary(input_shape=("a",))
