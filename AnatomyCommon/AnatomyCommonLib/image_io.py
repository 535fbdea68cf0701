"""Read and write volumes (NIfTI, NRRD, MetaImage, DICOM series) keeping their geometry.

SimpleITK does the file work; geometry crosses the boundary as LPS (ITK) and is converted to
the RAS :class:`~AnatomyCommonLib.volume.Volume` used everywhere else. Writing never
overwrites a file unless asked, and goes through a temporary file so that an interrupted
write leaves no half-written output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic_output import atomic_output_file
from .errors import (
    ImageDimensionError,
    InputNotFoundError,
    MissingDependencyError,
    OutputExistsError,
    UnsupportedFormatError,
)
from .volume import RAS_FROM_LPS, Volume

#: File name endings the toolkit reads and writes (a folder is read as a DICOM series).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd")

#: DICOM tags copied into ``Volume.metadata`` when reading a series.
DICOM_METADATA_TAGS: dict[str, str] = {
    "PatientSex": "0010|0040",
    "PatientAge": "0010|1010",
    "PatientID": "0010|0020",
    "StudyInstanceUID": "0020|000d",
    "SeriesInstanceUID": "0020|000e",
    "Modality": "0008|0060",
}


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError as error:  # pragma: no cover - SimpleITK is a core dependency
        raise MissingDependencyError(
            "Reading and writing images needs the SimpleITK package: pip install SimpleITK"
        ) from error
    return sitk


def image_suffix(path: str | os.PathLike) -> str:
    """The supported suffix of ``path`` (".nii.gz", ".nrrd" ...), or raise UnsupportedFormatError."""
    name = Path(path).name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise UnsupportedFormatError(
        f"Cannot handle {Path(path).name!r}: supported image files end with "
        f"{', '.join(SUPPORTED_SUFFIXES)} (or give a folder holding one DICOM series)."
    )


def volume_from_sitk(image, metadata: dict | None = None) -> Volume:
    """Convert a SimpleITK image (LPS geometry) into a RAS :class:`Volume`."""
    sitk = _sitk()
    dim = image.GetDimension()
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageDimensionError(
            f"The image has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "only scalar (grey-value or label) images are supported. Convert colour images to grey first."
        )
    # GetArrayFromImage returns [k, j, i] (the reverse of ITK's index order), the order Slicer's
    # arrayFromVolume uses, so arrays cross the boundary without a transpose
    array = sitk.GetArrayFromImage(image)
    spacing = list(image.GetSpacing())
    origin = list(image.GetOrigin())
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
    if dim == 2:  # embed as a one-slice volume so geometry stays 3D
        direction3 = np.eye(3)
        direction3[:2, :2] = direction
        direction, spacing, origin = direction3, [*spacing, 1.0], [*origin, 0.0]
        array = array[None, ...]
    elif dim != 3:
        raise ImageDimensionError(f"Images must be 2D or 3D; this one has {dim} dimensions.")
    volume = Volume.from_lps_geometry(array, tuple(spacing), tuple(origin), direction, metadata)
    return volume


def volume_to_sitk(volume: Volume):
    """Convert a :class:`Volume` into a SimpleITK image with LPS geometry."""
    sitk = _sitk()
    array = volume.array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.ndim != 3:
        raise ImageDimensionError(
            f"Only 3D arrays can be written with geometry; got shape {array.shape}. "
            "Add a slice axis (array[None]) for a single slice."
        )
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(volume.spacing_mm)
    # files and ITK are LPS, Slicer and Volume are RAS: negating x and y maps one to the other
    # (RAS_FROM_LPS is its own inverse)
    image.SetOrigin(tuple(float(v) for v in RAS_FROM_LPS @ np.asarray(volume.origin_ras)))
    direction_lps = RAS_FROM_LPS @ volume.direction_ras
    image.SetDirection(tuple(float(v) for v in direction_lps.ravel()))
    return image


def read_volume(
    path: str | os.PathLike,
    *,
    require_3d: bool = True,
    allow_nonfinite: bool = False,
    name: str | None = None,
) -> Volume:
    """Read an image file (or a DICOM series folder) into a :class:`Volume`.

    Raises :class:`InputNotFoundError` for a missing path, :class:`UnsupportedFormatError`
    for an unknown suffix or unreadable content, :class:`ImageDimensionError` for a 2D image
    when ``require_3d`` and :class:`NonFiniteValuesError` for NaN/inf voxels unless allowed.
    """
    path = Path(path)
    label = name or path.name
    if not path.exists():
        raise InputNotFoundError(f"{label}: no such file or folder: {path}")
    if path.is_dir():
        volume = read_dicom_series(path)
    else:
        suffix = image_suffix(path)
        if suffix in (".nii", ".nii.gz"):
            from .nifti_integrity import check_nifti_complete

            check_nifti_complete(path, name=label)  # ITK zero-fills truncated NIfTI data silently
        sitk = _sitk()
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as error:
            raise UnsupportedFormatError(
                f"{label}: could not be read as a {suffix} image ({str(error).strip().splitlines()[-1]}). "
                "Is the file complete and really in that format?"
            ) from error
        volume = volume_from_sitk(image, metadata={"source_path": str(path)})
    if require_3d and (volume.array.ndim != 3 or volume.array.shape[0] == 1):
        raise ImageDimensionError(
            f"{label} is a single 2D slice (shape {volume.shape}) but a 3D volume is required; "
            "load the whole series or volume."
        )
    if not allow_nonfinite:
        volume.require_finite(label)
    return volume


def read_dicom_series(folder: str | os.PathLike) -> Volume:
    """Read the (first) DICOM series in ``folder``; patient tags go to ``metadata``.

    ``metadata["PatientSex"]`` holds the DICOM PatientSex (0010,0040) value ("M", "F", "O"
    or "") which the DAP Atlas sex-consistency rule reads.
    """
    sitk = _sitk()
    folder = Path(folder)
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise UnsupportedFormatError(
            f"{folder} is a folder without a DICOM series; give an image file "
            f"({', '.join(SUPPORTED_SUFFIXES)}) or a folder of DICOM slices."
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOff()
    image = reader.Execute()
    metadata: dict = {"source_path": str(folder), "dicom_series_count": len(series_ids)}
    for key, tag in DICOM_METADATA_TAGS.items():
        if reader.HasMetaDataKey(0, tag):
            metadata[key] = reader.GetMetaData(0, tag).strip()
    return volume_from_sitk(image, metadata=metadata)


def write_volume(
    volume: Volume,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    compress: bool = True,
) -> Path:
    """Write ``volume`` to ``path`` (format from the suffix) keeping its geometry.

    Refuses to replace an existing file unless ``overwrite``; writes a temporary file next to
    the target and renames it, so the target is either complete or untouched. The file gets the
    mode ``open()`` would give it (the umask applies, see :mod:`.atomic_output`).
    """
    path = Path(path)
    suffix = image_suffix(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists; choose another output name or pass overwrite=True "
            "(--overwrite on the command line) to replace it."
        )
    image = volume_to_sitk(volume)
    sitk = _sitk()
    with atomic_output_file(path, suffix=suffix) as tmp_name:
        sitk.WriteImage(image, tmp_name, useCompression=compress)
    return path


def read_labelmap(path: str | os.PathLike, *, name: str | None = None) -> Volume:
    """Read a label map; refuses non-integer voxel values with a clear message."""
    volume = read_volume(path, name=name)
    array = volume.array
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise UnsupportedFormatError(
                f"{name or Path(path).name} holds non-integer values, so it is not a label map; "
                "did you pass the CT image instead of the segmentation?"
            )
        array = array.astype(np.int32)
    if array.min() < 0:
        raise UnsupportedFormatError(
            f"{name or Path(path).name} holds negative values (min {array.min()}); label maps use 0 for "
            "background and positive integers for structures."
        )
    return volume.with_array(array)
