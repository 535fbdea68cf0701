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


class LabelNotFoundError(AnatomyToolkitError, ValueError):
    """A ``label`` value that no voxel of the given masks holds (the message lists those present)."""


class CommandError(AnatomyToolkitError):
    """A command-line failure, reduced to its one-line reason."""


class UnmatchedCaseError(AnatomyToolkitError, FileNotFoundError):
    """Folder mode found a reference without a prediction of the same name (or the reverse)."""


__all__ = [
    "AnatomyToolkitError",
    "CommandError",
    "EmptyMaskError",
    "GeometryMismatchError",
    "ImageDimensionError",
    "InputNotFoundError",
    "InvalidParameterError",
    "LabelNotFoundError",
    "NonBinaryMaskError",
    "OutputExistsError",
    "UnknownMetricError",
    "UnmatchedCaseError",
    "UnsupportedFormatError",
]
