"""Errors raised by DAPAtlasLib.

The common ones come from :mod:`AnatomyCommonLib.errors` and are re-exported here, so callers
can catch everything from one place (``from DAPAtlasLib.exceptions import ...``). The classes
defined here are specific to DAP Atlas; each derives from the builtin a caller would expect.

Post-processing rules never raise on a missing anchor structure or a partial field of view: they
skip the dependent rule and say so in their report. Exceptions are for inputs that cannot be
processed at all (a CT on another grid, a label map with values outside the schema, an unknown
step name).
"""

from __future__ import annotations

from AnatomyCommonLib.errors import (
    AnatomyToolkitError,
    CancelledError,
    CorruptWeightsError,
    EmptyMaskError,
    GeometryMismatchError,
    ImageDimensionError,
    InputNotFoundError,
    InsufficientMemoryError,
    MissingDependencyError,
    MissingWeightsError,
    NonFiniteValuesError,
    OutputExistsError,
    UnsupportedFormatError,
)

__all__ = [
    "AnatomyToolkitError",
    "CancelledError",
    "CorruptWeightsError",
    "EmptyMaskError",
    "GeometryMismatchError",
    "ImageDimensionError",
    "ImplausibleCTError",
    "InputNotFoundError",
    "InsufficientMemoryError",
    "InvalidLabelValuesError",
    "InvalidSexError",
    "MissingDependencyError",
    "MissingWeightsError",
    "NonFiniteValuesError",
    "OutputExistsError",
    "UnknownStepError",
    "UnknownStructureError",
    "UnsupportedFormatError",
]


class InvalidLabelValuesError(AnatomyToolkitError, ValueError):
    """A label map holds values that are not DAP Atlas label ids (0..144)."""


class UnknownStepError(AnatomyToolkitError, KeyError):
    """A post-processing step name that does not exist (the message lists the valid ones)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidSexError(AnatomyToolkitError, ValueError):
    """A patient sex value other than M, F or auto/unknown."""


class ImplausibleCTError(AnatomyToolkitError, ValueError):
    """An input that should be a CT in Hounsfield units does not look like one (MRI, PET, raw values)."""


class UnknownStructureError(AnatomyToolkitError, KeyError):
    """A structure name (``--structures``) not in the label schema; the message names close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
