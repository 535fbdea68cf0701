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
  ``max_median_shift_hu`` (it is now segmenting another tissue, at once or drifting slowly);
* its **intensity profile** drifted: more than ``max_outside_profile`` of its pixels lie outside
  the start slice's HU range (5th..95th percentile widened by ``profile_tolerance_hu``) -- a leak
  into a neighbour of other density that the median alone does not see (``use_profile``);
* **the atlas label** (when a whole-body label map is present, ``use_atlas``): the map has no
  such structure on the slice, or the share of the mask within ``atlas_tolerance_mm`` of the map's
  structure (the map has errors, hence the tolerance) fell below ``atlas_min_overlap`` times the
  start slice's share (relative, so that a start mask the user accepted sets the standard).

:meth:`PropagationConfig.slice_to_slice_only` switches the last two off (the rules before issue 12).
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
    use_profile: bool = True
    max_outside_profile: float = 0.35
    profile_tolerance_hu: float = 20.0
    use_atlas: bool = True
    atlas_min_overlap: float = 0.4
    atlas_tolerance_mm: float = 6.0

    @classmethod
    def slice_to_slice_only(cls, **overrides) -> PropagationConfig:
        """Only the slice-to-slice rules (area, overlap, median HU): no profile, no atlas rule."""
        return cls(**{"use_profile": False, "use_atlas": False, **overrides})


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
    """What the stop rules need to know about an accepted slice: mask area, median and HU range."""

    area_px: int
    median_hu: float
    low_hu: float = float("nan")  # 5th percentile of the HU inside the mask
    high_hu: float = float("nan")  # 95th percentile
    atlas_share: float | None = None  # share of the mask near the atlas structure (None: no map)

    @classmethod
    def of(
        cls,
        mask: np.ndarray,
        image_hu: np.ndarray,
        *,
        atlas_mask: np.ndarray | None = None,
        pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
        config: PropagationConfig | None = None,
    ) -> SliceSummary:
        mask = np.asarray(mask, dtype=bool)
        area = int(np.count_nonzero(mask))
        if not area:
            return cls(0, float("nan"))
        values = np.asarray(image_hu)[mask]
        low, median, high = np.percentile(values, [5.0, 50.0, 95.0])
        share = None
        if atlas_mask is not None:
            tolerance = (config or PropagationConfig()).atlas_tolerance_mm
            share = atlas_share(mask, np.asarray(atlas_mask, dtype=bool), pixel_spacing_mm, tolerance)
        return cls(area, float(median), float(low), float(high), share)


def atlas_share(
    mask: np.ndarray, atlas_mask: np.ndarray, pixel_spacing_mm: tuple[float, float], tolerance_mm: float
) -> float:
    """Share of the mask's pixels within ``tolerance_mm`` of the atlas structure (0 if the map has none)."""
    if not atlas_mask.any() or not mask.any():
        return 0.0
    from scipy import ndimage

    column_mm, row_mm = pixel_spacing_mm
    distance = ndimage.distance_transform_edt(~atlas_mask, sampling=(row_mm, column_mm))
    return float(np.mean(distance[mask] <= tolerance_mm))


def structure_end_reason(
    previous_mask: np.ndarray,
    new_mask: np.ndarray,
    previous_image_hu: np.ndarray,
    new_image_hu: np.ndarray,
    pixel_area_mm2: float,
    config: PropagationConfig,
    start: SliceSummary | None = None,
    *,
    atlas_mask: np.ndarray | None = None,
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
) -> str | None:
    """Why the structure has ended on the new slice (see the module docstring), or None if it goes on.

    ``start`` summarises the slice the propagation started from (None: only slice-to-slice rules);
    ``atlas_mask`` is the structure on the new slice in a whole-body label map (None: no map);
    ``pixel_spacing_mm`` = (column, row) spacing, for the atlas tolerance.
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
    if config.use_profile and start is not None and np.isfinite(start.low_hu):
        values = np.asarray(new_image_hu)[new_mask]
        low, high = start.low_hu - config.profile_tolerance_hu, start.high_hu + config.profile_tolerance_hu
        outside = float(np.mean((values < low) | (values > high)))
        if outside > config.max_outside_profile:
            return (
                f"{100.0 * outside:.0f} % of its pixels are outside the start slice's HU range "
                f"({low:.0f}..{high:.0f} HU): the intensity profile drifted"
            )
    if config.use_atlas and atlas_mask is not None:
        atlas_mask = np.asarray(atlas_mask, dtype=bool)
        if not atlas_mask.any():
            return "the atlas label map has no such structure on this slice"
        share = atlas_share(new_mask, atlas_mask, pixel_spacing_mm, config.atlas_tolerance_mm)
        reference = 1.0 if start is None or start.atlas_share is None else start.atlas_share
        if share < config.atlas_min_overlap * reference:
            return (
                f"only {100.0 * share:.0f} % of the mask lies within {config.atlas_tolerance_mm:g} mm of the "
                f"atlas label map's structure (start slice: {100.0 * reference:.0f} %)"
            )
    return None
