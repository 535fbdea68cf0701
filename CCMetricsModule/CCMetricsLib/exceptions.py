"""Errors raised by CCMetricsLib.

The shared typed errors of the toolkit are re-exported here so that callers can catch everything
CC-Metrics raises from one module; each message says what was wrong, with which input, and what to do.
"""

from __future__ import annotations

from AnatomyCommonLib.errors import (
    AnatomyToolkitError,
    EmptyMaskError,
    GeometryMismatchError,
    ImageDimensionError,
    InputNotFoundError,
    NonBinaryMaskError,
    OutputExistsError,
    UnsupportedFormatError,
)


class UnknownMetricError(AnatomyToolkitError, ValueError):
    """A metric name that CC-Metrics does not compute."""


class InvalidParameterError(AnatomyToolkitError, ValueError):
    """A parameter outside its valid range (connectivity, tolerance, worst distance ...)."""


class UnmatchedCaseError(AnatomyToolkitError, FileNotFoundError):
    """Folder mode found a reference without a prediction of the same name (or the reverse)."""


__all__ = [
    "AnatomyToolkitError",
    "EmptyMaskError",
    "GeometryMismatchError",
    "ImageDimensionError",
    "InputNotFoundError",
    "InvalidParameterError",
    "NonBinaryMaskError",
    "OutputExistsError",
    "UnknownMetricError",
    "UnmatchedCaseError",
    "UnsupportedFormatError",
]
