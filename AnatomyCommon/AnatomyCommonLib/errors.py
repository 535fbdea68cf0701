"""Typed errors shared by every Lib of the toolkit.

Each message says what was wrong, with which input, and what to do about it: the Slicer
modules show it in a dialog and the CLIs print it as a one-line reason.
Every class derives from the matching builtin (``ValueError``, ``FileNotFoundError`` ...)
so callers that catch the builtin keep working.
"""

from __future__ import annotations


class AnatomyToolkitError(Exception):
    """Base class of every error raised on purpose by the toolkit."""


class InputNotFoundError(AnatomyToolkitError, FileNotFoundError):
    """An input file or folder does not exist."""


class UnsupportedFormatError(AnatomyToolkitError, ValueError):
    """A file has an extension or content the toolkit cannot read or write."""


class ImageDimensionError(AnatomyToolkitError, ValueError):
    """An image has the wrong number of dimensions (for example 2D where 3D is required)."""


class NonFiniteValuesError(AnatomyToolkitError, ValueError):
    """An image contains NaN or infinite values."""


class GeometryMismatchError(AnatomyToolkitError, ValueError):
    """Two images that must share a voxel grid do not (size, spacing, origin or direction)."""


class OutputExistsError(AnatomyToolkitError, FileExistsError):
    """Writing would overwrite an existing file that the user owns."""


class EmptyMaskError(AnatomyToolkitError, ValueError):
    """A mask that must contain foreground is empty."""


class NonBinaryMaskError(AnatomyToolkitError, ValueError):
    """A mask that must be binary holds other values."""


class MissingWeightsError(AnatomyToolkitError, FileNotFoundError):
    """Model weights are not installed; the message names the file and how to install it."""


class CorruptWeightsError(AnatomyToolkitError, ValueError):
    """Model weights exist but do not match their checksum or expected layout."""


class InsufficientMemoryError(AnatomyToolkitError, MemoryError):
    """A computation would need more memory than is available (estimated before allocating)."""


class MissingDependencyError(AnatomyToolkitError, ImportError):
    """An optional Python package is needed for this feature and is not installed."""


class CancelledError(AnatomyToolkitError):
    """A long-running job was cancelled by the user; nothing half-written was left behind."""


class NetworkUnavailableError(AnatomyToolkitError, ConnectionError):
    """A download failed (no network, proxy, server error); the message says how to install offline."""
