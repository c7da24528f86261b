"""fastnn.data's public API for your own data: arrays, .npz, IDX folders, image folders."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

import fastnn
import fastnn.data.datasets
from fastnn import data
from fastnn.data import DataError, write_idx

Image = pytest.importorskip("PIL.Image")


# --------------------------------------------------------------------------- visibility

def test_data_is_listed_and_documented():
    assert "data" in dir(fastnn) and "nn" in dir(fastnn) and "ops" in dir(fastnn)
    assert "fastnn.data" in fastnn.__doc__
    for name in ("load", "from_arrays", "load_npz", "load_idx", "load_image_folder", "split",
                 "Dataset"):
        assert name in data.__all__ and name in data.__doc__


def test_import_fastnn_stays_light():
    code = ("import sys, fastnn; heavy = [m for m in ('PIL', 'matplotlib', 'fastnn.data') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_docstring_examples():
    for module in (fastnn.data.datasets, fastnn.data):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0


# --------------------------------------------------------------------------- arrays

def test_from_arrays_scales_uint8_and_adds_the_channel_axis():
    x = np.full((10, 5, 6), 255, np.uint8)
    x[0] = 0
    ds = data.from_arrays(x, np.arange(10) % 3, validation=0.3, seed=1)
    assert ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int64
    assert ds.image_shape == (5, 6, 1) and ds.classes == ("0", "1", "2")
    both = np.concatenate([ds.train.x, ds.validation.x])
    assert both.min() == 0.0 and both.max() == 1.0
    assert len(ds.train) + len(ds.validation) == 10
    (x_train, y_train), (x_val, y_val) = ds
    assert x_train is ds.train.x and y_val is ds.validation.y
    assert str(ds).startswith(f"{len(ds.train)} training and {len(ds.validation)} validation")


def test_from_arrays_keeps_float_and_rgb_images():
    x = np.random.default_rng(0).random((6, 4, 4, 3))
    ds = data.from_arrays(x, [0, 1] * 3, validation=0, classes=["a", "b"])
    assert ds.image_shape == (4, 4, 3) and len(ds.validation) == 0
    assert np.allclose(ds.train.x, x.astype(np.float32)) and ds.classes == ("a", "b")


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((3, 4)), [0, 1, 2], r"shape \(n, height, width\)"),
    (np.zeros((3, 4, 4, 2)), [0, 1, 2], r"width, 1 or 3\), got \(3, 4, 4, 2\)"),
    (np.zeros((3, 4, 4), bool), [0, 1, 2], "must be uint8"),
    (np.full((3, 4, 4), 300), [0, 1, 2], "integer pixels must be 0-255"),
    (np.full((3, 4, 4), 2.0), [0, 1, 2], r"float pixels must be in \[0, 1\]"),
    (np.full((3, 4, 4), np.nan), [0, 1, 2], "48 pixel.s. are NaN"),
    (np.zeros((3, 4, 4)), [0, 1], "2 labels but 3 images"),
    (np.zeros((3, 4, 4)), [0.0, 1.0, 2.0], "labels must be integers"),
    (np.zeros((3, 4, 4)), [[0], [1], [2]], "labels must be 1-D"),
    (np.zeros((3, 4, 4)), [0, -1, 2], "labels must be >= 0"),
    (np.zeros((0, 4, 4)), np.zeros(0, int), "no images"),
])
def test_from_arrays_refuses_clearly(x, y, message):
    with pytest.raises(DataError, match=message) as info:
        data.from_arrays(x, y)
    assert str(info.value).startswith("arrays: ") and "\n" not in str(info.value)


def test_from_arrays_class_names_must_cover_the_labels():
    with pytest.raises(DataError, match="label 2 but only 2 class names"):
        data.from_arrays(np.zeros((3, 2, 2)), [0, 1, 2], classes=["a", "b"])


def test_split_is_seeded_per_class_and_in_order():
    y = np.repeat(np.arange(4), 10)
    x = np.arange(40)
    a_train, a_val = data.split(x, y, validation=0.2, seed=3)
    b_train, b_val = data.split(x, y, validation=0.2, seed=3)
    c_train, c_val = data.split(x, y, validation=0.2, seed=4)
    assert np.array_equal(a_val.x, b_val.x) and not np.array_equal(a_val.x, c_val.x)
    assert np.bincount(a_val.y).tolist() == [2, 2, 2, 2]
    assert np.all(np.diff(a_train.x) > 0) and np.all(np.diff(a_val.x) > 0)
    assert sorted(np.concatenate([a_train.x, a_val.x]).tolist()) == list(range(40))
    last_train, last_val = data.split(x, y, validation=0.25, seed=None)
    assert last_val.x.tolist() == list(range(30, 40)) and len(last_train) == 30
    # a class of two or more images always gives one to validation
    _, val = data.split(np.arange(5), np.array([0, 0, 0, 1, 1]), validation=0.1)
    assert sorted(set(val.y.tolist())) == [0, 1]
    # classes of one image each still give round(n * validation) in all
    _, val = data.split(np.arange(10), np.arange(10), validation=0.2, seed=0)
    assert len(val) == 2
    with pytest.raises(DataError, match=r"validation must be a fraction in \[0, 1\)"):
        data.split(x, y, validation=1.0)


# --------------------------------------------------------------------------- .npz

def test_npz_train_test_layout(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((6, 28, 28), np.uint8), y_train=np.arange(6) % 3,
             x_test=np.zeros((2, 28, 28, 1), np.uint8), y_test=np.array([0, 4]))
    ds = data.load(path)
    assert (len(ds.train), len(ds.validation)) == (6, 2) and ds.kind == "npz"
    assert ds.classes == ("0", "1", "2", "3", "4") and ds.image_shape == (28, 28, 1)


def test_npz_x_y_layout_with_class_names(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 8, 8, 3), np.float32), y=np.arange(10) % 2,
             classes=np.array(["no", "yes"]))
    ds = data.load_npz(path, validation=0.4, seed=2)
    assert (len(ds.train), len(ds.validation)) == (6, 4) and ds.classes == ("no", "yes")


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 4, 4))}, "expected arrays x_train, y_train, x_test, y_test .or x, "
                                      "y.; has: images"),
    ({"x": np.zeros((2, 4, 4)), "y": np.zeros(3, int)}, "3 labels but 2 images"),
    ({"x_train": np.zeros((2, 4, 4)), "y_train": [0, 1], "x_test": np.zeros((1, 5, 5)),
      "y_test": [0]}, "must be the same size"),
    ({"x_train": np.zeros((2, 4, 4)), "y_train": [0, 1], "x_test": np.zeros((1, 4, 4)),
      "y_test": [0.5]}, r"\[y_test\]: labels must be integers"),
])
def test_npz_refuses_clearly(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        data.load_npz(path)
    assert str(path) in str(info.value)


def test_npz_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz: does not exist"):
        data.load_npz(tmp_path / "nowhere.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz"):
        data.load(tmp_path / "broken.npz")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="notes.txt: expected a folder"):
        data.load(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- IDX folders

# The names Fashion-MNIST (github.com/zalandoresearch/fashion-mnist) and KMNIST
# (github.com/rois-codh/kmnist) distribute their MNIST-format files under: the same as
# MNIST's, gzipped as downloaded, often unpacked afterwards.
DOWNLOADED_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def _write_idx_set(folder, names, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              (np.arange(n_test) % 10).astype(np.uint8)]
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(names, arrays):
        write_idx(folder / name, array, compress=name.endswith(".gz"))
    return arrays


@pytest.mark.parametrize("dataset", ["fashion-mnist", "kmnist"])
@pytest.mark.parametrize("form", ["gzipped", "unpacked", "dotted"])
def test_idx_folders_as_distributed(tmp_path, dataset, form):
    names = {"gzipped": DOWNLOADED_NAMES,
             "unpacked": [name.removesuffix(".gz") for name in DOWNLOADED_NAMES],
             "dotted": [name.removesuffix(".gz").replace("-idx", ".idx")
                        for name in DOWNLOADED_NAMES]}[form]
    arrays = _write_idx_set(tmp_path / dataset, names)
    ds = data.load(tmp_path / dataset)
    assert ds.kind == "idx" and (len(ds.train), len(ds.validation)) == (12, 5)
    assert np.allclose(ds.train.x[..., 0] * 255, arrays[0])
    assert np.array_equal(ds.validation.y, arrays[3]) and len(ds.classes) == 10
    assert data.load_idx(tmp_path / dataset).train.x.shape == (12, 28, 28, 1)


def test_idx_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        data.load_idx(tmp_path)
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files .* and no class folders"):
        data.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load(tmp_path / "nowhere")


# --------------------------------------------------------------------------- image folders

def _image_folder(root, classes=("cat", "dog", "emu"), per_class=5, size=(40, 30),
                  suffixes=(".png", ".jpg", ".jpeg", ".bmp", ".gif")):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shade = 40 + 80 * k
            Image.new("RGB", size, (shade, shade, 10 * i)).save(
                root / name / f"{i}{suffixes[i % len(suffixes)]}")
    return root


def test_image_folder_grayscale_28x28(tmp_path):
    root = _image_folder(tmp_path / "pets")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_bytes(b"")
    ds = data.load(root)
    assert ds.kind == "images" and ds.classes == ("cat", "dog", "emu")
    assert ds.image_shape == (28, 28, 1) and ds.train.x.dtype == np.float32
    assert (len(ds.train), len(ds.validation)) == (12, 3)
    assert np.bincount(ds.validation.y).tolist() == [1, 1, 1]
    # the cat images are darker than the emus
    assert ds.train.x[ds.train.y == 0].mean() < ds.train.x[ds.train.y == 2].mean()
    again = data.load_image_folder(root)
    assert np.array_equal(again.validation.x, ds.validation.x)


def test_image_folder_rgb_and_sizes(tmp_path):
    root = _image_folder(tmp_path / "pets", per_class=2)
    assert data.load_image_folder(root, color="rgb", size=16).image_shape == (16, 16, 3)
    assert data.load_image_folder(root, size=(10, 20)).image_shape == (10, 20, 1)
    kept = data.load_image_folder(root, size=None, validation=0)
    assert kept.image_shape == (30, 40, 1) and len(kept.train) == 6


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: does not exist"):
        data.load_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    Image.new("L", (5, 5)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="flat: no class folders.*lie directly in it"):
        data.load_image_folder(tmp_path / "flat")
    root = _image_folder(tmp_path / "a", per_class=1)
    (root / "fox").mkdir()
    (root / "fox" / "readme.txt").write_text("")
    with pytest.raises(DataError, match="fox: class 'fox' has no images"):
        data.load_image_folder(root)
    root = _image_folder(tmp_path / "b", per_class=2)
    (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg: cannot read the image"):
        data.load(root)
    whole = (root / "dog" / "1.jpg").read_bytes()
    (root / "dog" / "broken.jpg").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError, match=r"broken\.jpg: cannot read the image .OSError"):
        data.load(root)
    root = _image_folder(tmp_path / "c", per_class=2)
    Image.new("RGB", (12, 12)).save(root / "emu" / "small.png")
    with pytest.raises(DataError, match="small.png: 12x12 but .* is 40x30; the images differ"):
        data.load_image_folder(root, size=None)
    assert data.load_image_folder(root).image_shape == (28, 28, 1)
    with pytest.raises(DataError, match="color must be one of grayscale, rgb"):
        data.load_image_folder(root, color="cmyk")
    with pytest.raises(DataError, match="size must be"):
        data.load_image_folder(root, size=(0, 5))


def test_without_pillow_the_message_names_the_extra(tmp_path, monkeypatch):
    root = _image_folder(tmp_path / "pets", per_class=1)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[images\]'"):
        data.load(root)


def test_read_image(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(path)
    pixels = data.read_image(path)
    assert pixels.shape == (28, 28, 1) and abs(pixels.mean() - 0.299) < 0.01
    assert data.read_image(path, size=None, color="rgb").shape == (48, 64, 3)
    with pytest.raises(FileNotFoundError):
        data.read_image(tmp_path / "none.png")


# --------------------------------------------------------------------------- the CLI

SMALL = ["--epochs", "1", "--batch-size", "16", "--threads", "1", "--no-progress"]


def _cli(argv):
    from fastnn.cli import main

    return main(argv)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A tiny run on a folder of colour images in three classes."""
    tmp = tmp_path_factory.mktemp("own")
    root = _image_folder(tmp / "pets", per_class=6, size=(64, 48))
    out = tmp / "run"
    assert _cli(["train", *SMALL, "--data", str(root), "--out", str(out)]) == 0
    return root, out


