"""fastnn.nn: layers, Sequential, losses, optimizers, Learner, callbacks, save/load.

The table-driven test takes every layer through forward, backward (central finite
differences in float64, for the input gradient and each parameter's gradient, including
the L2 penalty), predict (eval mode) and save/load, on every available NumPy backend.
The training tests run on the reference backend unless they say otherwise.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import fastnn.nn
import fastnn.nn.layers
from fastnn import backends, nn, ops

# Backends that take NumPy arrays (cuda takes CuPy arrays and has its own suite).
BACKENDS = [name for name in backends.available() if name != "cuda"]
F64 = np.float64


@pytest.fixture
def reference():
    with backends.use("reference"):
        yield


# --------------------------------------------------------------------------- the layer table

def _sequential():
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, activation="relu", weight_decay=0.1, rng=1, dtype=F64),
        nn.MaxPool2d(2),
        nn.LocalResponseNorm(depth_radius=1, alpha=0.5),
        nn.Flatten(),
        nn.Linear(18, 4, activation="tanh", weight_decay=0.05, rng=2, dtype=F64),
        nn.Dropout(0.8, seed=3),
        nn.Linear(4, 3, rng=4, dtype=F64),
    )


# (id, factory building the same layer every call, input shape)
LAYERS = [
    ("linear", lambda: nn.Linear(5, 3, rng=0, dtype=F64), (4, 5)),
    ("linear_relu_l2", lambda: nn.Linear(5, 3, activation="relu", weight_decay=0.3, rng=0,
                                         dtype=F64), (4, 5)),
    ("linear_sigmoid_nobias", lambda: nn.Linear(5, 3, bias=False, activation="sigmoid", rng=0,
                                                dtype=F64), (4, 5)),
    ("linear_tanh", lambda: nn.Linear(5, 3, activation="tanh", rng=0, dtype=F64), (4, 5)),
    ("conv_same_relu_l2", lambda: nn.Conv2d(2, 3, 3, activation="relu", weight_decay=0.2,
                                            rng=0, dtype=F64), (2, 4, 4, 2)),
    ("conv_valid_stride", lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding="valid", rng=0,
                                            dtype=F64), (2, 6, 5, 2)),
    ("conv_nchw_dilated_tanh", lambda: nn.Conv2d(2, 2, 3, dilation=2, padding=1,
                                                 activation="tanh", layout="NCHW", rng=0,
                                                 dtype=F64), (2, 2, 5, 5)),
    ("conv_sigmoid_nobias", lambda: nn.Conv2d(1, 2, 2, bias=False, activation="sigmoid",
                                              rng=0, dtype=F64), (1, 3, 3, 1)),
    ("maxpool", lambda: nn.MaxPool2d(2), (2, 4, 4, 3)),
    ("maxpool_overlap_pad", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 5, 5, 2)),
    ("maxpool_nchw", lambda: nn.MaxPool2d(2, layout="NCHW"), (2, 3, 4, 4)),
    ("avgpool", lambda: nn.AvgPool2d(2), (2, 4, 4, 3)),
    ("avgpool_pad_exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                                 count_include_pad=False), (2, 5, 5, 2)),
    ("lrn", lambda: nn.LocalResponseNorm(depth_radius=2, alpha=0.5), (2, 2, 2, 6)),
    ("lrn_nchw", lambda: nn.LocalResponseNorm(depth_radius=1, alpha=0.3, beta=0.5,
                                              layout="NCHW"), (2, 4, 2, 2)),
    ("dropout", lambda: nn.Dropout(0.6, seed=0), (4, 6)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 3, 2)),
    ("relu", lambda: nn.ReLU(), (4, 5)),
    ("sigmoid", lambda: nn.Sigmoid(), (4, 5)),
    ("tanh", lambda: nn.Tanh(), (4, 5)),
    ("softmax", lambda: nn.Softmax(), (4, 5)),
    ("sequential", _sequential, (2, 6, 6, 1)),
]


def _objective(make, tensors, X, R, override=None):
    """``sum(layer(X) * R) + regularization_loss`` for a freshly built layer.

    A fresh layer per evaluation draws the same dropout mask as the checked one.
    """
    layer = make()
    for name, parameter in layer.named_parameters():
        parameter.tensor[...] = tensors[name]
    if override is not None:
        name, value = override
        dict(layer.named_parameters())[name].tensor[...] = value
    Y = layer.forward(X)[0]
    return float(np.vdot(Y, R)) + layer.regularization_loss()


def _check_gradient(analytic, f, x, rng, what, samples=24):
    """Central differences of ``f`` at up to ``samples`` random elements of ``x``."""
    flat = x.reshape(-1)
    chosen = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
    eps = 1e-6
    numeric = []
    for i in chosen:
        saved = flat[i]
        flat[i] = saved + eps
        up = f(x)
        flat[i] = saved - eps
        down = f(x)
        flat[i] = saved
        numeric.append((up - down) / (2 * eps))
    np.testing.assert_allclose(analytic.reshape(-1)[chosen], numeric, rtol=1e-5, atol=1e-6,
                               err_msg=what)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make, x_shape", [pytest.param(m, s, id=i) for i, m, s in LAYERS])
def test_layer_forward_backward_predict_save_load(backend, make, x_shape, tmp_path):
    rng = np.random.default_rng(42)
    X = rng.standard_normal(x_shape)
    with backends.use(backend):
        layer = make()
        tensors = {name: p.tensor.copy() for name, p in layer.named_parameters()}

        # forward
        Y, backward = layer.forward(X)
        assert Y.dtype == F64 and np.isfinite(Y).all()
        Y = Y.copy()

        # backward: input and parameter gradients against finite differences (sampled elements)
        R = rng.standard_normal(Y.shape)
        dX = backward(R).copy()
        assert dX.shape == X.shape
        _check_gradient(dX, lambda x: _objective(make, tensors, x, R), X.copy(), rng,
                        "input gradient")
        for name, parameter in layer.named_parameters():
            _check_gradient(parameter.gradient,
                            lambda t, name=name: _objective(make, tensors, X, R, (name, t)),
                            tensors[name].copy(), rng, f"gradient of {name}")

        # predict: eval mode; dropout is the identity, everything else computes as in training
        layer.eval()
        predicted = layer(X).copy()
        if isinstance(layer, nn.Dropout):
            np.testing.assert_array_equal(predicted, X)
        elif not any(isinstance(inner, nn.Dropout) for inner in getattr(layer, "layers", ())):
            np.testing.assert_array_equal(predicted, Y)

        # save and load: the same architecture, parameters and outputs, without `make`
        path = tmp_path / "layer.npz"
        nn.save(layer, path)
        loaded = nn.load(path)
        assert type(loaded) is type(layer)
        assert loaded.config() == layer.config()
        for (name, p), (name_loaded, q) in zip(layer.named_parameters(),
                                               loaded.named_parameters()):
            assert name == name_loaded
            np.testing.assert_array_equal(p.tensor, q.tensor)
        np.testing.assert_array_equal(loaded.eval()(X), predicted)


def test_every_layer_class_is_in_the_table():
    tested = {type(make()).__name__ for _, make, _ in LAYERS}
    tested |= {type(inner).__name__ for inner in _sequential()}
    assert set(fastnn.nn.layers.__all__) <= tested


# --------------------------------------------------------------------------- Sequential

def test_sequential_chains_forward_and_reverses_backward(reference):
    first, act, second = (nn.Linear(3, 4, rng=0, dtype=F64), nn.Sigmoid(),
                          nn.Linear(4, 2, rng=1, dtype=F64))
    model = nn.Sequential(first, act, second)
    assert model.parameters == first.parameters + second.parameters
    assert [name for name, _ in model.named_parameters()] == [
        "0.weights", "0.bias", "2.weights", "2.bias"]

    X = np.random.default_rng(0).standard_normal((5, 3))
    W1, b1 = first.weights.tensor, first.bias.tensor
    W2, b2 = second.weights.tensor, second.bias.tensor
    H = 1 / (1 + np.exp(-(X @ W1 + b1)))
    Y, backward = model.forward(X)
    np.testing.assert_allclose(Y, H @ W2 + b2, rtol=1e-12)

    D = np.ones((5, 2))
    dX = backward(D)
    dH = D @ W2.T
    dZ = dH * H * (1 - H)
    np.testing.assert_allclose(second.weights.gradient, H.T @ D, rtol=1e-12)
    np.testing.assert_allclose(first.weights.gradient, X.T @ dZ, rtol=1e-12)
    np.testing.assert_allclose(first.bias.gradient, dZ.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dX, dZ @ W1.T, rtol=1e-12)

    # gradients accumulate until an optimizer step zeroes them
    backward(D)
    np.testing.assert_allclose(second.bias.gradient, 2 * D.sum(axis=0), rtol=1e-12)
    model.update(nn.SGD(0.0))
    assert all(not p.gradient.any() for p in model.parameters)

    # train/eval reach every layer
    model.eval()
    assert not any(layer.training for layer in model)
    model.train()
    assert all(layer.training for layer in model)


def test_sequential_save_load_rebuilds_the_seed_network(tmp_path, reference):
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, activation="relu", weight_decay=0.001, rng=0),
        nn.MaxPool2d(2), nn.LocalResponseNorm(),
        nn.Conv2d(4, 8, 3, activation="relu", weight_decay=0.001, rng=1),
        nn.MaxPool2d(2), nn.LocalResponseNorm(), nn.Flatten(),
        nn.Linear(7 * 7 * 8, 16, activation="tanh", rng=2), nn.Dropout(0.8, seed=0),
        nn.Linear(16, 16, activation="tanh", rng=3), nn.Dropout(0.8, seed=1),
        nn.Linear(16, 10, rng=4),
    )
    path = tmp_path / "seed.npz"
    model.save(path)
    loaded = nn.Sequential.load(path)
    X = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(X), model.eval()(X))
    assert loaded.regularization_loss() == model.regularization_loss() > 0
    with pytest.raises(TypeError, match="not a Linear"):
        nn.Linear.load(path)


class Scale(nn.Layer):
    """A user-defined layer: saved as "module:qualname", rebuilt from its config."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, X):
        return X * self.factor, lambda D: D * self.factor

    def config(self):
        return {"factor": self.factor}


