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
