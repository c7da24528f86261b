"""Learning-rate schedules and early stopping: their rates and decisions, with Learner.fit,
and a resumed run (after an epoch, or Ctrl-C mid-epoch) ending bit-identical to an
uninterrupted one."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest

from fastnn import nn

EPOCHS, BS = 8, 20


def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    Y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1)
    # noisy validation labels: the validation loss turns up after a few epochs
    Yv = np.where(rng.random(200) < 0.3, rng.integers(0, 3, 200), Y)
    return X[:120], Y[:120], X[120:], Yv[120:]


def learner(lr=0.05):
    model = nn.Sequential(nn.Linear(8, 32, rng=0), nn.ReLU(), nn.Dropout(0.8, seed=1),
                          nn.Linear(32, 3, rng=2))
    return nn.Learner(model, nn.softmax_cross_entropy, nn.Adam(lr=lr))


class RecordLR(nn.Callback):
    """The optimizer's lr during each epoch (seen at its end)."""

    def __init__(self):
        self.lrs = []

    def on_epoch_end(self, learner, epoch, logs):
        self.lrs.append(learner.optimizer.lr)


class InterruptAt:
    """A metric that delivers SIGINT during its ``at``-th call (as Ctrl-C would)."""

    __name__ = "accuracy"

    def __init__(self, at):
        self.calls, self.at = 0, at

    def __call__(self, output, target):
        self.calls += 1
        if self.calls == self.at:
            signal.raise_signal(signal.SIGINT)
        return nn.accuracy(output, target)


def fit(model_learner, callbacks=(), resume=None, epochs=EPOCHS):
    X, Y, Xv, Yv = data()
    return model_learner.fit(X, Y, epochs=epochs, bs=BS, validation=(Xv, Yv), progress=False,
                             seed=3, callbacks=callbacks, resume=resume)


def params(model_learner):
    return [p.tensor.copy() for p in model_learner.model.parameters]


# --------------------------------------------------------------------------- the rates

def test_each_schedule_gives_its_rates():
    assert [nn.StepDecay(2, 0.5).lr_at(e, 1.0, {}) for e in range(5)] == \
        [1.0, 1.0, 0.5, 0.5, 0.25]
    assert [nn.ExponentialDecay(0.5).lr_at(e, 1.0, {}) for e in range(3)] == [1.0, 0.5, 0.25]
    cosine = nn.CosineDecay(epochs=10, min_lr=0.01)
    rates = [cosine.lr_at(e, 1.0, {}) for e in range(12)]
    assert rates[0] == 1.0 and rates[5] == pytest.approx(0.505) and rates[10:] == [0.01] * 2
    assert all(a > b for a, b in zip(rates[:10], rates[1:11]))
    plateau = nn.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=0.2)
    history = {"loss": [3.0, 2.0, 2.5, 1.0, 1.5, 1.6, 1.7]}
    assert [plateau.lr_at(e, 1.0, history) for e in range(8)] == \
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.2, 0.2]
    keras = nn.LearningRateScheduler(lambda epoch, lr: lr * 0.1 if epoch == 2 else lr)
    assert [keras.lr_at(e, 1.0, {}) for e in range(4)] == [1.0, 1.0, 0.1, 0.1]