def test_custom_layers_save_and_load(tmp_path, reference, monkeypatch):
    model = nn.Sequential(nn.Linear(3, 2, rng=0), Scale(2.5))
    model.save(tmp_path / "custom.npz")
    # a user's class is built only when opted in: for one call, or registered for good
    with pytest.raises(nn.ModelFileError, match="register_layer"):
        nn.load(tmp_path / "custom.npz")
    loaded = nn.load(tmp_path / "custom.npz", custom_objects={"Scale": Scale})
    assert isinstance(loaded[1], Scale) and loaded[1].factor == 2.5
    X = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(loaded(X), model(X))
    monkeypatch.setattr(nn.Layer, "registry", dict(nn.Layer.registry))
    nn.register_layer(Scale)
    assert isinstance(nn.Sequential.load(tmp_path / "custom.npz")[1], Scale)
    assert "Linear" in nn.Layer.registry and nn.Layer.registry["Linear"] is nn.Linear


# --------------------------------------------------------------------------- buffers

@pytest.mark.parametrize("backend", BACKENDS)
def test_buffers_are_reused_for_the_same_shape(backend):
    rng = np.random.default_rng(0)
    with backends.use(backend):
        layer = nn.Conv2d(2, 3, 3, activation="relu", rng=0, dtype=F64)
        X1, X2 = rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((2, 5, 5, 2))
        Y1, backward1 = layer.forward(X1)
        dX1 = backward1(np.ones_like(Y1))
        Y2, backward2 = layer.forward(X2)
        assert Y2 is Y1  # same memory, new values
        np.testing.assert_allclose(
            Y2, ops.conv2d(X2, layer.weights.tensor, layer.bias.tensor, padding="same",
                           activation="relu"), rtol=1e-12)
        with pytest.raises(RuntimeError, match="earlier forward"):
            backward1(np.ones_like(Y1))
        dX2 = backward2(np.ones_like(Y2))
        assert dX2 is dX1
        # a new shape gets new buffers; the old shape's buffers are kept for later
        Y3, _ = layer.forward(rng.standard_normal((1, 5, 5, 2)))
        assert Y3.shape == (1, 5, 5, 3) and not np.shares_memory(Y3, Y1)
        assert layer.forward(X1)[0] is Y1

        linear = nn.Linear(4, 3, rng=0, dtype=F64)
        A = rng.standard_normal((6, 4))
        first = linear(A)
        assert linear(A + 1) is first
        np.testing.assert_allclose(first, (A + 1) @ linear.weights.tensor, rtol=1e-12)


