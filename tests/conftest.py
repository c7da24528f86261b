"""Fixtures shared by the tests; helpers live in ``support.py`` (a plain module, since
``conftest`` is also the name of benchmarks/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)
