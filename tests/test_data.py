"""fastnn.data: the bundled MNIST digits, IDX directories, .npz files and malformed input."""

from __future__ import annotations

import doctest
import gzip
import shutil

import numpy as np
import pytest

import fastnn.data
from fastnn.data import BUNDLED_DIR, BUNDLED_MD5, load_mnist, loader, read_idx, write_idx

# --------------------------------------------------------------------------- bundled data


def test_bundled_default_split_and_types():
    (x, y), (x_eval, y_eval) = load_mnist()
    assert x.shape == (8000, 28, 28, 1) and x_eval.shape == (2000, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and y_eval.dtype == np.int64
    assert y.shape == (8000,) and y_eval.shape == (2000,)
    assert 0.0 == x.min() and x.max() == 1.0
    # the first MNIST test digits are 7 2 1 0 4; every class is present in both parts
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
    assert set(np.unique(y)) == set(range(10)) == set(np.unique(y_eval))
    assert x.flags.c_contiguous


def test_bundled_options():
    (x, _), (x_eval, _) = load_mnist(dtype=np.float64, normalize=False, channels_last=False)
    assert x.shape == (8000, 1, 28, 28) and x.dtype == np.float64 and x.max() == 255.0
    (raw, _), _ = load_mnist(dtype=np.uint8, normalize=False)
    assert raw.dtype == np.uint8 and raw.shape == (8000, 28, 28, 1)
    with pytest.raises(ValueError, match="float dtype"):
        load_mnist(dtype=np.uint8)


def test_bundled_files_match_published_checksums():
    for name, md5 in BUNDLED_MD5.items():
        assert loader._md5(BUNDLED_DIR / name) == md5
    assert (BUNDLED_DIR / "README.md").read_text().count("CC BY-SA 3.0") >= 1


def test_bundled_checksum_mismatch_is_a_clear_error(tmp_path, monkeypatch):
    for name in BUNDLED_MD5:
        shutil.copy(BUNDLED_DIR / name, tmp_path / name)
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(loader, "BUNDLED_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: MD5 checksum .* differs"):
        load_mnist()


# --------------------------------------------------------------------------- crafted files

def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, size=n).astype(np.uint8))


def _write_pair(directory, prefix, images, labels, compress):
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    for array in (np.arange(6, dtype=np.uint8).reshape(2, 3), np.array([1.5, -2.0]),
                  np.arange(-3, 3, dtype=np.int32), np.ones((2, 1, 2), dtype=np.float32)):
        path = tmp_path / "a-idx"
        write_idx(path, array, compress=compress)
        back = read_idx(path)
        assert back.dtype == array.dtype.newbyteorder("=") and np.array_equal(back, array)


@pytest.mark.parametrize("compress", [False, True])
def test_directory_with_t10k_pair_only_is_split_like_the_bundle(tmp_path, compress):
    images, labels = _digits(10)
    _write_pair(tmp_path, "t10k", images, labels, compress)
    (x, y), (x_eval, y_eval) = load_mnist(tmp_path)
    assert x.shape == (8, 28, 28, 1) and x_eval.shape == (2, 28, 28, 1)
    assert np.array_equal(y, labels[:8]) and np.array_equal(y_eval, labels[8:])
    assert np.allclose(x[..., 0] * 255, images[:8])


def test_directory_with_train_and_test_pairs(tmp_path):
    train, test = _digits(12, 1), _digits(5, 2)
    _write_pair(tmp_path, "train", *train, compress=True)
    _write_pair(tmp_path, "t10k", *test, compress=False)
    (x, y), (x_eval, y_eval) = load_mnist(str(tmp_path))
    assert x.shape[0] == 12 and x_eval.shape[0] == 5
    assert np.array_equal(y, train[1]) and np.array_equal(y_eval, test[1])


def test_directory_without_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_npz(tmp_path):
    (xi, yi), (xt, yt) = _digits(6, 3), _digits(4, 4)
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=xi[..., None], y_train=yi.astype(np.int32), x_test=xt, y_test=yt)
    (x, y), (x_eval, y_eval) = load_mnist(path)
    assert x.shape == (6, 28, 28, 1) and x_eval.shape == (4, 28, 28, 1)
    assert y.dtype == np.int64 and np.array_equal(y_eval, yt)


