"""Critical-region decisions: find where the model is unsure and ask the user yes/no.

The dissertation: "The system asks the users to decide for specific critical points if these
belong to the foreground structure or the background." How the points are chosen is not
published. Our design:

1. **Uncertain pixels** are the pixels inside the box whose probability lies within ``band`` of
   the current threshold (``|p - threshold| < band``, default 0.15). If none exist, the band is
   widened (0.15 -> 0.3 -> 0.45) so that a question is asked whenever the map is not perfectly
   confident.
2. They are grouped into 8-connected **regions**; regions smaller than ``min_size_px`` are
   ignored (a single noisy pixel is not worth a question).
3. Regions are ranked by their **uncertainty mass** ``sum(1 - |p - threshold| / band)`` (big and
   very uncertain first) and at most ``max_regions`` (default 3) are asked about.
4. Each region is represented by its **most interior pixel** (largest distance to the region's
   border), so the click that the answer becomes lies inside the region; the question names the
   grid cell it lies in and whether the region is currently in the mask.
5. An answer becomes a click at that point: "yes" = positive (foreground) click, "no" = negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .click_grid import cell_of_point
from .model_interfaces import Box, Point
from .slice_geometry import box_pixel_slices

DEFAULT_BAND = 0.15
BAND_WIDENING = (1.0, 2.0, 3.0)


@dataclass(frozen=True)
class CriticalRegion:
    """One uncertain region to ask about."""

    point: Point  # continuous pixel coordinates (x, y) of its most interior pixel's centre
    size_px: int
    mean_probability: float
    in_mask: bool  # whether the point is currently in the mask
    grid_cell: int | None
    uncertainty_mass: float

    def question(self, structure: str, number: int, total: int) -> str:
        where = f"in grid cell {self.grid_cell}" if self.grid_cell else "near the box"
        state = "currently included" if self.in_mask else "currently excluded"
        return (
            f"Question {number}/{total}: the region {where} ({self.size_px} px, {state}, "
            f"probability {self.mean_probability:.2f}) - is it part of the {structure}? (yes/no)"
        )


def find_critical_regions(
    probabilities: np.ndarray,
    threshold: float,
    box: Box,
    *,
    mask: np.ndarray | None = None,
    band: float = DEFAULT_BAND,
    max_regions: int = 3,
    min_size_px: int = 2,
) -> list[CriticalRegion]:
    """The most uncertain regions inside ``box`` (see the module docstring), best first."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    rows, columns = box_pixel_slices(box, probabilities.shape)
    inside_box = np.zeros(probabilities.shape, dtype=bool)
    inside_box[rows, columns] = True
    current = probabilities >= threshold if mask is None else np.asarray(mask, dtype=bool)
    distance_to_threshold = np.abs(probabilities - threshold)
    for factor in BAND_WIDENING:
        width = band * factor
        uncertain = inside_box & (distance_to_threshold < width)
        regions = _regions(uncertain, distance_to_threshold, width, probabilities, current, box, min_size_px)
        if regions:
            regions.sort(key=lambda region: -region.uncertainty_mass)
            return regions[:max_regions]
    return []


def _regions(
    uncertain: np.ndarray,
    distance_to_threshold: np.ndarray,
    band: float,
    probabilities: np.ndarray,
    current: np.ndarray,
    box: Box,
    min_size_px: int,
) -> list[CriticalRegion]:
    labels, count = ndimage.label(uncertain, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return []
    # Interior depth of every uncertain pixel (distance to the nearest non-uncertain pixel).
    depth = ndimage.distance_transform_edt(np.pad(uncertain, 1))[1:-1, 1:-1]
    regions = []
    for index, region_slices in enumerate(ndimage.find_objects(labels), start=1):
        if region_slices is None:
            continue
        local = labels[region_slices] == index
        size = int(local.sum())
        if size < min_size_px:
            continue
        local_depth = np.where(local, depth[region_slices], -1.0)
        r, c = np.unravel_index(int(np.argmax(local_depth)), local.shape)
        row, column = r + region_slices[0].start, c + region_slices[1].start
        point = (column + 0.5, row + 0.5)
        closeness = 1.0 - distance_to_threshold[region_slices][local] / band
        regions.append(
            CriticalRegion(
                point=point,
                size_px=size,
                mean_probability=float(probabilities[region_slices][local].mean()),
                in_mask=bool(current[row, column]),
                grid_cell=cell_of_point(box, point),
                uncertainty_mass=float(closeness.sum()),
            )
        )
    return regions
