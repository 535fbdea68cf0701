"""Propagating an accepted 2D mask to the neighbouring axial slices (beyond the dissertation).

LIMIS segments one slice; clinicians need volumes. From the slice the user accepted, each next
slice (towards superior = "up" or inferior = "down") is segmented by the same BBox2Mask with

* the **box** around the previous slice's mask plus a margin (``margin_mm``, default 10 mm,
  converted to pixels with the in-plane spacing), and
* the previous slice's mask as the **prior** ("previous prediction" input): its logits, with their
  sign forced to agree with the accepted mask (removed components negative, clicked pixels
  positive), clipped to +-``prior_logit``;
* the previous slice's CT window and threshold.

It stops when the slice count is reached, the volume ends, a slice already has a segmentation of
its own, or **the structure ends** -- the first of these on the new slice (that slice is then not
kept):

* the mask is (almost) empty: less than ``min_area_mm2``;
* it shrank below ``min_area_ratio`` of the previous slice's mask, or grew beyond
  ``max_area_ratio`` of it or of the start slice's mask (it spilled onto a neighbouring structure,
  at once or slice by slice);
* less than ``min_overlap`` of it overlaps the previous slice's mask (it moved elsewhere);
* its median HU differs from the previous slice's or from the start slice's by more than
  ``max_median_shift_hu`` (it is now segmenting another tissue, at once or drifting slowly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model_interfaces import Box, MaskPrediction
from .slice_geometry import box_around_mask


@dataclass(frozen=True)
class PropagationConfig:
    """When propagation continues and stops (see the module docstring)."""

    margin_mm: float = 10.0
    min_margin_px: float = 2.0
    prior_logit: float = 4.0
    max_prior_logit: float = 20.0
    min_area_mm2: float = 20.0
    min_area_ratio: float = 0.2
    max_area_ratio: float = 3.0
    min_overlap: float = 0.3
    max_median_shift_hu: float = 50.0


def margin_pixels(config: PropagationConfig, pixel_spacing_mm: tuple[float, float]) -> float:
    """The box margin in pixels for this in-plane spacing."""
    return max(config.min_margin_px, config.margin_mm / float(np.mean(pixel_spacing_mm)))


def propagation_box(previous_mask: np.ndarray, margin_px: float) -> Box | None:
    """The next slice's box: around the previous mask plus ``margin_px`` (None if the mask is empty)."""
    return box_around_mask(previous_mask, margin_px)


def prior_from_mask(
    mask: np.ndarray, prediction: MaskPrediction | None, config: PropagationConfig
) -> MaskPrediction:
    """The previous slice's accepted mask as a whole-slice "previous prediction" for the next slice.

    Logits come from the previous prediction where they agree with the mask and are pushed to
    +-``prior_logit`` where they do not (or where there is no prediction). ``model_logits`` and
    ``crop_xyxy`` are left empty so that the model resamples the whole-slice logits to its crop.
    """
    mask = np.asarray(mask, dtype=bool)
    if prediction is None or np.shape(prediction.logits) != mask.shape:
        logits = np.where(mask, config.prior_logit, -config.prior_logit).astype(np.float32)
    else:
        logits = np.clip(
            np.asarray(prediction.logits, dtype=np.float32), -config.max_prior_logit, config.max_prior_logit
        )
        logits = np.where(
            mask, np.maximum(logits, config.prior_logit), np.minimum(logits, -config.prior_logit)
        )
        logits = logits.astype(np.float32)
    probabilities = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return MaskPrediction(logits=logits, probabilities=probabilities, extras={"prior": "propagated mask"})


@dataclass(frozen=True)
class SliceSummary:
    """What the stop rules need to know about an accepted slice: its mask area and median HU."""

    area_px: int
    median_hu: float

    @classmethod
    def of(cls, mask: np.ndarray, image_hu: np.ndarray) -> SliceSummary:
        mask = np.asarray(mask, dtype=bool)
        area = int(np.count_nonzero(mask))
        return cls(area, float(np.median(image_hu[mask])) if area else float("nan"))


def structure_end_reason(
    previous_mask: np.ndarray,
    new_mask: np.ndarray,
    previous_image_hu: np.ndarray,
    new_image_hu: np.ndarray,
    pixel_area_mm2: float,
    config: PropagationConfig,
    start: SliceSummary | None = None,
) -> str | None:
    """Why the structure has ended on the new slice (see the module docstring), or None if it goes on.

    ``start`` summarises the slice the propagation started from (None: only slice-to-slice rules).
    """
    previous_area = int(np.count_nonzero(previous_mask))
    area = int(np.count_nonzero(new_mask))
    if area * pixel_area_mm2 < config.min_area_mm2:
        return f"the mask is (almost) empty ({area * pixel_area_mm2:.0f} mm2)"
    if area < config.min_area_ratio * previous_area:
        return f"the mask shrank to {100.0 * area / previous_area:.0f} % of the previous slice's"
    if area > config.max_area_ratio * previous_area:
        return f"the mask grew to {100.0 * area / previous_area:.0f} % of the previous slice's"
    if start is not None and area > config.max_area_ratio * start.area_px:
        return f"the mask grew to {100.0 * area / start.area_px:.0f} % of the start slice's"
    overlap = np.count_nonzero(np.logical_and(previous_mask, new_mask)) / area
    if overlap < config.min_overlap:
        return f"only {100.0 * overlap:.0f} % of the mask overlaps the previous slice's"
    median = float(np.median(new_image_hu[new_mask]))
    shift = abs(median - float(np.median(previous_image_hu[previous_mask])))
    if shift > config.max_median_shift_hu:
        return f"its median HU changed by {shift:.0f} HU (another tissue)"
    if start is not None and abs(median - start.median_hu) > config.max_median_shift_hu:
        drift = abs(median - start.median_hu)
        return f"its median HU drifted {drift:.0f} HU from the start slice's (another tissue)"
    return None
