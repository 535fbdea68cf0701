"""Code shared by the DAP Atlas, LIMIS and CC-Metrics libraries.

- :mod:`.volume`: :class:`Volume`, a voxel array with its IJK->RAS geometry.
- :mod:`.image_io`: read/write NIfTI, NRRD, MetaImage and DICOM keeping geometry.
- :mod:`.slicer_bridge`: MRML node <-> numpy conversions (imports ``slicer`` lazily).
- :mod:`.terminology`: SNOMED-CT coded segment meanings.
- :mod:`.anatomy`: the DAP Atlas label schema, its terminology and colour table, the phantom.
- :mod:`.rendering`: PNG overviews in radiological orientation.
- :mod:`.errors`: the typed errors every Lib raises.
- :mod:`.dependencies`: installing packages inside Slicer after asking.

Nothing here imports ``slicer``, ``qt``, ``ctk`` or ``vtk`` at import time.
"""

from .errors import (
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
    NonBinaryMaskError,
    NonFiniteValuesError,
    OutputExistsError,
    UnsupportedFormatError,
)
from .image_io import read_labelmap, read_volume, write_volume
from .volume import AnatomicalAxis, Volume

__all__ = [
    "AnatomicalAxis",
    "AnatomyToolkitError",
    "CancelledError",
    "CorruptWeightsError",
    "EmptyMaskError",
    "GeometryMismatchError",
    "ImageDimensionError",
    "InputNotFoundError",
    "InsufficientMemoryError",
    "MissingDependencyError",
    "MissingWeightsError",
    "NonBinaryMaskError",
    "NonFiniteValuesError",
    "OutputExistsError",
    "UnsupportedFormatError",
    "Volume",
    "read_labelmap",
    "read_volume",
    "write_volume",
]
