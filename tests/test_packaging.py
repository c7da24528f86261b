"""Packaging: the version in one place, ``--version``, ``python -m fastnn``, the warning when
a source tree without fastnn._C shadows the installed package, and the numba cache kept
out of the package directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
from fastnn import _compat
from fastnn._version import __version__

PACKAGE = Path(fastnn.__file__).resolve().parent


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                               "FASTNN_DISABLE_NATIVE")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_one_version():
    assert fastnn.__version__ == __version__
    from importlib import metadata

    try:
        assert metadata.version("fastnn") == __version__
    except metadata.PackageNotFoundError:  # run from a tree that is not installed at all
        pass


def test_version_flag_and_python_m(tmp_path):
    for args in (["-m", "fastnn", "--version"], ["-m", "fastnn.cli", "--version"]):
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"fastnn {__version__}"


def test_the_imported_package_is_not_shadowed():
    # This test run's own fastnn has its compiled module (installed, editable or built).
    assert _compat.shadowing() == ""


def _source_tree_copy(tmp_path: Path, checkout: bool) -> Path:
    """A copy of the Python package without fastnn._C, as a checkout (CMakeLists.txt and
    csrc/ beside it) or as a bare copy."""
    root = tmp_path / "checkout"
    shutil.copytree(PACKAGE, root / "fastnn",
                    ignore=shutil.ignore_patterns("_C.*", "_cuda.*", "__pycache__"))
    if checkout:
        (root / "CMakeLists.txt").write_text("project(fastnn)\n")
        (root / "csrc").mkdir()
    return root


CODE = """
import importlib.util, warnings
if importlib.util.find_spec("fastnn") is not None and importlib.util.find_spec("fastnn._C"):
    print("native-found")       # an editable install's finder serves fastnn._C to any copy
    raise SystemExit(0)
warnings.simplefilter("always")  # count every warning, not once per location
import fastnn, importlib
from fastnn import _compat, backends
importlib.reload(fastnn)         # a second import (the probe is cached): still one warning
print("available:", backends.available())
print("why:", _compat.native()[1])
"""


@pytest.mark.parametrize("checkout", [True, False], ids=["checkout", "copy"])
def test_a_source_tree_without_the_module_warns_once(tmp_path, checkout):
    from importlib import metadata

    try:
        installed = Path(str(metadata.distribution("fastnn").locate_file("fastnn/__init__.py")))
    except metadata.PackageNotFoundError:
        installed = None
    if not checkout and (installed is None or not installed.is_file()):
        pytest.skip("needs fastnn installed as a package (pip install .): with no installed copy, "
                    "or an editable one, a copy of the tree shadows nothing")
    root = _source_tree_copy(tmp_path, checkout)
    done = _python(CODE, cwd=root)  # Python run in the tree: its fastnn/ comes first
    assert done.returncode == 0, done.stderr
    if "native-found" in done.stdout:
        pytest.skip("an editable install serves fastnn._C to every copy of the tree, so nothing "
                    "is shadowed here; CI's non-editable install runs this case")
    assert done.stderr.count("ShadowedInstallWarning") == 1, done.stderr
    assert f"imported from {'a source tree' if checkout else 'a copy'} at {root / 'fastnn'}" \
        in done.stderr
    assert "Run Python from another directory" in done.stderr
    assert "editable install" in done.stderr
    assert "'cpu'" not in done.stdout
    why = done.stdout.split("why:", 1)[1]
    assert "Run Python from another directory" in why and "C++ compiler" not in why


def test_no_warning_when_native_is_disabled_on_purpose(tmp_path):
    root = _source_tree_copy(tmp_path, checkout=True)
    done = _python(CODE, cwd=root, FASTNN_DISABLE_NATIVE="1")
    assert done.returncode == 0, done.stderr
    if "native-found" in done.stdout:
        pytest.skip("an editable install serves fastnn._C to every copy of the tree, so nothing "
                    "is shadowed here; CI's non-editable install runs this case")
    assert "ShadowedInstallWarning" not in done.stderr


def test_numba_cache_goes_to_the_user_cache_dir(tmp_path):
    code = ("import os; from fastnn import _compat; _compat.use_user_numba_cache(); "
            "print(os.environ['NUMBA_CACHE_DIR'])")
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(environ, XDG_CACHE_HOME=str(tmp_path)))
    assert done.stdout.strip() == str(tmp_path / "fastnn" / "numba"), done.stderr
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(environ, NUMBA_CACHE_DIR="/elsewhere"))
    assert done.stdout.strip() == "/elsewhere", done.stderr


def test_numba_kernels_cache_outside_the_package(tmp_path):
    pytest.importorskip("numba")
    code = ("import numpy as np; from fastnn import backends, ops\n"
            "with backends.use('numba'): ops.relu(np.ones(3, np.float32))\n")
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=dict(environ, XDG_CACHE_HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "fastnn" / "numba").rglob("*.nbi")), "no numba cache written"
