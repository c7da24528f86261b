"""`fastnn train`, `fastnn evaluate`, `fastnn predict` and the seed convnet they use."""

from __future__ import annotations

import doctest
import errno
import json

import numpy as np
import pytest

from fastnn import _files, backends, models, nn
from fastnn.cli import main as cli
from fastnn.commands import train as train_command
from fastnn.data import load_mnist

SMALL = ["--epochs", "1", "--limit", "96", "--batch-size", "32", "--threads", "1",
         "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run on the reference backend, shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    assert cli(["train", *SMALL, "--backend", "reference", "--out", str(out)]) == 0
    return out


def _history(out):
    return json.loads((out / "history.json").read_text())


# --------------------------------------------------------------------------- the model

def test_seed_convnet_is_the_seed_network():
    model = models.seed_convnet(seed=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Conv2d", "MaxPool2d", "LocalResponseNorm", "Conv2d", "MaxPool2d",
                     "LocalResponseNorm", "Flatten", "Linear", "Dropout", "Linear", "Dropout",
                     "Linear"]
    conv1, conv2 = model[0], model[3]
    assert conv1.weights.shape == (3, 3, 1, 32) and conv2.weights.shape == (3, 3, 32, 64)
    assert conv1.padding == conv2.padding == "same"
    assert conv1.activation == conv2.activation == "relu"
    assert conv1.weight_decay == conv2.weight_decay == 0.001
    dense = [model[7], model[9], model[11]]
    assert [d.weights.shape for d in dense] == [(3136, 128), (128, 256), (256, 10)]
    assert [d.activation for d in dense] == ["tanh", "tanh", None]
    assert all(d.weight_decay == 0.0 for d in dense)
    assert model[8].keep_prob == model[10].keep_prob == 0.8
    assert model[1].kernel == model[1].stride == (2, 2)
    lrn = model[2].config()
    assert (lrn["depth_radius"], lrn["bias"], lrn["alpha"], lrn["beta"]) == (5, 1.0, 1e-4, 0.75)
    # TFLearn's initialisations: uniform scaling for convolutions, N(0, 0.02) truncated at 2σ
    assert np.abs(conv2.weights.tensor).max() <= np.sqrt(3 / (3 * 3 * 32))
    assert np.abs(dense[0].weights.tensor).max() <= 0.04
    assert dense[0].weights.tensor.std() == pytest.approx(0.02 * 0.88, rel=0.05)
    assert all(not layer.bias.tensor.any() for layer in (conv1, conv2, *dense))
    logits = model.eval()(np.zeros((3, 28, 28, 1), np.float32))
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_models_docstring_examples():
    with backends.use("reference"):
        result = doctest.testmod(models, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_seed_convnet_is_a_function_of_its_seed():
    a, b, c = (models.seed_convnet(seed=s) for s in (1, 1, 2))
    for pa, pb in zip(a.parameters, b.parameters):
        assert np.array_equal(pa.tensor, pb.tensor)
    assert not np.array_equal(a[0].weights.tensor, c[0].weights.tensor)
    assert a[8].seed == b[8].seed != a[10].seed


def test_seed_learner_uses_adam_and_cross_entropy():
    learner = models.seed_learner(models.seed_convnet())
    assert isinstance(learner.optimizer, nn.Adam) and learner.optimizer.lr == 0.01
    assert learner.loss is nn.softmax_cross_entropy and "accuracy" in learner.metrics


# --------------------------------------------------------------------------- train

def test_train_writes_model_history_and_curves(trained, capsys):
    history = _history(trained)
    assert history["epochs"] == 1 and history["train_digits"] == 96
    assert history["evaluation_digits"] == 96 and history["backend"] == "reference"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "samples_per_s"):
        assert len(history[key]) == 1 and np.isfinite(history[key][0])
    model = nn.load(trained / "model.npz")
    assert [type(layer).__name__ for layer in model] == [
        type(layer).__name__ for layer in models.seed_convnet()]
    pytest.importorskip("matplotlib")
    assert (trained / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_train_prints_epochs_and_final_accuracy(tmp_path, capsys):
    assert cli(["train", *SMALL, "--limit", "40", "--backend", "reference",
                "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1: loss" in out and "images/s" in out
    assert "final: validation accuracy" in out and "model.npz" in out


@pytest.mark.parametrize("backend", sorted({"reference", backends.default_for().name}))
def test_same_seed_same_numbers(tmp_path, backend):
    runs = []
    for name in ("a", "b", "c"):
        seed = "7" if name != "c" else "8"
        assert cli(["train", *SMALL, "--limit", "64", "--backend", backend, "--seed", seed,
                    "--out", str(tmp_path / name)]) == 0
        runs.append(_history(tmp_path / name))
    a, b, c = runs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert a[key] == b[key]
    assert a["loss"] != c["loss"]
    weights_a = np.load(tmp_path / "a" / "model.npz")
    weights_b = np.load(tmp_path / "b" / "model.npz")
    for key in weights_a.files:
        assert np.array_equal(weights_a[key], weights_b[key])


@pytest.mark.slow
def test_training_learns(tmp_path, capsys):
    """A real (short) run: 3 epochs on 1,000 digits reach well beyond chance."""
    assert cli(["train", "--epochs", "3", "--limit", "1000", "--threads", "1",
                "--no-progress", "--out", str(tmp_path)]) == 0
    history = _history(tmp_path)
    assert history["val_accuracy"][-1] > 0.8
    assert history["loss"][-1] < history["loss"][0]


# --------------------------------------------------------------------------- evaluate

def test_evaluate_matches_the_learner(trained, capsys):
    assert cli(["evaluate", str(trained / "model.npz"), "--limit", "200",
                "--backend", "reference"]) == 0
    out = capsys.readouterr().out
    _, (x_eval, y_eval) = load_mnist()
    with backends.use("reference"):
        scores = models.seed_learner(nn.load(trained / "model.npz")).evaluate(
            x_eval[:200], y_eval[:200])
    assert f"accuracy {100 * scores['accuracy']:.2f}% on 200 evaluation digits" in out
    assert f"loss {scores['loss']:.4f}" in out


# --------------------------------------------------------------------------- predict

@pytest.fixture(scope="module")
def digit():
    _, (x_eval, y_eval) = load_mnist(dtype=np.uint8, normalize=False)
    return x_eval[0, :, :, 0], int(y_eval[0])


def _predicted(out):
    line = next(line for line in out.splitlines() if ": class " in line)
    return int(line.split(": class ")[1].split()[0])


def test_predict_npy(trained, digit, tmp_path, capsys):
    pixels, _ = digit
    np.save(tmp_path / "digit.npy", pixels)
    assert cli(["predict", str(trained / "model.npz"), str(tmp_path / "digit.npy"),
                "--backend", "reference"]) == 0
    out = capsys.readouterr().out
    probabilities = [float(p.split(": ")[1]) for p in
                     out.split("probabilities:")[1].strip().split("  ")]
    assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1, abs=0.01)
    with backends.use("reference"):
        expected = models.seed_learner(nn.load(trained / "model.npz")).predict_classes(
            pixels[None, :, :, None].astype(np.float32) / 255)
    assert _predicted(out) == int(expected[0])


def test_predict_png_matches_npy(trained, digit, tmp_path, capsys):
    plt = pytest.importorskip("matplotlib.pyplot")
    pixels, _ = digit
    plt.imsave(tmp_path / "digit.png", pixels, cmap="gray", vmin=0, vmax=255)
    np.save(tmp_path / "digit.npy", pixels)
    model = str(trained / "model.npz")
    assert cli(["predict", model, str(tmp_path / "digit.png"), "--backend", "reference"]) == 0
    png = capsys.readouterr().out
    assert cli(["predict", model, str(tmp_path / "digit.npy"), "--backend", "reference"]) == 0
    npy = capsys.readouterr().out
    assert png.split(": class")[1] == npy.split(": class")[1]


def test_read_digits_shapes_and_scaling(tmp_path):
    pixels = np.arange(784, dtype=np.int64).reshape(28, 28) % 256
    for name, array in (("u8", pixels.astype(np.uint8)),
                        ("f", (pixels / 255.0).astype(np.float32)[:, :, None]),
                        ("batch", np.stack([pixels.astype(np.uint8)] * 3))):
        np.save(tmp_path / f"{name}.npy", array)
        digits = train_command.read_digits(str(tmp_path / f"{name}.npy"))
        assert digits.dtype == np.float32 and digits.shape[1:] == (28, 28, 1)
        assert digits.shape[0] == (3 if name == "batch" else 1)
        assert digits.max() == pytest.approx(1.0) and digits.min() == 0.0
    inverted = train_command.read_digits(str(tmp_path / "u8.npy"), invert=True)
    assert inverted[0, 0, 0, 0] == 1.0


def _bad_inputs(tmp_path, trained):
    """The unusable files the error tests below name."""
    np.save(tmp_path / "wrong.npy", np.zeros((27, 28)))
    (tmp_path / "digit.txt").write_text("7")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG not an image")
    (tmp_path / "afile").write_text("")
    (tmp_path / "zero.npy").write_bytes(b"")
    (tmp_path / "zero.npz").write_bytes(b"")
    np.save(tmp_path / "none.npy", np.zeros((0, 28, 28), np.uint8))
    nan = np.full((28, 28), 0.5, np.float32)
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "inf.npy", np.full((2, 28, 28, 1), np.inf, np.float32))
    np.save(tmp_path / "f255.npy", np.full((28, 28), 255.0, np.float32))
    np.save(tmp_path / "i300.npy", np.full((28, 28), 300, np.int64))
    np.save(tmp_path / "weights.npy", np.zeros((3, 3)))
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    model = (trained / "model.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(model[:len(model) // 3])
    nn.save(nn.Sequential(nn.Linear(3, 2, rng=0)), tmp_path / "linear.npz")
    np.savez(tmp_path / "evil.npz", __fastnn__=np.array(json.dumps(
        {"format": 1, "model": {"type": "os:system", "config": {"command": "echo no"}}})))
    empty, five = np.zeros((0, 28, 28), np.uint8), np.zeros((5, 28, 28), np.uint8)
    np.savez(tmp_path / "no-train.npz", x_train=empty, y_train=np.zeros(0, np.int64),
             x_test=five, y_test=np.zeros(5, np.int64))
    np.savez(tmp_path / "no-test.npz", x_train=five, y_train=np.zeros(5, np.int64),
             x_test=empty, y_test=np.zeros(0, np.int64))
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{tmp}/missing.npz"], "no model file at {tmp}/missing.npz"),
    (["evaluate", "{tmp}"], "(a folder)"),
    (["predict", "{model}", "{tmp}/missing.npy"], "no such file"),
    (["predict", "{model}", "{tmp}/wrong.npy"], "expected a 28x28 image"),
    (["predict", "{model}", "{tmp}/digit.txt"], "expected a .png or .npy"),
    (["train", "--backend", "no-such-backend", "--out", "{tmp}/o"], "not available"),
    (["train", "--data", "{tmp}/nowhere", "--out", "{tmp}/o"],
     "--data {tmp}/nowhere: does not exist"),
    # --out naming a file, data without training or evaluation digits, corrupt data
    (["train", "--out", "{tmp}/afile"], "--out {tmp}/afile: is a file, not a folder"),
    (["examples", "framework", "--out", "{tmp}/afile"], "--out {tmp}/afile: is a file"),
    (["examples", "no-such-example"], "no example named 'no-such-example'"),
    (["train", "--data", "{tmp}/no-train.npz", "--out", "{tmp}/o"],
     "--data {tmp}/no-train.npz: has no training digits"),
    (["train", "--data", "{tmp}/no-test.npz", "--out", "{tmp}/o"],
     "--data {tmp}/no-test.npz: has no evaluation digits"),
    (["evaluate", "{model}", "--data", "{tmp}/no-test.npz"], "has no evaluation digits"),
    (["train", "--data", "{tmp}/corrupt.npz", "--out", "{tmp}/o"],
     "--data {tmp}/corrupt.npz: not a readable .npz file"),
    (["evaluate", "{model}", "--data", "{tmp}/zero.npz"], "--data {tmp}/zero.npz:"),
    (["evaluate", "{model}", "--data", "{tmp}/idx"],
     "--data {tmp}/idx: {tmp}/idx/t10k-images-idx3-ubyte.gz: not a readable gzip file"),
    # model files that are not usable models
    (["evaluate", "{tmp}/zero.npz"], "{tmp}/zero.npz: the file is empty"),
    (["evaluate", "{tmp}/weights.npy"], "{tmp}/weights.npy: a NumPy .npy array, not a fastnn"),
    (["evaluate", "{tmp}/afile"], "{tmp}/afile: the file is empty"),
    (["predict", "{tmp}/truncated.npz", "{tmp}/nan.npy"], "truncated or corrupt"),
    (["evaluate", "{tmp}/evil.npz"], "unknown layer type 'os:system'"),
    (["evaluate", "{tmp}/linear.npz"], "{tmp}/linear.npz: the model does not take 28x28x1"),
    # images predict must refuse rather than "classify"
    (["predict", "{model}", "{tmp}/zero.npy"], "{tmp}/zero.npy: not a readable .npy file "
                                               "(the file is empty)"),
    (["predict", "{model}", "{tmp}/none.npy"], "{tmp}/none.npy: holds no images"),
    (["predict", "{model}", "{tmp}/nan.npy"], "{tmp}/nan.npy: 1 pixel(s) are NaN or infinite"),
    (["predict", "{model}", "{tmp}/inf.npy"], "1568 pixel(s) are NaN or infinite"),
    (["predict", "{model}", "{tmp}/f255.npy"], "float pixels must be in [0, 1]"),
    (["predict", "{model}", "{tmp}/i300.npy"], "integer pixels must be 0-255"),
    (["predict", "{model}", "{tmp}/strings.npy"], "pixels must be numbers"),
    (["predict", "{model}", "{tmp}/garbage.png"], "{tmp}/garbage.png: cannot read the PNG"),
])
def test_user_errors_are_one_line(trained, tmp_path, capsys, argv, message):
    _bad_inputs(tmp_path, trained)
    argv = [a.format(tmp=tmp_path, model=trained / "model.npz") for a in argv]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"fastnn {argv[0]}: error: ")
    assert message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "o").exists()  # refused before anything was written


