"""Checkpoints and resume: a resumed run ends bit-identical to an uninterrupted one; Ctrl-C
stops at the end of a batch with a checkpoint and says how to resume."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from fastnn import models, nn

EPOCHS, BS = 3, 50


def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 28, 28, 1)).astype(np.float32)
    Y = rng.integers(0, 10, 300)
    return X, Y, X[:60], Y[:60]


def seed_learner():
    # the seed convnet: Adam state, L2, two Dropout layers with their own generators
    return models.seed_learner(models.seed_convnet(seed=3), lr=0.01)


def params(learner):
    return [p.tensor.copy() for p in learner.model.parameters]


def fit(learner, epochs, callbacks=(), resume=None):
    X, Y, Xv, Yv = data()
    return learner.fit(X, Y, epochs=epochs, bs=BS, validation=(Xv, Yv), progress=False,
                       seed=7, callbacks=callbacks, resume=resume)


@pytest.fixture(scope="module")
def uninterrupted():
    learner = seed_learner()
    fit(learner, EPOCHS)
    return params(learner), learner.history


def assert_same_run(learner, uninterrupted):
    expected, history = uninterrupted
    for got, want in zip(params(learner), expected):
        np.testing.assert_array_equal(got, want)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert learner.history[key] == history[key], key


def test_resuming_after_an_epoch_is_bit_identical(tmp_path, uninterrupted):
    first = seed_learner()
    fit(first, 1, callbacks=[nn.Checkpoint(tmp_path)])
    resumed = seed_learner()  # fresh weights and optimizer: all comes from the file
    fit(resumed, EPOCHS, resume=tmp_path / "checkpoint-last.npz")
    assert_same_run(resumed, uninterrupted)


class InterruptAt:
    """A metric that delivers SIGINT ``times`` times in the middle of its ``at``-th call
    (as Ctrl-C would)."""

    __name__ = "accuracy"

    def __init__(self, at, times=1):
        self.calls, self.at, self.times = 0, at, times

    def __call__(self, output, target):
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)
        return nn.accuracy(output, target)


def test_ctrl_c_stops_at_the_end_of_the_batch_and_resumes_bit_identically(tmp_path,
                                                                         uninterrupted):
    first = seed_learner()
    # calls 1-6 are epoch 1's steps, 7-8 its validation batches: call 10 is epoch 2, step 2
    first.metrics = {"accuracy": InterruptAt(10)}
    with pytest.raises(nn.TrainingInterrupted) as info:
        fit(first, EPOCHS, callbacks=[nn.Checkpoint(tmp_path)])
    stop = info.value
    assert (stop.epoch, stop.step, stop.steps) == (2, 2, 6)
    assert stop.checkpoint == str(tmp_path / "checkpoint-last.npz")
    assert str(stop) == (f"Learner.fit: interrupted at epoch 2/3 after step 2/6; the training "
                         f"state is in {stop.checkpoint}: resume with fit(..., "
                         f"resume={stop.checkpoint!r})")
    assert isinstance(stop, KeyboardInterrupt)
    resumed = seed_learner()
    fit(resumed, EPOCHS, resume=stop.checkpoint)
    assert_same_run(resumed, uninterrupted)


def test_ctrl_c_during_validation_stops_at_the_end_of_the_epoch(tmp_path, uninterrupted):
    first = seed_learner()
    first.metrics = {"accuracy": InterruptAt(8)}  # epoch 1's last validation batch
    with pytest.raises(nn.TrainingInterrupted, match="interrupted at the end of epoch 1/3"):
        fit(first, EPOCHS, callbacks=[nn.Checkpoint(tmp_path)])
    resumed = seed_learner()
    fit(resumed, EPOCHS, resume=tmp_path / "checkpoint-last.npz")
    assert_same_run(resumed, uninterrupted)


def test_ctrl_c_without_a_checkpoint_says_so_and_a_second_one_interrupts_at_once():
    learner = seed_learner()
    learner.metrics = {"accuracy": InterruptAt(2)}
    with pytest.raises(nn.TrainingInterrupted, match="no checkpoint was written"):
        fit(learner, EPOCHS)
    learner = seed_learner()
    learner.metrics = {"accuracy": InterruptAt(2, times=2)}
    with pytest.raises(KeyboardInterrupt) as info:
        fit(learner, EPOCHS)
    assert not isinstance(info.value, nn.TrainingInterrupted)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_the_best_checkpoint_is_a_model_file(tmp_path):
    learner = seed_learner()
    fit(learner, 2, callbacks=[nn.Checkpoint(tmp_path)])
    model = nn.load(tmp_path / "checkpoint-best.npz")
    assert sum(p.tensor.size for p in model.parameters) == 455_946


def test_resume_refuses_another_run_or_a_plain_model(tmp_path):
    learner = seed_learner()
    fit(learner, 1, callbacks=[nn.Checkpoint(tmp_path)])
    X, Y, _, _ = data()
    with pytest.raises(ValueError, match="resume with the same data, bs"):
        seed_learner().fit(X, Y, epochs=2, bs=BS + 1, progress=False,
                           resume=tmp_path / "checkpoint-last.npz")
    nn.save(learner.model, tmp_path / "model.npz")
    with pytest.raises(nn.ModelFileError, match="without training state, not a checkpoint"):
        seed_learner().fit(X, Y, epochs=2, bs=BS, resume=tmp_path / "model.npz")
    small = nn.Learner(nn.Sequential(nn.Flatten(), nn.Linear(784, 10, rng=0)),
                       "softmax_cross_entropy", nn.Adam())
    with pytest.raises(nn.ModelFileError, match="are not this model's"):
        small.fit(X, Y, epochs=2, bs=BS, resume=tmp_path / "checkpoint-last.npz")