# --------------------------------------------------------------------------- dropout

def test_dropout_train_and_eval(reference):
    X = np.ones((200, 50), np.float32)
    drop = nn.Dropout(0.8, seed=7)
    Y1 = drop(X).copy()
    kept = Y1 != 0
    assert abs(kept.mean() - 0.8) < 0.02
    np.testing.assert_allclose(Y1[kept], 1 / 0.8, rtol=1e-6)
    Y2, backward = drop.forward(X)
    assert (Y2 != Y1).any(), "a new mask per batch"
    np.testing.assert_array_equal(backward(X) != 0, Y2 != 0)
    # the same seed replays the same masks
    again = nn.Dropout(0.8, seed=7)
    np.testing.assert_array_equal(again(X), Y1)
    # evaluation mode: the identity, input and gradient
    drop.eval()
    Y, backward = drop.forward(X)
    assert Y is X and backward(X) is X
    with pytest.raises(ValueError, match="keep_prob"):
        nn.Dropout(0.0)


# --------------------------------------------------------------------------- losses

def test_losses(reference):
    prediction = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    target = np.zeros((3, 2))
    loss, grad = nn.mse_loss(prediction, target)
    assert isinstance(loss, float)
    np.testing.assert_allclose(grad, 2 * (prediction - target) / 3)

    logits = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    loss, grad = nn.softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(probs[np.arange(4), labels]).mean(), rel=1e-12)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(grad, (probs - onehot) / 4, rtol=1e-12)
    loss_onehot, grad_onehot = nn.softmax_cross_entropy(logits, onehot)
    assert loss_onehot == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grad_onehot, grad, rtol=1e-12)