@pytest.mark.parametrize("command", [
    "train", "evaluate {model}", "predict {model} {model}", "bench"])
@pytest.mark.parametrize("option, value, wanted", [
    ("--threads", "0", "a whole number from 1 to 1024"),
    ("--threads", "-2", "a whole number from 1 to 1024"),
    ("--threads", "100000", "a whole number from 1 to 1024"),
    ("--threads", "two", "a whole number from 1 to 1024"),
])
def test_thread_counts_are_checked_everywhere(trained, capsys, command, option, value, wanted):
    argv = command.format(model=trained / "model.npz").split() + [option, value]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"fastnn {argv[0]}: error: argument {option}: expected {wanted}, "
                           f"got {value!r} (see `fastnn {argv[0]} --help`)")


@pytest.mark.parametrize("argv", [
    ["train", "--lr", "inf"], ["train", "--lr", "nan"], ["train", "--lr", "-0.1"],
    ["train", "--lr", "0"], ["train", "--lr", "fast"],
    ["train", "--seed", "-1"], ["train", "--seed", "1.5"],
    ["train", "--epochs", "0"], ["train", "--epochs", "-3"], ["train", "--epochs", "2.0"],
    ["train", "--batch-size", "0"], ["train", "--limit", "0"],
    ["evaluate", "m.npz", "--batch-size", "0"], ["evaluate", "m.npz", "--batch-size", "-5"],
    ["evaluate", "m.npz", "--limit", "-1"],
    ["bench", "--min-time", "nan"], ["bench", "--min-time", "0"], ["bench", "--min-time", "-1"],
    ["evaluate"], ["predict", "m.npz"], ["no-such-command"], ["train", "--no-such-option"],
])
def test_bad_option_values_are_usage_errors(tmp_path, capsys, argv):
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ": error: " in err, err
    if argv[-1].startswith(("-", "0", "1", "2", "i", "n", "f")) and len(argv) > 2:
        assert f"argument {argv[-2]}: expected" in err and repr(argv[-1]) in err, err


