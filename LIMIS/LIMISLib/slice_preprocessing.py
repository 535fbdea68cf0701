"""Axial CT slices as LIMIS's models see them: display orientation, common spacing, normalisation.

* **Display orientation** (as in Slicer's axial view and :mod:`LIMISLib.model_interfaces`): row 0
  is anterior (rows run towards posterior), column 0 is the patient's right (columns run towards
  the patient's left, radiological convention). It comes from the direction matrix, never from
  the voxel axis order; for an oblique volume the nearest anatomical axes are used (no resampling).
  Slices keep the volume's numbering, as in :class:`LIMISLib.slice_geometry.AxialSliceGeometry`
  (the interaction loop's slices).
* **Common pixel spacing and size** (dissertation: "a common pixel spacing, image size and image
  orientation"): in-plane resampling (linear for CT, nearest for labels), then centred padding
  (air, -1024 HU / background) or cropping to a square size.
* **Normalisation** (dissertation: "clip the HU values to the 0.5 and 99.5 percentiles, normalise
  with the mean and standard deviation of the foreground pixels"): done per 2D slice, so that the
  detector sees the same input at inference, where only one slice is available. The paper does
  not define "foreground"; we use the body (pixels above ``foreground_threshold_hu`` = -500 HU,
  i.e. not air), which is available without labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyCommonLib.volume import Volume

#: Air: the value used to pad CT slices.
AIR_HU = -1024.0


@dataclass(frozen=True)
class SliceNormalisation:
    """Per-slice intensity normalisation of the detector input."""

    lower_percentile: float = 0.5
    upper_percentile: float = 99.5
    foreground_threshold_hu: float = -500.0

    def to_dict(self) -> dict:
        return {
            "lower_percentile": self.lower_percentile,
            "upper_percentile": self.upper_percentile,
            "foreground_threshold_hu": self.foreground_threshold_hu,
        }


def normalise_ct_slice(
    image_hu: np.ndarray, settings: SliceNormalisation = SliceNormalisation()
) -> np.ndarray:
    """Percentile clipping then z-score with the foreground (body) mean and std; float32, same shape."""
    image = np.asarray(image_hu, dtype=np.float32)
    low, high = np.percentile(image, [settings.lower_percentile, settings.upper_percentile])
    clipped = np.clip(image, low, high)
    foreground = image > settings.foreground_threshold_hu
    values = clipped[foreground] if foreground.any() else clipped.ravel()
    mean = float(values.mean())
    std = float(values.std())
    return ((clipped - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32)


@dataclass(frozen=True)
class DisplayAxial:
    """A volume's arrays in display orientation: ``array[slice, row, column]``.

    Slice ``s`` is the volume's axial slice ``s`` (the index along the array axis closest to
    superior, unflipped), exactly as :class:`LIMISLib.slice_geometry.AxialSliceGeometry` numbers
    and extracts them; rows run anterior -> posterior and columns patient right -> left.
    """

    array: np.ndarray
    row_spacing_mm: float
    column_spacing_mm: float
    slice_spacing_mm: float


def to_display_axial(volume: Volume) -> DisplayAxial:
    """A (slice, row, column) view of the whole volume in display orientation (no copy, no resampling)."""
    axes = [volume.anatomical_axis(d) for d in ("superior", "posterior", "left")]
    if len({a.array_axis for a in axes}) != 3:
        raise ValueError(
            "The volume's direction matrix is too oblique to find axial slices; resample it first."
        )
    array = np.transpose(volume.array, [a.array_axis for a in axes])
    if axes[1].sign < 0:
        array = array[:, ::-1, :]
    if axes[2].sign < 0:
        array = array[:, :, ::-1]
    spacing = volume.spacing_kji_mm
    return DisplayAxial(
        array=array,
        row_spacing_mm=float(spacing[axes[1].array_axis]),
        column_spacing_mm=float(spacing[axes[2].array_axis]),
        slice_spacing_mm=float(spacing[axes[0].array_axis]),
    )


def resample_slices(
    slices: np.ndarray,
    spacing_rc_mm: tuple[float, float],
    target_spacing_mm: float,
    size: int,
    *,
    labels: bool,
) -> np.ndarray:
    """(S, R, C) slices -> (S, size, size) at ``target_spacing_mm``, centred (pad with air / background)."""
    from scipy import ndimage

    zoom = (1.0, spacing_rc_mm[0] / target_spacing_mm, spacing_rc_mm[1] / target_spacing_mm)
    if abs(zoom[1] - 1.0) > 1e-6 or abs(zoom[2] - 1.0) > 1e-6:
        source = slices if labels else slices.astype(np.float32)
        slices = ndimage.zoom(source, zoom, order=0 if labels else 1, mode="nearest", grid_mode=True)
    fill = 0 if labels else AIR_HU
    return center_pad_or_crop(slices, size, fill)


def center_pad_or_crop(slices: np.ndarray, size: int, fill: float) -> np.ndarray:
    """Pad (with ``fill``) or crop the last two axes to ``size`` x ``size``, keeping the centre."""
    out = np.full((*slices.shape[:-2], size, size), fill, dtype=slices.dtype)
    source_slices, target_slices = [], []
    for length in slices.shape[-2:]:
        if length >= size:
            start = (length - size) // 2
            source_slices.append(slice(start, start + size))
            target_slices.append(slice(0, size))
        else:
            start = (size - length) // 2
            source_slices.append(slice(0, length))
            target_slices.append(slice(start, start + length))
    out[(..., *target_slices)] = slices[(..., *source_slices)]
    return out


def bounding_box_xyxy(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight box ``(x0, y0, x1, y1)`` of a 2D mask with continuous edges (x1 = last column + 1)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(mask.any(axis=0))
    return float(columns[0]), float(rows[0]), float(columns[-1] + 1), float(rows[-1] + 1)
