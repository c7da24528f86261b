"""Every kernel ISA this CPU can run passes the cpu backend's parity suite.

The best ISA runs in-process with the rest of the tests; each lower one (FASTNN_ISA is
read once per process) runs the cpu parity cases in a subprocess.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from fastnn import _compat

ORDER = ["portable", "avx2", "avx512"]
native, why = _compat.native()
LOWER = ORDER[:ORDER.index(native.detected_isa())] if native is not None else []


@pytest.mark.parametrize("isa", LOWER)
def test_lower_isa_passes_cpu_parity(isa):
    here = pathlib.Path(__file__).parent
    env = dict(os.environ, FASTNN_ISA=isa)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(here / "test_parity.py"), "-q", "-x", "-k", "cpu",
         "-p", "no:cacheprovider", "--benchmark-disable"],
        env=env, cwd=here, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_isa_override_is_reported_and_checked():
    code = "import fastnn._C as C; print(C.selected_isa())"
    # A bad value fails the import itself, before any kernel could run.
    # Run from tests/: from the repository root, `fastnn` would be the source folder.
    here = pathlib.Path(__file__).parent
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FASTNN_ISA="portable"),
                         cwd=here, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "portable", out.stderr
    bad = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FASTNN_ISA="sse9"),
                         cwd=here, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "FASTNN_ISA must be portable, avx2 or avx512" in bad.stderr


TWO_COPIES = r"""
import importlib.util, os, shutil, sys, tempfile

def load(tag, path):
    spec = importlib.util.spec_from_file_location(f"{tag}._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

source, low, high = sys.argv[1:4]
copy = os.path.join(tempfile.mkdtemp(), os.path.basename(source))
shutil.copy(source, copy)
os.environ["FASTNN_ISA"] = low
first = load("first", source)
first.gemm_blocking(256, 256, 256)  # resolves the first copy's GEMM table
os.environ["FASTNN_ISA"] = high
second = load("second", copy)
print(first.selected_isa(), first.gemm_blocking(256, 256, 256)["kernel"])
print(second.selected_isa(), second.gemm_blocking(256, 256, 256)["kernel"])
"""


@pytest.mark.skipif(not LOWER, reason="this CPU runs only the portable kernels: one ISA, "
                    "nothing for two copies to tell apart")
def test_two_copies_of_the_module_keep_their_own_kernel_tables(tmp_path):
    """Two builds (or installs) of fastnn._C in one process each run their own kernels: the
    library's statics are not exported (GCC would make them STB_GNU_UNIQUE, merged across
    copies by the dynamic linker, and the second copy would run the first one's table)."""
    low, high = "portable", native.detected_isa()
    out = subprocess.run([sys.executable, "-c", TWO_COPIES, native.__file__, low, high],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (isa1, *kernel1), (isa2, *kernel2) = (line.split(" ", 1) for line in
                                          out.stdout.strip().splitlines())
    assert (isa1, isa2) == (low, high)
    assert kernel1[0].startswith(low) and kernel2[0].startswith(high), out.stdout