def test_help_and_exit_status_are_documented(capsys):
    assert cli(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status" in out and "finite number > 0" in out


def test_bench_refuses_an_unwritable_json_before_timing(tmp_path, capsys):
    assert cli(["bench", "--json", str(tmp_path / "nowhere" / "b.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli(["bench", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli(["bench", "--filter", "no-such-case*"]) == 2
    assert "matches none of the" in capsys.readouterr().err


# --------------------------------------------------------------------------- failures

TINY = ["train", "--epochs", "1", "--limit", "16", "--batch-size", "8", "--threads", "1",
        "--no-progress", "--backend", "reference"]


def test_a_diverging_run_saves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.npz").write_bytes(b"the previous model")
    assert cli([*TINY, "--lr", "1e30", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastnn train: error: the training diverged") and "--lr" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["model.npz"]
    assert (out / "model.npz").read_bytes() == b"the previous model"


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_previous_results(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    previous = {name: f"previous {name}".encode() for name in
                ("model.npz", "history.json", "curves.png")}
    for name, data in previous.items():
        (out / name).write_bytes(data)
    monkeypatch.setattr(_files.os, "fsync", _disk_full)  # the disk fills as the data lands
    assert cli([*TINY, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    # the first file written is the first epoch's checkpoint
    assert err.strip() == (f"fastnn train: error: cannot write {out / 'checkpoint-last.npz'} "
                           "(No space left on device); an earlier checkpoint-last.npz there "
                           "is unchanged")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous


def test_history_and_curves_are_written_atomically(tmp_path, monkeypatch):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.7],
               "val_accuracy": [0.4, 0.6]}
    for name, write in (("history.json", train_command.save_history),
                        ("curves.png", train_command.plot_curves)):
        if name == "curves.png":
            pytest.importorskip("matplotlib")
        path = tmp_path / name
        write(history, path)
        before = path.read_bytes()
        assert before
        with monkeypatch.context() as patch:
            patch.setattr(_files.os, "fsync", _disk_full)
            with pytest.raises(OSError, match="No space left"):
                write({**history, "loss": [9.0, 9.0]}, path)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "history.json"]


# --------------------------------------------------------------------------- Ctrl-C, resume

def _run(args, cwd, interrupt_after=None):
    """``fastnn train ...`` in a subprocess; with ``interrupt_after``, SIGINT (Ctrl-C) once
    that text appears on its stdout. Returns (exit status, stdout, stderr)."""
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "fastnn.cli", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if interrupt_after and interrupt_after in line:
                process.send_signal(signal.SIGINT)
                interrupt_after = None
        err = process.stderr.read()
    return process.returncode, "".join(lines), err


RESUMABLE = ["train", "--epochs", "3", "--limit", "600", "--batch-size", "20", "--threads", "1",
             "--no-progress", "--seed", "4"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [[], ["--recipe", "stable", "--early-stopping", "2"]],
                         ids=["seed", "stable-early-stopping"])
def test_ctrl_c_saves_a_checkpoint_and_the_resumed_run_matches(tmp_path, recipe):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _run([*RESUMABLE, *recipe, "--out", str(whole)], tmp_path)[0] == 0
    status, out, err = _run([*RESUMABLE, *recipe, "--out", str(parts)], tmp_path,
                            interrupt_after="epoch 1/3")
    assert status == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastnn train: error: interrupted at "), err
    assert lines[0].endswith(f"resume with: fastnn train --resume "
                             f"{parts / 'checkpoint-last.npz'}")
    assert not (parts / "model.npz").exists()
    status, out, err = _run(["train", "--resume", str(parts / "checkpoint-last.npz"),
                             "--threads", "1", "--no-progress"], tmp_path)
    assert status == 0, err
    resumed, reference = nn.load(parts / "model.npz"), nn.load(whole / "model.npz")
    for a, b in zip(resumed.parameters, reference.parameters):
        np.testing.assert_array_equal(a.tensor, b.tensor)
    history = json.loads((parts / "history.json").read_text())
    assert history["val_loss"] == json.loads((whole / "history.json").read_text())["val_loss"]


def test_resume_refuses_a_contradicting_option_and_a_plain_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli([*TINY[:-2], "--out", str(out)]) == 0
    checkpoint = str(out / "checkpoint-last.npz")
    assert cli(["train", "--resume", checkpoint, "--lr", "0.5"]) == 2
    assert "the run used --lr 0.01; drop --lr 0.5" in capsys.readouterr().err
    assert cli(["train", "--resume", str(out / "model.npz")]) == 2
    assert "without training state, not a checkpoint" in capsys.readouterr().err
    assert cli(["train", "--resume", str(out)]) == 2
    assert "a folder: name the checkpoint in it" in capsys.readouterr().err


# --------------------------------------------------------------------------- recipes, schedules

def _params(path):
    return [p.tensor for p in nn.load(path).parameters]


def test_recipe_seed_is_the_default_run(tmp_path, capsys):
    assert cli(["train", *SMALL, "--out", str(tmp_path / "a")]) == 0
    default = capsys.readouterr().out
    assert cli(["train", *SMALL, "--recipe", "seed", "--out", str(tmp_path / "b")]) == 0
    seed = capsys.readouterr().out
    assert "recipe " not in default and "lr schedule" not in default and "| lr" not in default
    assert "Adam lr 0.01," in default
    a, b = _history(tmp_path / "a"), _history(tmp_path / "b")
    assert a["val_loss"] == b["val_loss"] and a["loss"] == b["loss"]
    assert (a["recipe"], a["lr_schedule"], a["early_stopping"]) == ("seed", "constant", None)
    assert "lr_per_epoch" not in a
    for x, y in zip(_params(tmp_path / "a" / "model.npz"), _params(tmp_path / "b" / "model.npz")):
        np.testing.assert_array_equal(x, y)
    assert len(default.splitlines()) == len(seed.splitlines())


def test_recipe_stable_decays_a_lower_rate(tmp_path, capsys):
    argv = ["train", *SMALL, "--epochs", "3", "--recipe", "stable", "--out", str(tmp_path)]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "Adam lr 0.001," in out
    assert "recipe stable: lr schedule cosine: half a cosine from 0.001 down to 1e-05 over 3 " \
           "epochs" in out
    history = _history(tmp_path)
    assert (history["recipe"], history["lr"], history["lr_schedule"]) == ("stable", 0.001,
                                                                          "cosine")
    lrs = history["lr_per_epoch"]
    assert lrs[0] == 0.001 and lrs[0] > lrs[1] > lrs[2] > 1e-5
    assert out.count(" | lr ") == 3 and "| lr 0.001\n" in out


@pytest.mark.parametrize("schedule, rates", [
    ("step", [0.02] * 3), ("exponential", [0.02, 0.018, 0.0162]), ("constant", None),
])
def test_lr_schedule_overrides_the_recipe(tmp_path, capsys, schedule, rates):
    argv = ["train", *SMALL, "--epochs", "3", "--lr", "0.02", "--lr-schedule", schedule,
            "--out", str(tmp_path)]
    assert cli(argv) == 0
    history = _history(tmp_path)
    assert history["lr_schedule"] == schedule and history["lr"] == 0.02
    if rates is None:
        assert "lr_per_epoch" not in history
    else:
        assert history["lr_per_epoch"] == pytest.approx(rates, rel=1e-12)


def test_early_stopping_keeps_the_best_epoch(tmp_path, capsys):
    argv = ["train", *SMALL, "--epochs", "8", "--early-stopping", "1", "--out", str(tmp_path)]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    history = _history(tmp_path)
    ran, best = len(history["loss"]), history["best_epoch"]
    assert ran < 8 and history["stopped_after_epoch"] == ran
    assert best == 1 + int(np.argmin(history["val_loss"]))
    assert (f"early stopping: the validation loss has not improved for 1 epoch; stopped after "
            f"epoch {ran} of 8, model.npz holds the weights of epoch {best}") in out
    assert f"after {ran} epochs (the weights of epoch {best})" in out
    best_checkpoint = nn.load(tmp_path / "checkpoint-best.npz")
    for x, y in zip(_params(tmp_path / "model.npz"), best_checkpoint.parameters):
        np.testing.assert_array_equal(x, y.tensor)


def test_resume_with_a_schedule_and_early_stopping_matches_the_whole_run(tmp_path, capsys):
    options = [*SMALL, "--lr-schedule", "plateau", "--early-stopping", "2", "--lr", "0.003"]
    assert cli(["train", *options, "--epochs", "4", "--out", str(tmp_path / "whole")]) == 0
    assert cli(["train", *options, "--epochs", "1", "--out", str(tmp_path / "parts")]) == 0
    checkpoint = str(tmp_path / "parts" / "checkpoint-last.npz")
    assert cli(["train", "--resume", checkpoint, "--epochs", "4", "--threads", "1",
                "--no-progress"]) == 0
    whole, parts = _history(tmp_path / "whole"), _history(tmp_path / "parts")
    for key in ("val_loss", "loss", "lr_per_epoch", "lr_schedule", "early_stopping", "lr"):
        assert parts[key] == whole[key], key
    for x, y in zip(_params(tmp_path / "whole" / "model.npz"),
                    _params(tmp_path / "parts" / "model.npz")):
        np.testing.assert_array_equal(x, y)
    capsys.readouterr()
    assert cli(["train", "--resume", checkpoint, "--lr-schedule", "cosine"]) == 2
    assert ("the run used --lr-schedule plateau; drop --lr-schedule cosine"
            in capsys.readouterr().err)
    assert cli(["train", "--resume", checkpoint, "--early-stopping", "5"]) == 2
    assert "the run used --early-stopping 2; drop --early-stopping 5" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--recipe", "fast"], "argument --recipe: invalid choice: 'fast' (choose from "),
    (["--lr-schedule", "linear"], "argument --lr-schedule: invalid choice: 'linear'"),
    (["--early-stopping", "0"], "argument --early-stopping: expected a whole number >= 1, "
                                "got '0'"),
    (["--early-stopping", "two"], "argument --early-stopping: expected a whole number >= 1"),
])
def test_bad_recipe_and_schedule_options_are_usage_errors(tmp_path, capsys, argv, message):
    assert cli(["train", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_without_matplotlib_train_says_how_to_get_the_curves(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    history = {"loss": [1.0], "val_loss": [1.1], "accuracy": [0.5], "val_accuracy": [0.4]}
    assert train_command.plot_curves(history, tmp_path / "curves.png") is None
    assert capsys.readouterr().out.strip() == (
        "no curves.png: drawing it needs matplotlib, which is not installed "
        "(pip install 'fastnn[plot]', then train again)")
    assert not (tmp_path / "curves.png").exists()


def test_bare_fastnn_shows_help_and_the_help_is_plain_text(capsys):
    assert cli([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastnn") and "train" in text and "``" not in text
    assert cli(["--help"]) == 0
    assert "``" not in capsys.readouterr().out


def test_no_progress_bar_without_a_terminal(tmp_path, capsys):
    # pytest's captured stderr is not a terminal: the per-epoch line, and no bar frames
    without_flag = [a for a in TINY if a != "--no-progress"]
    assert cli([*without_flag, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1:" in captured.out
    assert "sample/s" not in captured.err and "\r" not in captured.err


def test_summary_of_a_saved_model(tmp_path, capsys):
    path = tmp_path / "model.npz"
    nn.save(models.seed_convnet(seed=0), path)
    assert cli(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "total: 455,946 parameters, 1,823,784 bytes" in out
    assert cli(["summary", str(path), "--input-shape", "10,10,3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastnn summary: error: ") and "give --input-shape" in err
    assert cli(["summary", str(tmp_path / "missing.npz")]) == 2
