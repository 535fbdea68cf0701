"""Errors raised by LIMISLib (the common ones are re-exported from AnatomyCommonLib.errors)."""

from __future__ import annotations

from AnatomyCommonLib.errors import (
    AnatomyToolkitError,
    CancelledError,
    CorruptWeightsError,
    EmptyMaskError,
    GeometryMismatchError,
    ImageDimensionError,
    MissingDependencyError,
    MissingWeightsError,
)

__all__ = [
    "AnatomyToolkitError",
    "CancelledError",
    "CorruptWeightsError",
    "EmptyMaskError",
    "GeometryMismatchError",
    "ImageDimensionError",
    "InvalidPromptError",
    "MissingDependencyError",
    "MissingWeightsError",
    "StructureNotFoundError",
]


class StructureNotFoundError(AnatomyToolkitError, LookupError):
    """The detector found no box for the structure above the score threshold."""


class InvalidPromptError(AnatomyToolkitError, ValueError):
    """A box, click or prompt is outside the image or otherwise unusable."""