def _raw_idx(code, dims, payload=b""):
    header = bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()
    return header + payload


MALFORMED_IMAGES = {
    "bad magic": (b"\x01\x02\x08\x03" + bytes(12), "bad magic number"),
    "unknown type": (_raw_idx(0x07, (1, 28, 28), bytes(784)), "unknown IDX type"),
    "short header": (b"\x00\x00", "too short"),
    "truncated header": (b"\x00\x00\x08\x03" + bytes(5), "truncated header"),
    "truncated data": (_raw_idx(0x08, (10, 28, 28), bytes(784 * 9)), "truncated"),
    "trailing bytes": (_raw_idx(0x08, (10, 28, 28), bytes(784 * 10 + 3)), "unexpected bytes"),
    "wrong dims": (_raw_idx(0x08, (10, 27, 28), bytes(10 * 27 * 28)), "wrong dimensions"),
    "wrong rank": (_raw_idx(0x08, (10, 784), bytes(7840)), "wrong dimensions"),
    "non-uint8 images": (_raw_idx(0x0D, (10, 28, 28), bytes(4 * 7840)), "must be uint8"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_IMAGES))
def test_malformed_image_file(tmp_path, case):
    content, message = MALFORMED_IMAGES[case]
    _, labels = _digits(10)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(content)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(tmp_path)
    assert "t10k-images-idx3-ubyte" in str(info.value)


MALFORMED_LABELS = {
    "count differs": (_raw_idx(0x08, (9,), bytes(9)), "9 labels but 10 images"),
    "float labels": (_raw_idx(0x0D, (10,), bytes(40)), "labels must be integers"),
    "2-D labels": (_raw_idx(0x08, (10, 1), bytes(10)), "must be 1-D"),
    "out of range": (_raw_idx(0x08, (10,), bytes([12] * 10)), "digits 0-9"),
    "truncated": (_raw_idx(0x08, (10,), bytes(4)), "truncated"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_LABELS))
def test_malformed_label_file(tmp_path, case):
    content, message = MALFORMED_LABELS[case]
    images, _ = _digits(10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(info.value)


def test_truncated_gzip(tmp_path):
    images, labels = _digits(10)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, compress=True)
    payload = gzip.compress(_raw_idx(0x08, (10, 28, 28), images.tobytes()))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: not a readable gzip"):
        load_mnist(tmp_path)


def test_partial_training_pair(tmp_path):
    _write_pair(tmp_path, "t10k", *_digits(10), compress=False)
    write_idx(tmp_path / "train-images-idx3-ubyte", _digits(10)[0])
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def _npz_arrays():
    (xi, yi), (xt, yt) = _digits(6), _digits(4)
    return {"x_train": xi, "y_train": yi, "x_test": xt, "y_test": yt}


@pytest.mark.parametrize("case, change, message", [
    ("missing key", {"y_test": None}, r"missing npz key\(s\) y_test"),
    ("float labels", {"y_train": np.zeros(6)}, r"\[y_train\]: labels must be integers"),
    ("count differs", {"y_test": np.zeros(3, np.int64)}, r"3 labels but 4 images"),
    ("float images", {"x_train": np.zeros((6, 28, 28), np.float32)}, r"must be uint8"),
    ("wrong dims", {"x_test": np.zeros((4, 28, 28, 3), np.uint8)}, r"wrong dimensions"),
])
def test_malformed_npz(tmp_path, case, change, message):
    arrays = _npz_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(path)
    assert "bad.npz" in str(info.value)


def test_not_an_npz(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="broken.npz: not a readable .npz"):
        load_mnist(path)
    other = tmp_path / "digits.csv"
    other.write_text("1,2,3")
    with pytest.raises(ValueError, match="digits.csv: expected a directory of IDX files or an"):
        load_mnist(other)


@pytest.mark.parametrize("module", [fastnn.data, fastnn.data.idx, fastnn.data.loader],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