@pytest.mark.parametrize("make, message", [
    (lambda: nn.StepDecay(0), "StepDecay: step_size must be a whole number >= 1, got 0"),
    (lambda: nn.StepDecay(2.5), "StepDecay: step_size must be a whole number >= 1, got 2.5"),
    (lambda: nn.StepDecay(2, gamma=-1), "StepDecay: gamma must be a finite number > 0"),
    (lambda: nn.ExponentialDecay(math.nan), "ExponentialDecay: gamma must be a finite"),
    (lambda: nn.CosineDecay(10, min_lr=0), "CosineDecay: min_lr must be a finite number > 0"),
    (lambda: nn.ReduceLROnPlateau(factor=1.5), "factor must be a number in (0, 1), got 1.5"),
    (lambda: nn.ReduceLROnPlateau(patience=0), "patience must be a whole number >= 1"),
    (lambda: nn.CosineDecay(5, base_lr="fast"), "base_lr must be a finite number > 0"),
    (lambda: nn.EarlyStopping(patience=0), "patience must be >= 1, got 0"),
])
def test_bad_arguments_are_refused_with_their_name(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_a_schedule_sets_the_rate_of_every_epoch():
    record = RecordLR()
    schedule = nn.StepDecay(2, gamma=0.5)
    model_learner = learner(lr=0.04)
    fit(model_learner, callbacks=[schedule, record])
    assert record.lrs == [0.04, 0.04, 0.02, 0.02, 0.01, 0.01, 0.005, 0.005]
    assert schedule.lrs == dict(enumerate(record.lrs))
    assert model_learner.optimizer.lr == 0.005  # stays at the last epoch's


def test_plateau_reduces_after_the_validation_loss_stalls():
    record = RecordLR()
    model_learner = learner()
    fit(model_learner, callbacks=[nn.ReduceLROnPlateau(patience=1, factor=0.5), record])
    losses = model_learner.history["val_loss"]
    lr, best, expected = 0.05, math.inf, []
    for loss in losses:
        expected.append(lr)
        if loss < best:
            best = loss
        else:
            lr /= 2
    assert record.lrs == expected and min(expected) < 0.05  # it did reduce


def test_a_bad_schedule_and_a_missing_monitor_are_explained():
    with pytest.raises(ValueError, match="the learning rate for epoch 1 is -1.0; a schedule "
                                         "must give a finite number > 0"):
        fit(learner(), callbacks=[nn.LearningRateScheduler(lambda epoch, lr: -1.0)])
    X, Y, _, _ = data()
    with pytest.raises(KeyError, match="no 'val_loss'.*pass validation= to fit"):
        learner().fit(X, Y, epochs=2, bs=BS, progress=False,
                      callbacks=[nn.ReduceLROnPlateau()])
    with pytest.raises(TypeError, match="LearningRateScheduler: schedule must be a function"):
        nn.LearningRateScheduler(0.1)


def test_early_stopping_stops_and_restores_the_best_epoch():
    stopper = nn.EarlyStopping(patience=2)
    model_learner = learner(lr=0.2)
    fit(model_learner, callbacks=[stopper], epochs=40)
    losses = model_learner.history["val_loss"]
    assert stopper.stopped_epoch is not None and len(losses) == stopper.stopped_epoch + 1 < 40
    assert stopper.best_epoch == int(np.argmin(losses))
    X, Y, Xv, Yv = data()
    assert model_learner.evaluate(Xv, Yv)["loss"] == pytest.approx(min(losses), rel=1e-6)


# --------------------------------------------------------------------------- resume

SCHEDULES = {
    "cosine": lambda: [nn.CosineDecay(EPOCHS, min_lr=1e-4)],
    "plateau": lambda: [nn.ReduceLROnPlateau(patience=1, factor=0.5)],
    "decay-and-early-stopping": lambda: [nn.ExponentialDecay(0.95),
                                         nn.EarlyStopping(patience=2)],
    "keras-function": lambda: [nn.LearningRateScheduler(lambda e, lr: lr * (0.7 if e else 1))],
}


@pytest.fixture(scope="module")
def uninterrupted():
    runs = {}
    for name, make in SCHEDULES.items():
        record = RecordLR()
        model_learner = learner()
        fit(model_learner, callbacks=[*make(), record])
        runs[name] = params(model_learner), model_learner.history, record.lrs
    assert len(runs["decay-and-early-stopping"][1]["loss"]) in range(4, EPOCHS)  # it stopped
    return runs


def assert_same_run(model_learner, lrs, expected):
    want_params, history, want_lrs = expected
    for got, want in zip(params(model_learner), want_params):
        np.testing.assert_array_equal(got, want)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert model_learner.history[key] == history[key], key
    assert lrs == want_lrs[-len(lrs):]


@pytest.mark.parametrize("name", SCHEDULES)
def test_resuming_after_an_epoch_with_a_schedule_is_bit_identical(tmp_path, uninterrupted,
                                                                  name):
    first = learner()
    fit(first, callbacks=[*SCHEDULES[name](), nn.Checkpoint(tmp_path)], epochs=2)
    record = RecordLR()
    resumed = learner(lr=0.05)  # a fresh optimizer: the rate comes from the schedule
    fit(resumed, callbacks=[*SCHEDULES[name](), nn.Checkpoint(tmp_path), record],
        resume=tmp_path / "checkpoint-last.npz")
    assert_same_run(resumed, record.lrs, uninterrupted[name])


@pytest.mark.parametrize("name", SCHEDULES)
def test_ctrl_c_mid_epoch_with_a_schedule_resumes_bit_identically(tmp_path, uninterrupted,
                                                                  name):
    first = learner()
    # 6 steps and 4 validation batches an epoch: call 23 is epoch 3, step 3
    first.metrics = {"accuracy": InterruptAt(23)}
    with pytest.raises(nn.TrainingInterrupted) as info:
        fit(first, callbacks=[*SCHEDULES[name](), nn.Checkpoint(tmp_path)])
    assert (info.value.epoch, info.value.step) == (3, 3)
    record = RecordLR()
    resumed = learner()
    fit(resumed, callbacks=[*SCHEDULES[name](), nn.Checkpoint(tmp_path), record],
        resume=info.value.checkpoint)
    assert_same_run(resumed, record.lrs, uninterrupted[name])


def test_early_stopping_resumed_after_its_best_epoch_restores_it_from_the_checkpoint(tmp_path):
    whole, stopper = learner(lr=0.2), nn.EarlyStopping(patience=3)
    fit(whole, callbacks=[stopper], epochs=40)
    stopped, best = stopper.stopped_epoch, stopper.best_epoch
    assert stopped is not None and stopped > best + 1
    first = learner(lr=0.2)
    fit(first, callbacks=[nn.EarlyStopping(patience=3), nn.Checkpoint(tmp_path)],
        epochs=best + 2)  # ends one epoch after the best: the best file holds that epoch
    resumed, again = learner(lr=0.2), nn.EarlyStopping(patience=3)
    fit(resumed, callbacks=[again, nn.Checkpoint(tmp_path)], epochs=40,
        resume=tmp_path / "checkpoint-last.npz")
    assert (again.stopped_epoch, again.best_epoch) == (stopped, best)
    for got, want in zip(params(resumed), params(whole)):
        np.testing.assert_array_equal(got, want)
    # without a Checkpoint to take them from, the last epoch's are kept, with a warning
    lost = learner(lr=0.2)
    with pytest.warns(RuntimeWarning, match="came before the resume"):
        fit(lost, callbacks=[nn.EarlyStopping(patience=3)], epochs=40,
            resume=tmp_path / "checkpoint-last.npz")
