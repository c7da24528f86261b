"""fastnn.nn errors in the user's terms: the model-boundary dtype rule, layer-named shape
errors, Learner argument checks, and the stop at the first non-finite training loss.

Each test checks the message a newcomer's mistake produces: which layer, what it expects,
what came, and the fix.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from fastnn import backends, models, nn

F32 = np.float32


@pytest.fixture(autouse=True)
def reference():
    with backends.use("reference"):
        yield


def _mlp(inputs=5, hidden=16, outputs=3):
    return nn.Sequential(nn.Linear(inputs, hidden, rng=0), nn.ReLU(),
                         nn.Linear(hidden, outputs, rng=1))


def _images(n=4, layout="NHWC", dtype=F32):
    shape = (n, 28, 28, 1) if layout == "NHWC" else (n, 1, 28, 28)
    return np.random.default_rng(0).random(shape).astype(dtype)


# --------------------------------------------------------------------------- the dtype rule

def test_float64_data_is_cast_to_the_model_dtype_everywhere():
    model = _mlp()
    rng = np.random.default_rng(0)
    X64, Y = rng.standard_normal((12, 5)), rng.integers(0, 3, 12)
    X32 = X64.astype(F32)
    expected = model(X32).copy()
    for call in (model, model[0]):  # a Sequential and a single layer: one rule
        out = call(X64)
        assert out.dtype == F32
    np.testing.assert_array_equal(model(X64), expected)
    np.testing.assert_array_equal(model.forward(X64)[0], expected)
    learner = nn.Learner(model, nn.softmax_cross_entropy, nn.SGD(0.1))
    np.testing.assert_allclose(learner.predict(X64), learner.predict(X32))
    assert learner.evaluate(X64, Y) == learner.evaluate(X32, Y)
    losses = learner.fit(X64, Y, epochs=1, bs=4, progress=False, seed=0)
    assert np.isfinite(losses).all()


def test_float64_model_takes_float32_data():
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64))
    assert model(np.ones((2, 3), F32)).dtype == np.float64


@pytest.mark.parametrize("where", ["call", "fit", "predict", "evaluate"])
def test_uint8_images_are_refused_with_the_scaling_hint(where):
    model = models.seed_convnet()
    images = (_images() * 255).astype(np.uint8)
    learner = models.seed_learner(model)
    labels = np.arange(4)
    run = {"call": lambda: model(images),
           "fit": lambda: learner.fit(images, labels, epochs=1, bs=2, progress=False),
           "predict": lambda: learner.predict(images),
           "evaluate": lambda: learner.evaluate(images, labels)}[where]
    with pytest.raises(TypeError) as info:
        run()
    message = str(info.value)
    assert message == (
        "Sequential(12 layers): x is uint8 (shape (4, 28, 28, 1)), but the model computes in "
        "float32: scale uint8 images to [0, 1] floats first, X.astype(np.float32) / 255")


def test_integer_and_bool_inputs_are_refused_with_the_conversion():
    model = _mlp()
    with pytest.raises(TypeError, match=re.escape("x is int64 (shape (2, 5)), but the model "
                                                  "computes in float32: convert it, "
                                                  "X.astype(np.float32)")):
        model(np.ones((2, 5), np.int64))
    with pytest.raises(TypeError, match="x is bool"):
        model[0](np.ones((2, 5), bool))


def test_lists_are_converted_to_the_model_dtype():
    model = _mlp()
    X = [[0.0, 1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(model(X), model(np.array(X, F32)))
    np.testing.assert_array_equal(model(tuple(map(tuple, X))), model(np.array(X, F32)))
    learner = nn.Learner(model, nn.mse_loss, nn.SGD(0.1))
    assert learner.predict(X).shape == (2, 3)
    with pytest.raises(TypeError, match=r"x must be an array \(or a list of numbers\), got a "
                                        "list that does not convert"):
        model([[1.0, 2.0], [3.0]])


def test_a_layer_can_opt_out_of_the_float_rule():
    seen = []

    class Ids(nn.Layer):
        float_input = False

        def forward(self, X):
            seen.append(X)
            return np.eye(3, dtype=F32)[X], lambda D: None

    model = nn.Sequential(Ids(), nn.Linear(3, 2, rng=0))
    ids = np.array([0, 2, 1])
    assert model(ids).shape == (3, 2)
    assert seen[-1] is ids


# --------------------------------------------------------------------------- shapes, named

def test_wrong_feature_count_names_the_layer_and_the_fix():
    with pytest.raises(ValueError) as info:
        _mlp()(np.zeros((16, 4), F32))
    assert str(info.value) == (
        "layer 0 (Linear(5, 16)): expects x of shape (batch, 5), got (16, 4): 4 features "
        "where the layer takes 5; give it 5 features, or build it as Linear(4, 16)")
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__).startswith("Linear: expects x of shape (batch, 5)")


def test_mismatched_inner_layers_name_the_layer_before():
    model = nn.Sequential(nn.Linear(5, 4, rng=0), nn.Tanh(), nn.Linear(16, 3, rng=1))
    with pytest.raises(ValueError, match=re.escape(
            "layer 2 (Linear(16, 3)): expects x of shape (batch, 16), got (2, 4)")) as info:
        model(np.zeros((2, 5), F32))
    assert str(info.value).endswith("(x is the output of layer 1, Tanh())")


def test_nchw_images_into_an_nhwc_model():
    with pytest.raises(ValueError) as info:
        models.seed_convnet()(_images(layout="NCHW"))
    assert str(info.value) == (
        "layer 0 (Conv2d(1, 32, kernel_size=3, activation='relu', weight_decay=0.001)): x "
        "looks NCHW (1 channel first, 28 last) but the layer is NHWC: X.transpose(0, 2, 3, "
        "1), or build the model with layout='NCHW'")


def test_nhwc_images_into_an_nchw_model():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, layout="NCHW", rng=0))
    with pytest.raises(ValueError, match=re.escape(
            "layer 0 (Conv2d(3, 8, kernel_size=3, layout='NCHW')): x looks NHWC (3 channels "
            "last, 32 first) but the layer is NCHW: X.transpose(0, 3, 1, 2)")):
        model(np.zeros((2, 32, 32, 3), F32))


def test_wrong_channel_count_and_missing_channel_axis():
    with pytest.raises(ValueError, match=re.escape(
            "got (2, 8, 8, 3): 3 channels where the layer takes 4 (in_channels=4)")):
        nn.Conv2d(4, 2, 3, rng=0)(np.zeros((2, 8, 8, 3), F32))
    with pytest.raises(ValueError, match=re.escape(
            "layer 0 (Conv2d(1, 32, kernel_size=3, activation='relu', weight_decay=0.001)): "
            "expects 4-D NHWC x (batch, height, width, channels) with 1 channel, got "
            "(4, 28, 28): add the channel axis, X[..., None]")):
        models.seed_convnet()(_images()[..., 0])


def test_images_into_a_linear_layer_say_flatten():
    with pytest.raises(ValueError, match=re.escape(
            "layer 0 (Linear(784, 10)): expects 2-D x of shape (batch, 784), got "
            "(4, 28, 28, 1): flatten it first (an nn.Flatten() before this layer")):
        nn.Sequential(nn.Linear(784, 10, rng=0))(_images())


def test_op_errors_inside_a_layer_keep_their_type_and_cause():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.LocalResponseNorm())
    with pytest.raises(ValueError) as info:
        model(np.zeros((2, 4), F32))
    assert str(info.value) == (
        "layer 1 (LocalResponseNorm()): local_response_norm: x must be 4-D NHWC, got shape "
        "(2, 3) (x is the output of layer 0, Linear(4, 3))")
    assert str(info.value.__cause__) == "local_response_norm: x must be 4-D NHWC, got shape (2, 3)"


def test_mixed_dtype_layers_name_the_layer():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.Linear(3, 2, rng=0, dtype=np.float64))
    with pytest.raises(TypeError, match=r"^layer 1 \(Linear\(3, 2, dtype='float64'\)\): linear:"):
        model(np.zeros((2, 4), F32))


def test_nested_sequentials_give_a_dotted_index():
    model = nn.Sequential(nn.Linear(5, 4, rng=0),
                          nn.Sequential(nn.ReLU(), nn.Linear(3, 2, rng=1)))
    with pytest.raises(ValueError, match=re.escape(
            "layer 1.1 (Linear(3, 2)): expects x of shape (batch, 3), got (2, 4)")) as info:
        model(np.zeros((2, 5), F32))
    assert str(info.value).endswith("(x is the output of layer 1.0, ReLU())")


def test_backward_errors_name_the_layer():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU())
    _, backward = model.forward(np.zeros((2, 4), F32))
    with pytest.raises(ValueError, match=re.escape(
            "layer 1 (ReLU()): relu_backward: y must have shape (2, 5), got (2, 3) "
            "(in its backward)")):
        backward(np.zeros((2, 5), F32))


def test_a_failed_forward_leaves_no_fusion_link_behind():
    model = models.seed_convnet()
    with pytest.raises(ValueError):
        model(_images(layout="NCHW"))
    # The convolution, called on its own, computes its full output (no pooling link left).
    assert model[0](_images()).shape == (4, 28, 28, 32)
    assert model(_images()).shape == (4, 10)


# --------------------------------------------------------------------------- labels

def test_float_class_ids_say_use_integers():
    logits = np.zeros((16, 3), F32)
    message = ("softmax_cross_entropy: labels are floats of shape (16,): float labels are "
               "one-hot (or soft) rows of shape (16, 3); class ids must be integers, "
               "labels.astype(np.int64)")
    with pytest.raises(ValueError) as info:
        nn.softmax_cross_entropy(logits, np.zeros(16, F32))
    assert str(info.value) == message
    learner = nn.Learner(_mlp(), nn.softmax_cross_entropy, nn.SGD(0.1))
    with pytest.raises(ValueError, match=re.escape("class ids must be integers")):
        learner.fit(np.zeros((16, 5), F32), np.zeros(16), epochs=1, bs=16, progress=False)


def test_class_ids_beyond_the_outputs_say_how_many_are_needed():
    with pytest.raises(ValueError, match=re.escape(
            "labels go up to 9 but the model has 3 outputs (logits of shape (4, 3)): end the "
            "model in a layer with 10 outputs")):
        nn.softmax_cross_entropy(np.zeros((4, 3), F32), np.array([0, 9, 1, 2]))


def test_other_label_errors_keep_the_op_message():
    with pytest.raises(ValueError, match=re.escape("integer labels must have shape (4,)")):
        nn.softmax_cross_entropy(np.zeros((4, 3), F32), np.zeros(5, np.int64))


# --------------------------------------------------------------------------- Learner arguments

def test_optimizer_class_instead_of_instance():
    with pytest.raises(TypeError) as info:
        nn.Learner(_mlp(), nn.mse_loss, nn.Adam)
    assert str(info.value) == ("Learner: optimizer must be an optimizer object, got the class "
                               "Adam: create one, e.g. nn.Adam(lr=0.01)")


@pytest.mark.parametrize("optimizer, message", [
    ("adam", "got the string 'adam': pass e.g. nn.Adam(lr=0.001)"),
    (0.01, "optimizer must be an optimizer object such as nn.Adam(lr=0.001), got float"),
    (nn.mse_loss, "optimizer is the loss mse_loss; the arguments are Learner(model, loss, "
                  "optimizer)"),
])
def test_other_bad_optimizers(optimizer, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        nn.Learner(_mlp(), nn.mse_loss, optimizer)


@pytest.mark.parametrize("name, loss", [("mse", nn.mse_loss), ("mse_loss", nn.mse_loss),
                                        ("softmax_cross_entropy", nn.softmax_cross_entropy),
                                        ("cross_entropy", nn.softmax_cross_entropy)])
def test_loss_names_map_to_the_loss_functions(name, loss):
    learner = nn.Learner(_mlp(), name, nn.SGD(0.1))
    assert learner.loss is loss
    assert list(learner.metrics) == (["accuracy"] if loss is nn.softmax_cross_entropy else [])


@pytest.mark.parametrize("loss, kind, message", [
    ("hinge", ValueError, "Learner: unknown loss 'hinge'; known names: ['cross_entropy', "
                          "'mse', 'mse_loss', 'softmax_cross_entropy']"),
    ("categorical_crossentropy", ValueError, "Learner: loss 'categorical_crossentropy' is "
                                             "Keras's name for a loss on probabilities"),
    (3, TypeError, "Learner: loss must be a function (prediction, target) -> (loss, gradient)"
                   " such as nn.mse_loss or nn.softmax_cross_entropy, got int 3"),
    (nn.Adam(), TypeError, "Learner: loss is an optimizer (Adam); the arguments are "
                           "Learner(model, loss, optimizer)"),
])
def test_bad_losses_are_refused_at_construction(loss, kind, message):
    with pytest.raises(kind, match=re.escape(message)):
        nn.Learner(_mlp(), loss, nn.SGD(0.1))


def test_model_given_as_its_builder():
    with pytest.raises(TypeError, match=re.escape(
            "got the function seed_convnet: call it to build the model, seed_convnet()")):
        nn.Learner(models.seed_convnet, nn.softmax_cross_entropy, nn.Adam())
    with pytest.raises(TypeError, match="got the class Sequential"):
        nn.Learner(nn.Sequential, nn.mse_loss, nn.Adam())


# --------------------------------------------------------------------------- diverged training

# Diverging on the reference backend overflows NumPy arithmetic on purpose.
OVERFLOWS = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _regression(n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5)).astype(F32)
    return X, (100 * rng.standard_normal((n, 1))).astype(F32)


@OVERFLOWS
def test_absurd_learning_rate_stops_at_the_first_nonfinite_loss():
    X, Y = _regression()
    model = _mlp(outputs=1)
    ended = []

    class Ended(nn.Callback):
        def on_train_end(self, learner):
            ended.append(True)

    learner = nn.Learner(model, nn.mse_loss, nn.SGD(10.0))
    with pytest.raises(nn.TrainingDiverged) as info:
        learner.fit(X, Y, epochs=20, bs=8, progress=False, seed=0, callbacks=[Ended()])
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert (error.epoch, error.step, error.layer) == (1, 4, 2)
    assert not np.isfinite(error.loss)
    message = str(error)
    assert message.startswith(f"Learner.fit: the loss is {error.loss} at epoch 1/20, step 4/8 "
                              "(a batch of 8): the first non-finite output is that of layer 2 "
                              "(Linear(16, 1)), on finite input, with finite parameters")
    assert message.endswith("Training stopped before this step's update, so the model keeps "
                            "the parameters of the step before. Try: lower the learning rate: "
                            "this optimizer's lr is 10, try 1 (SGD(lr=1); with `fastnn train`,"
                            " --lr 1), and check the inputs for NaN/inf (np.isfinite(X).all()).")
    assert all(np.isfinite(p.tensor).all() for p in model.parameters)
    assert ended == [True]


@OVERFLOWS
def test_nan_in_the_data_is_reported_as_the_data():
    X, Y = _regression()
    X[37, 2] = np.nan
    learner = nn.Learner(_mlp(outputs=1), nn.mse_loss, nn.SGD(0.001))
    with pytest.raises(nn.TrainingDiverged) as info:
        learner.fit(X, Y, epochs=3, bs=8, progress=False, shuffle=False)
    assert (info.value.epoch, info.value.step, info.value.layer) == (1, 5, None)
    assert str(info.value) == (
        "Learner.fit: the loss is nan at epoch 1/3, step 5/8 (a batch of 8): the input batch "
        "itself holds 1 NaN/inf value; clean the data (np.isfinite(X).all() must be True). "
        "Training stopped before this step's update, so the model keeps the parameters of the "
        "step before. Try: fix the data; the learning rate is not the cause.")


@OVERFLOWS
def test_nan_in_the_targets_is_reported_as_the_targets():
    X, Y = _regression()
    Y[20] = np.inf
    learner = nn.Learner(_mlp(outputs=1), nn.mse_loss, nn.SGD(0.001))
    with pytest.raises(nn.TrainingDiverged, match=re.escape(
            "epoch 1/1, step 3/8 (a batch of 8): the model's outputs are finite but this "
            "batch's targets hold 1 NaN/inf value; clean the targets")):
        learner.fit(X, Y, epochs=1, bs=8, progress=False, shuffle=False)


@OVERFLOWS
def test_a_single_layer_model_with_blown_up_weights():
    X, Y = _regression()
    model = nn.Linear(5, 1, rng=0)
    model.weights.tensor[0, 0] = np.inf
    learner = nn.Learner(model, nn.mse_loss, nn.SGD(0.01))
    with pytest.raises(nn.TrainingDiverged, match=re.escape(
            "step 1/8 (a batch of 8): the first non-finite output is that of the model "
            "(Linear(5, 1)), whose weights already hold NaN/inf (earlier updates blew up)")):
        learner.fit(X, Y, epochs=1, bs=8, progress=False, seed=0)


@OVERFLOWS
def test_a_loss_that_overflows_on_finite_outputs():
    X, Y = _regression()
    learner = nn.Learner(nn.Linear(5, 1, rng=0, dtype=np.float64), nn.mse_loss, nn.SGD(30.0))
    with pytest.raises(nn.TrainingDiverged, match=re.escape(
            "the model's outputs are finite but the loss overflowed. Training stopped")):
        learner.fit(X, Y, epochs=50, bs=8, progress=False, seed=0)


@OVERFLOWS
def test_fit_batch_still_returns_a_nonfinite_loss():
    X, Y = _regression(8)
    X[0, 0] = np.inf
    learner = nn.Learner(_mlp(outputs=1), nn.mse_loss, nn.SGD(0.1))
    assert not np.isfinite(learner.fit_batch(X, Y))


def test_fit_batch_follows_the_same_dtype_rule():
    learner = nn.Learner(nn.Linear(5, 1, rng=0), nn.mse_loss, nn.SGD(0.01))
    X, Y = _regression(8)
    assert np.isfinite(learner.fit_batch(X.astype(np.float64), Y.astype(np.float64)))
    with pytest.raises(TypeError, match="x is uint8"):
        learner.fit_batch(X.astype(np.uint8), Y)