# --------------------------------------------------------------------------- optimizers

def test_sgd_matches_hand_computed_steps(reference):
    p = nn.Parameter(np.array([1.0, -2.0]))
    sgd = nn.SGD(0.1, momentum=0.9, weight_decay=0.01)
    p.gradient[...] = [0.5, 1.0]
    sgd(p)
    g1 = np.array([0.5, 1.0]) + 0.01 * np.array([1.0, -2.0])
    v1 = g1
    expected = np.array([1.0, -2.0]) - 0.1 * v1
    np.testing.assert_allclose(p.tensor, expected, rtol=1e-12)
    assert not p.gradient.any()
    p.gradient[...] = [-1.0, 0.0]
    sgd.step(p)
    g2 = np.array([-1.0, 0.0]) + 0.01 * expected
    v2 = 0.9 * v1 + g2
    np.testing.assert_allclose(p.tensor, expected - 0.1 * v2, rtol=1e-12)

    q = nn.Parameter(np.array([1.0]))
    nesterov = nn.SGD(0.5, momentum=0.5, nesterov=True)
    for _ in range(2):
        q.gradient[...] = 2.0
        nesterov(q)
    # v1 = 2, step1 = 2 + 0.5*2 = 3 -> 1 - 1.5 = -0.5; v2 = 0.5*2 + 2 = 3, step2 = 2 + 1.5
    np.testing.assert_allclose(q.tensor, [-0.5 - 0.5 * 3.5], rtol=1e-12)


