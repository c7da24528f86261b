"""The examples in the public docstrings run and print what they say, and every public
class and function has one.

They run on the reference backend (the oracle), whatever the default backend is here.
(The examples of fastnn.nn and fastnn.data run in test_layers, test_data and
test_own_data.)
"""

from __future__ import annotations

import doctest
import inspect

import pytest

import fastnn
import fastnn._shapes
import fastnn._threads
import fastnn.backends
import fastnn.backends.base
import fastnn.data
import fastnn.nn
import fastnn.ops
import fastnn.selftest
from fastnn import _compat, backends


@pytest.mark.parametrize("module", [fastnn, fastnn.ops, fastnn._shapes, fastnn.backends,
                                    fastnn.backends.base, fastnn.selftest],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    with backends.use("reference"):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
    assert result.attempted > 0


@pytest.mark.skipif(_compat.native()[0] is None, reason="no native extension: no kernel "
                                                        "threads or denormal flushing")
def test_thread_and_denormal_examples():
    # These show the native kernels' settings: on the default backend, not the reference.
    result = doctest.testmod(fastnn._threads, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


PUBLIC_MODULES = [fastnn, fastnn.nn, fastnn.data, fastnn.ops, fastnn.backends, fastnn.selftest]


def _public(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue  # subpackages have their own; constants need none
        yield name, obj


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_public_class_and_function_has_an_example(module):
    """Each name in ``__all__`` that is a class or a function has a ``>>>`` example in its
    own docstring (not one inherited from a base class). Exception classes are exempt:
    their docstrings say when they are raised and what they carry, and the examples of the
    functions that raise them show them."""
    missing = [name for name, obj in _public(module)
               if not (isinstance(obj, type) and issubclass(obj, BaseException))
               and ">>>" not in (obj.__doc__ or "")]
    assert not missing, f"{module.__name__}: no >>> example in the docstring of {missing}"


def test_every_exported_name_exists():
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_help_fastnn_lists_the_subpackages():
    import pydoc

    text = pydoc.render_doc(fastnn, renderer=pydoc.plaintext)
    description = text.split("PACKAGE CONTENTS")[0]
    for name in ("ops", "backends", "nn", "data", "distributed", "models", "selftest", "cli"):
        assert f"fastnn.{name}`" in description, name
    contents = text.split("PACKAGE CONTENTS")[1].split("FUNCTIONS")[0]
    for package in ("backends", "nn", "data"):
        assert f"{package} (package)" in contents
    assert "selftest" in dir(fastnn)
