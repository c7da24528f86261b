"""The exceptions of :mod:`fastnn.data`'s readers."""

from __future__ import annotations


class DataError(ValueError):
    """A data file, folder or array that cannot be used; the message names it."""


class MissingDependency(ImportError):
    """An optional package a reader needs is not installed; the message names the extra."""