def test_adam_matches_hand_computed_steps(reference):
    p = nn.Parameter(np.array([1.0, -1.0]))
    adam = nn.Adam(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8)
    m = v = np.zeros(2)
    theta = np.array([1.0, -1.0])
    for step, g in enumerate(([0.2, -0.4], [0.1, 0.3]), start=1):
        p.gradient[...] = g
        adam(p)
        g = np.array(g)
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        theta = theta - 0.01 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.99**step)) + 1e-8)
        np.testing.assert_allclose(p.tensor, theta, rtol=1e-12)
        assert not p.gradient.any()
    assert adam.state[p]["step"] == 2


def test_layer_weight_decay_is_tflearn_l2(reference):
    layer = nn.Linear(3, 2, weight_decay=0.5, rng=0, dtype=F64)
    W = layer.weights.tensor
    assert layer.regularization_loss() == pytest.approx(0.25 * (W**2).sum(), rel=1e-12)
    X = np.ones((1, 3))
    Y, backward = layer.forward(X)
    backward(np.zeros_like(Y))
    np.testing.assert_allclose(layer.weights.gradient, 0.5 * W, rtol=1e-12)
    assert not layer.bias.gradient.any()


# --------------------------------------------------------------------------- Learner

def _regression(n=100, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 10)).astype(np.float32)
    W = rng.standard_normal((10, 1)).astype(np.float32)
    return X, X @ W + np.float32(0.5)


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[2.0, 0.0], [-1.0, 2.0], [-1.0, -2.0]])
    X = (centres[labels] + 0.5 * rng.standard_normal((n, 2))).astype(np.float32)
    return X, labels


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_returns_decreasing_epoch_losses(backend):
    X, Y = _regression()
    with backends.use(backend):
        learner = nn.Learner(nn.Linear(10, 1, rng=0), nn.mse_loss, nn.SGD(0.05))
        losses = learner.fit(X, Y, epochs=20, bs=10, progress=False, seed=0)
    assert len(losses) == 20 and all(type(loss) is float for loss in losses)
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-4 * losses[0]
    assert learner.history["loss"] == losses
    assert len(learner.history["samples_per_s"]) == 20


def test_fit_classifier_with_validation_predict_evaluate(reference, capsys):
    X, labels = _blobs()
    model = nn.Sequential(nn.Linear(2, 16, activation="relu", rng=0), nn.Dropout(0.9, seed=0),
                          nn.Linear(16, 3, rng=1))
    learner = nn.Learner(model, nn.softmax_cross_entropy, nn.Adam(0.05))
    losses = learner.fit(X[:200], labels[:200], epochs=8, bs=32, seed=0, progress=True,
                         validation=(X[200:], labels[200:]))
    bar = capsys.readouterr().err
    assert "epoch 8/8" in bar and "sample/s" in bar and "val_accuracy" in bar
    assert set(learner.history) == {"loss", "accuracy", "samples_per_s", "val_loss",
                                    "val_accuracy"}
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert learner.history["val_accuracy"][-1] > 0.9
    assert model.training, "fit leaves the model in training mode"

    probs = learner.predict(X[200:], bs=64)
    assert probs.shape == (100, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    classes = learner.predict_classes(X[200:], bs=64)
    assert classes.dtype == np.int64
    scores = learner.evaluate(X[200:], labels[200:], bs=64)
    assert scores["accuracy"] == pytest.approx((classes == labels[200:]).mean())
    assert scores["loss"] == pytest.approx(learner.history["val_loss"][-1], rel=1e-5)
    assert model.training, "predict/evaluate restore the mode"


def test_early_stopping_stops_and_restores_best(reference):
    X, Y = _regression(seed=1)
    # validating against the negated targets: val loss rises as the fit improves
    model = nn.Linear(10, 1, rng=0)
    learner = nn.Learner(model, nn.mse_loss, nn.SGD(0.05))
    stopper = nn.EarlyStopping(patience=2)
    snapshots = []

    class Record(nn.Callback):
        def on_epoch_end(self, learner, epoch, logs):
            snapshots.append(learner.model.weights.tensor.copy())

    losses = learner.fit(X, Y, epochs=50, bs=10, validation=(X, -Y), callbacks=[stopper, Record()],
                         progress=False, seed=0)
    assert len(losses) == stopper.stopped_epoch + 1 < 50
    assert stopper.wait == 2 and stopper.best_epoch == stopper.stopped_epoch - 2
    np.testing.assert_array_equal(model.weights.tensor, snapshots[stopper.best_epoch])

    with pytest.raises(KeyError, match="val_loss"):
        learner.fit(X, Y, epochs=2, bs=10, callbacks=[nn.EarlyStopping()], progress=False)


def test_same_seed_same_numbers(reference):
    X, labels = _blobs(120)

    def run(seed):
        model = nn.Sequential(nn.Linear(2, 8, activation="tanh", rng=seed),
                              nn.Dropout(0.7, seed=seed), nn.Linear(8, 3, rng=seed + 1))
        learner = nn.Learner(model, nn.softmax_cross_entropy, nn.SGD(0.1, momentum=0.9))
        losses = learner.fit(X, labels, epochs=3, bs=16, progress=False, seed=seed)
        return losses, [p.tensor.copy() for p in model.parameters]

    losses_a, params_a = run(5)
    losses_b, params_b = run(5)
    assert losses_a == losses_b
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)
    assert run(6)[0] != losses_a


