"""The examples in the public docstrings run and print what they say.

They run on the reference backend (the oracle), whatever the default backend is here.
"""

from __future__ import annotations

import doctest

import pytest

import fastnn._shapes
import fastnn.backends
import fastnn.ops
from fastnn import backends


@pytest.mark.parametrize("module", [fastnn.ops, fastnn._shapes, fastnn.backends],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    with backends.use("reference"):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
    assert result.attempted > 0
