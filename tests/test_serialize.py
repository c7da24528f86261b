"""nn.save / nn.load: atomic writes, clear errors for unusable files, and no code named
in a file is ever imported."""

from __future__ import annotations

import doctest
import errno
import json
import os
import sys
import zipfile

import numpy as np
import pytest

from fastnn import _files, nn


def _model():
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))


def _write_raw(path, header, **arrays):
    """An .npz laid out as nn.save lays it out, with any header."""
    text = header if isinstance(header, str) else json.dumps(header)
    np.savez(path, __fastnn__=np.array(text), **arrays)
    return path


def _spec(model_spec):
    return {"format": 1, "model": model_spec}


# --------------------------------------------------------------------------- atomic saving

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    nn.save(_model(), path)
    before = path.read_bytes()

    real_savez = np.savez

    def half_then_fail(file, **arrays):  # writes part of an archive, then the disk fills
        real_savez(file, **arrays)
        file.seek(len(before) // 2)
        file.truncate()
        _disk_full()

    monkeypatch.setattr(np, "savez", half_then_fail)
    other = nn.Sequential(nn.Linear(3, 4, rng=5), nn.ReLU(), nn.Linear(4, 2, rng=6))
    with pytest.raises(OSError, match="No space left"):
        nn.save(other, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    nn.load(path)


def test_a_failed_fsync_or_interrupt_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    monkeypatch.setattr(_files.os, "fsync", _disk_full)
    with pytest.raises(OSError):
        nn.save(_model(), path)
    assert os.listdir(tmp_path) == []  # no half-written model, no temporary file
    monkeypatch.undo()

    nn.save(_model(), path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nn.save(_model(), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def test_atomic_write_replaces_keeps_permissions_and_names_the_target(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    if os.name == "posix":
        os.chmod(path, 0o640)
    with _files.atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["notes.txt"]
    if os.name == "posix":
        assert os.stat(path).st_mode & 0o777 == 0o640
    with pytest.raises(FileNotFoundError, match="nowhere"):
        nn.save(_model(), tmp_path / "nowhere" / "model.npz")
    with pytest.raises(ValueError, match="mode"):
        with _files.atomic_write(path, "a"):
            pass


def test_saving_onto_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(OSError):
        nn.save(_model(), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"] and (tmp_path / "model.npz").is_dir()


# --------------------------------------------------------------------------- unusable files

def test_model_file_error_is_a_value_error():
    assert issubclass(nn.ModelFileError, ValueError)


def test_atomic_write_docstring_example():
    result = doctest.testmod(_files)
    assert result.failed == 0 and result.attempted > 0


def _expect(path, *fragments, custom_objects=None):
    with pytest.raises(nn.ModelFileError) as info:
        nn.load(path, custom_objects=custom_objects)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_empty_text_and_npy_files_are_refused(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    _expect(tmp_path / "empty.npz", "the file is empty", "nn.save")
    (tmp_path / "notes.npz").write_text("hello")
    _expect(tmp_path / "notes.npz", "not an .npz archive")
    np.save(tmp_path / "weights.npy", np.zeros((3, 4), np.float32))
    _expect(tmp_path / "weights.npy", "a NumPy .npy array, not a fastnn model")
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_are_refused(tmp_path, keep):
    path = tmp_path / "model.npz"
    nn.save(_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    _expect(path, "truncated or corrupt", "save or train the model again")


def test_a_damaged_member_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    nn.save(_model(), path)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("param/0.weights.npy")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 100] ^= 0xFF  # inside the stored weights: a CRC mismatch
    path.write_bytes(bytes(data))
    _expect(path, "truncated or corrupt")


def test_npz_files_that_are_not_models_are_refused(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.zeros(3))
    _expect(tmp_path / "data.npz", "not a fastnn model", "'__fastnn__'", "'x'")
    _expect(_write_raw(tmp_path / "a.npz", "{not json"), "not valid JSON")
    _expect(_write_raw(tmp_path / "b.npz", [1, 2]), "must be a JSON object")
    _expect(_write_raw(tmp_path / "c.npz", {"format": 2}), "format 2", "newer fastnn")
    _expect(_write_raw(tmp_path / "d.npz", {"format": "1"}), "format '1'")
    _expect(_write_raw(tmp_path / "e.npz", {"format": 1}), "no 'model'")
    _expect(_write_raw(tmp_path / "deep.npz", "[" * 100000 + "]" * 100000), "not valid JSON")
    np.savez(tmp_path / "f.npz", __fastnn__=np.arange(3))
    _expect(tmp_path / "f.npz", "must be a JSON string")
    np.savez(tmp_path / "g.npz", __fastnn__=np.array([{"format": 1}], dtype=object))
    _expect(tmp_path / "g.npz", "pickled Python objects")


@pytest.mark.parametrize("model_spec, fragments", [
    ({"type": "Linear"}, ["a layer entry must be"]),
    ({"type": "Linear", "config": [3, 4]}, ["a layer entry must be"]),
    ("Linear", ["a layer entry must be"]),
    ({"type": 7, "config": {}}, ["a layer entry must be"]),
    ({"type": "Linear", "config": {"in_features": 3}},
     ["Linear cannot be built from the config", "TypeError"]),
    ({"type": "Linear", "config": {"inputs": 3, "outputs": -4}},
     ["Linear cannot be built"]),
    ({"type": "Dropout", "config": {"keep_prob": 7}}, ["keep_prob"]),
    ({"type": "Sequential", "config": {"layers": 5}}, ["Sequential cannot be built"]),
    ({"type": "Sequential", "config": {}}, ["Sequential cannot be built"]),
    ({"type": "Sequential", "config": {"layers": [
        {"type": "ReLU", "config": {}},
        {"type": "Sequential", "config": {"layers": [{"type": "Nope", "config": {}}]}}]}},
     ["layer 1.0: unknown layer type 'Nope'"]),
])
def test_malformed_architectures_are_refused(tmp_path, model_spec, fragments):
    _expect(_write_raw(tmp_path / "m.npz", _spec(model_spec)), *fragments)


@pytest.mark.parametrize("depth", [2000, 5000])
def test_deeply_nested_models_are_refused_not_crashed(tmp_path, depth):
    text = ('{"format": 1, "model": ' + '{"type": "Sequential", "config": {"layers": [' * depth
            + '{"type": "ReLU", "config": {}}' + "]}}" * depth + "}")
    _expect(_write_raw(tmp_path / "deep.npz", text), "RecursionError")


def test_parameters_must_fit_the_architecture(tmp_path):
    spec = _spec({"type": "Linear", "config": {"inputs": 3, "outputs": 2}})
    w, b = np.zeros((3, 2), np.float32), np.zeros(2, np.float32)
    _expect(_write_raw(tmp_path / "a.npz", spec, **{"param/weights": w}), "missing ['param/bias']")
    _expect(_write_raw(tmp_path / "b.npz", spec, **{"param/weights": w.T, "param/bias": b}),
            "'weights' has shape (2, 3)")
    _expect(_write_raw(tmp_path / "c.npz", spec,
                       **{"param/weights": w.astype(np.int64), "param/bias": b}),
            "holds int64, expected floats")
    loaded = nn.load(_write_raw(tmp_path / "d.npz", spec,
                                **{"param/weights": w + 1, "param/bias": b}))
    assert isinstance(loaded, nn.Linear) and (loaded.weights.tensor == 1).all()


# --------------------------------------------------------------------------- no imports

def test_loading_never_imports_the_module_a_file_names(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "fastnn_evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from fastnn import nn\n"
        "class Evil(nn.Layer):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("fastnn_evil_module:Evil", "os:system", "subprocess:Popen",
                 "no_such_module_anywhere:Thing"):
        path = _write_raw(tmp_path / "m.npz",
                          _spec({"type": name, "config": {"command": "echo pwned"}}))
        message = _expect(path, f"unknown layer type {name!r}", "never imports",
                          "@fastnn.nn.register_layer", "custom_objects=")
        assert len(message) < 400
    assert not marker.exists() and "fastnn_evil_module" not in sys.modules
    # private base classes of fastnn's own layers are not loadable either
    _expect(_write_raw(tmp_path / "p.npz", _spec({"type": "_Elementwise", "config": {}})),
            "unknown layer type '_Elementwise'")


class Doubler(nn.Layer):
    def forward(self, X):
        return X * 2, lambda D: D * 2


def test_custom_classes_load_only_when_opted_in(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    nn.save(nn.Sequential(nn.Linear(2, 2, rng=0), Doubler()), path)
    saved_name = json.loads(str(np.load(path)["__fastnn__"]))["model"]["config"]["layers"][1]
    assert saved_name["type"] == f"{__name__}:Doubler"  # the format is unchanged
    message = _expect(path, "layer 1: unknown layer type", "is defined here but not registered")
    assert "custom_objects={'Doubler': Doubler}" in message
    for key in ("Doubler", f"{__name__}:Doubler"):
        assert isinstance(nn.load(path, custom_objects={key: Doubler})[1], Doubler)
    with pytest.raises(TypeError, match="custom_objects"):
        nn.load(path, custom_objects={"Doubler": print})
    with pytest.raises(TypeError, match="custom_objects"):
        nn.load(path, custom_objects=[Doubler])

    monkeypatch.setattr(nn.Layer, "registry", dict(nn.Layer.registry))
    assert nn.register_layer(Doubler) is Doubler
    assert isinstance(nn.load(path)[1], Doubler)
    with pytest.raises(TypeError, match="register_layer"):
        nn.register_layer(dict)


def test_every_fastnn_layer_is_registered_under_the_name_files_use():
    public = set(nn.layers.__all__)
    assert public <= set(nn.Layer.registry)
    assert all(nn.Layer.registry[name].__name__ == name for name in public)
    assert not any(name.startswith("_") for name in nn.Layer.registry)


def test_files_in_the_existing_format_still_load(tmp_path):
    """The layout nn.save has always written, built by hand: it must keep loading."""
    spec = _spec({"type": "Sequential", "config": {"layers": [
        {"type": "Linear", "config": {"inputs": 3, "outputs": 2, "activation": "relu",
                                      "weight_decay": 0.0, "dtype": "float32"}},
        {"type": "Dropout", "config": {"keep_prob": 0.5, "seed": 3}},
    ]}})
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = _write_raw(tmp_path / "old.npz", spec,
                      **{"param/0.weights": w, "param/0.bias": np.ones(2, np.float32)})
    model = nn.load(path)
    np.testing.assert_array_equal(model[0].weights.tensor, w)
    assert model[1].keep_prob == 0.5