def test_fit_batch_and_l2_in_the_reported_loss(reference):
    X, Y = _regression(20)
    model = nn.Linear(10, 1, weight_decay=0.1, rng=0)
    learner = nn.Learner(model, nn.mse_loss, nn.SGD(0.01))
    expected = nn.mse_loss(model(X), Y)[0] + model.regularization_loss()
    assert learner.fit_batch(X, Y) == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------- docstrings

def _nn_modules():
    names = ["fastnn.nn"]
    names += [f"fastnn.nn.{m.name}" for m in pkgutil.iter_modules(fastnn.nn.__path__)]
    names += [f"fastnn.nn.layers.{m.name}" for m in pkgutil.iter_modules(fastnn.nn.layers.__path__)]
    return [importlib.import_module(name) for name in names]


@pytest.mark.parametrize("module", _nn_modules(), ids=lambda m: m.__name__)
def test_docstring_examples(module, reference):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_first_layer_skips_its_input_gradient_under_learner():
    """A model's input is data: Learner turns the first layer's input gradient off for the
    step (saving conv1's backward-data pass) and restores the flag afterwards."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, rng=np.random.default_rng(0)), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3, rng=np.random.default_rng(1)))
    x = np.random.default_rng(2).random((5, 6, 6, 1)).astype(np.float32)
    _, backward = model.forward(x)
    assert backward(np.ones((5, 3), np.float32)).shape == x.shape
    model.requires_input_grad = False
    _, backward = model.forward(x)
    assert backward(np.ones((5, 3), np.float32)) is None
    model.requires_input_grad = True
    learner = nn.Learner(model, nn.softmax_cross_entropy, nn.SGD(0.1))
    learner.fit_batch(x, np.array([0, 1, 2, 0, 1]))
    assert model.requires_input_grad
    _, backward = model.forward(x)  # the first layer follows the model again
    assert backward(np.ones((5, 3), np.float32)).shape == x.shape


# --------------------------------------------------------------------------- fusion

# (producer, pool) pairs Sequential fuses: the relu's mask moves onto the pooled gradient.
FUSED_PAIRS = [
    ("conv_relu_pool", lambda: nn.Conv2d(2, 3, 3, activation="relu", rng=0, dtype=F64),
     lambda: nn.MaxPool2d(2), (2, 6, 6, 2)),
    ("conv_relu_overlapping_padded_pool",
     lambda: nn.Conv2d(2, 3, 3, activation="relu", rng=0, dtype=F64),
     lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 7, 7, 2)),
    ("conv_relu_pool_nchw",
     lambda: nn.Conv2d(2, 3, 3, activation="relu", layout="NCHW", rng=0, dtype=F64),
     lambda: nn.MaxPool2d(2, layout="NCHW"), (2, 2, 6, 6)),
    ("relu_layer_pool", lambda: nn.ReLU(), lambda: nn.MaxPool2d(2), (2, 6, 6, 3)),
    # A first layer with whole channel vectors: the cpu backend's one-pass forward kernel
    # (odd sizes: the last output row and column are left out of the pool).
    ("conv_relu_pool_one_pass",
     lambda: nn.Conv2d(1, 16, 3, padding="same", activation="relu", rng=0, dtype=F64),
     lambda: nn.MaxPool2d(2), (2, 7, 9, 1)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, make_producer, make_pool, x_shape", FUSED_PAIRS,
                         ids=[p[0] for p in FUSED_PAIRS])
def test_relu_pool_fusion_matches_the_layers_run_one_by_one(backend, name, make_producer,
                                                            make_pool, x_shape):
    rng = np.random.default_rng(0)
    # Integers-valued inputs put ties and zeros (relu's edge) into the pools' windows.
    X = rng.integers(-2, 3, x_shape).astype(F64)
    D = rng.standard_normal(make_pool()(make_producer()(X)).shape)
    with backends.use(backend):
        producer, pool = make_producer(), make_pool()
        model = nn.Sequential(producer, pool)
        assert set(nn._fusion.plan(model.layers)) == {0, 1}
        Y, backward = model.forward(X)
        dX = backward(D)
        fused = [p.gradient.copy() for p in model.parameters]

        alone_producer, alone_pool = make_producer(), make_pool()
        H, back1 = alone_producer.forward(X)
        Y_alone, back2 = alone_pool.forward(H)
        dX_alone = back1(back2(D))
        np.testing.assert_array_equal(Y, Y_alone)
        np.testing.assert_array_equal(dX, dX_alone)  # the same operations on the same values
        for got, p in zip(fused, alone_producer.parameters):
            np.testing.assert_allclose(got, p.gradient, rtol=1e-12, atol=1e-12)
        # The producer, used on its own afterwards, runs its full backward again.
        H2, back3 = producer.forward(X)
        np.testing.assert_array_equal(back3(np.ones_like(H2)),
                                      back1(np.ones_like(H2)))


def test_fusion_needs_adjacent_relu_and_max_pool_with_one_layout():
    conv = nn.Conv2d(2, 3, 3, activation="relu", rng=0)
    assert nn._fusion.plan([conv, nn.AvgPool2d(2)]) == {}
    assert nn._fusion.plan([nn.Conv2d(2, 3, 3, activation="tanh", rng=0), nn.MaxPool2d(2)]) == {}
    assert nn._fusion.plan([conv, nn.MaxPool2d(2, layout="NCHW")]) == {}
    assert nn._fusion.plan([conv, nn.LocalResponseNorm(), nn.MaxPool2d(2)]) == {}
    links = nn._fusion.plan([nn.ReLU(), nn.MaxPool2d(2), conv, nn.MaxPool2d(2)])
    assert set(links) == {0, 1, 2, 3} and links[0] is links[1] and links[2] is not links[0]


# --------------------------------------------------------------------------- moving models

@pytest.mark.parametrize("backend", BACKENDS)
def test_to_moves_parameters_and_drops_buffers(backend):
    model = _sequential().eval()  # no dropout: two forwards agree
    X = np.random.default_rng(0).standard_normal((2, 6, 6, 1))
    Y, _ = model.forward(X)
    assert any(layer._buffers for layer in model.layers)
    assert model.to(backend) is model
    assert not any(layer._buffers for layer in model.layers)
    xp = backends.get(backend).xp
    for p in model.parameters:
        assert isinstance(p.tensor, xp.ndarray) and isinstance(p.gradient, xp.ndarray)
    with backends.use(backend):
        np.testing.assert_allclose(model.forward(X)[0], Y, rtol=1e-9, atol=1e-12)
    tensors = [p.tensor for p in model.parameters]
    model.to(backends.get(backend))  # already there: nothing is copied
    assert all(p.tensor is t for p, t in zip(model.parameters, tensors))