def test_train_on_an_image_folder(folder_run, capsys):
    import json

    from fastnn import nn

    root, out = folder_run
    history = json.loads((out / "history.json").read_text())
    assert history["classes"] == ["cat", "dog", "emu"]
    assert history["train_digits"] == 14 and history["evaluation_digits"] == 4
    model = nn.load(out / "model.npz")
    assert model(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 3)


def test_train_says_what_it_loaded(tmp_path, capsys):
    root = _image_folder(tmp_path / "pets", per_class=2, size=(64, 48))
    assert _cli(["train", *SMALL, "--data", str(root), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (f"data: {root}: 3 training and 3 validation images, 28x28x1, 3 classes "
                    "(cat, dog, emu) (read as 28x28 grayscale for the seed convnet)")


def test_train_on_idx_and_rgb_npz(tmp_path, capsys):
    _write_idx_set(tmp_path / "fashion", DOWNLOADED_NAMES, n_train=20, n_test=4)
    assert _cli(["train", *SMALL, "--data", str(tmp_path / "fashion"),
                 "--out", str(tmp_path / "o1")]) == 0
    assert "20 training and 4 validation images, 28x28x1, 10 classes" in capsys.readouterr().out
    np.savez(tmp_path / "rgb.npz", x=np.random.default_rng(0).random((12, 28, 28, 3)),
             y=np.arange(12) % 2)
    assert _cli(["train", *SMALL, "--data", str(tmp_path / "rgb.npz"),
                 "--out", str(tmp_path / "o2")]) == 0
    assert "28x28x1, 2 classes (0, 1) (RGB, converted to grayscale for the seed convnet)" \
        in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez(p / "big.npz", x=np.zeros((4, 32, 32), np.uint8), y=[0, 1, 0, 1]),
     "--data {tmp}/big.npz: the images are 32x32; the seed convnet takes 28x28"),
    (lambda p: np.savez(p / "one.npz", x=np.zeros((4, 28, 28), np.uint8), y=[0, 0, 0, 0]),
     "--data {tmp}/one.npz: has only one class (0)"),
    (lambda p: (p / "empty").mkdir(), "--data {tmp}/empty: no MNIST IDX files"),
    (lambda p: _image_folder(p / "pets", per_class=1).joinpath("cat", "x.png").write_bytes(
        b"junk"), "--data {tmp}/pets: {tmp}/pets/cat/x.png: cannot read the image"),
])
def test_train_refuses_unusable_data_in_one_line(tmp_path, capsys, make, message):
    make(tmp_path)
    name = next(p.name for p in tmp_path.iterdir())
    assert _cli(["train", *SMALL, "--data", str(tmp_path / name),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "o").exists()


def test_evaluate_on_own_data(folder_run, tmp_path, capsys):
    root, out = folder_run
    assert _cli(["evaluate", str(out / "model.npz"), "--data", str(root)]) == 0
    text = capsys.readouterr().out
    assert "3 classes (cat, dog, emu)" in text and "on 4 evaluation digits" in text
    np.savez(tmp_path / "many.npz", x=np.zeros((10, 28, 28), np.uint8), y=np.arange(10))
    assert _cli(["evaluate", str(out / "model.npz"), "--data", str(tmp_path / "many.npz")]) == 2
    assert "the model scores 3 classes but --data" in capsys.readouterr().err


def test_predict_converts_and_resizes_and_says_so(folder_run, tmp_path, capsys):
    root, out = folder_run
    photo = tmp_path / "digit.jpg"
    Image.new("RGB", (640, 480), (30, 30, 30)).save(photo)
    assert _cli(["predict", str(out / "model.npz"), str(photo)]) == 0
    text = capsys.readouterr().out
    assert f"{photo}: 640x480 RGB, converted to grayscale and resized to 28x28" in text
    best = next(line for line in text.splitlines() if ": class " in line)
    assert any(f"'{name}'" in best for name in ("cat", "dog", "emu"))
    small = tmp_path / "gray.png"
    Image.new("L", (28, 28)).save(small)
    assert _cli(["predict", str(out / "model.npz"), str(small)]) == 0
    assert "resized" not in capsys.readouterr().out
    big = tmp_path / "gray.bmp"
    Image.new("L", (56, 56)).save(big)
    assert _cli(["predict", str(out / "model.npz"), str(big)]) == 0
    assert f"{big}: 56x56 grayscale, resized to 28x28" in capsys.readouterr().out


def test_predict_without_pillow_names_the_extra(folder_run, tmp_path, capsys, monkeypatch):
    _, out = folder_run
    photo = tmp_path / "digit.jpg"
    Image.new("RGB", (28, 28)).save(photo)
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert _cli(["predict", str(out / "model.npz"), str(photo)]) == 2
    assert "needs Pillow: pip install 'fastnn[images]'" in capsys.readouterr().err


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's "Your own data" Python example, given the folders it names."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    _write_idx_set(tmp_path / "fashion-mnist", DOWNLOADED_NAMES)
    _image_folder(tmp_path / "photos", per_class=4)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out == ["80 training and 20 validation images, 28x28x1, 4 classes (a, b, c, d)",
                   "80 training and 20 validation images, 28x28x1, 4 classes (0, 1, 2, 3)",
                   "12 training and 5 validation images, 28x28x1, 10 classes "
                   "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)",
                   "9 training and 3 validation images, 28x28x1, 3 classes (cat, dog, emu)"]
