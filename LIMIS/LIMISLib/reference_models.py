"""A transparent, non-learned BBox2Mask: the **baseline without weights**.

:class:`IntensityBBox2Mask` is *not* LIMIS's neural model and never stands in for it silently. It
exists so that the interaction loop can be tested, demonstrated and used offline when the
ScribblePrompt weights are not installed, and the Slicer module offers it only as an explicitly
labelled "baseline (no weights)" choice. It implements the
:class:`~LIMISLib.model_interfaces.BBox2Mask` protocol exactly, so every command of the loop
behaves with it as with the real model -- only the segmentation quality differs.

How it segments (all inside the box; the probability outside the box is 0):

1. The crop is smoothed (Gaussian, ``smoothing_px``, against CT noise) and normalised with the CT
   ``window`` (or min-max of the crop when no window is given, as ScribblePrompt does by default).
2. *Seed* pixels define the structure's intensity: the central third of the box plus the 3 x 3
   neighbourhoods of the positive clicks inside the box.
3. ``ref`` = median seed intensity, ``tol`` = max(``min_tolerance``, ``spread_factor`` x robust
   standard deviation of the seeds); the intensity logit is ``(tol - |I - ref|) / (tol / 4)``:
   +4 at the reference intensity, 0 at ``tol`` away, negative beyond.
4. Clicks are local priors: a Gaussian bump of ``click_strength`` logits (sigma
   ``click_radius_px``), added for positive and subtracted for negative clicks. A scribble is a
   line of such clicks: the bump of its *nearest* scribbled pixel (not the sum over its pixels),
   and positive scribble pixels inside the box are seeds as well.
5. The previous prediction (if its logits cover this slice) is a prior:
   ``prior_weight * clip(previous.logits, -6, 6)`` is added.
6. Connectivity (``connected_to_seeds``, default on): of the pixels with a positive logit, only the
   8-connected regions that touch a seed pixel or the previous mask are kept; the others get at
   most ``-detached_logit`` (a structure is one connected region, not every pixel of similar HU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ct_windows import Window, apply_window
from .exceptions import ImageDimensionError
from .model_interfaces import Box, MaskPrediction, Point, check_scribbles
from .slice_geometry import box_pixel_slices, clip_box

#: Logit written outside the box (probability there is set to exactly 0).
OUTSIDE_LOGIT = -20.0


class IntensityBBox2Mask:
    """Baseline BBox2Mask (no weights): windowed-intensity similarity to the box centre, in the box."""

    name = "baseline: intensity in box (no weights)"
    is_baseline = True

    def __init__(
        self,
        *,
        min_tolerance: float = 0.03,
        spread_factor: float = 2.5,
        click_strength: float = 8.0,
        click_radius_px: float = 3.0,
        prior_weight: float = 0.5,
        connected_to_seeds: bool = True,
        smoothing_px: float = 1.0,
        detached_logit: float = 4.0,
    ) -> None:
        self.min_tolerance = float(min_tolerance)
        self.spread_factor = float(spread_factor)
        self.click_strength = float(click_strength)
        self.click_radius_px = float(click_radius_px)
        self.prior_weight = float(prior_weight)
        self.connected_to_seeds = bool(connected_to_seeds)
        self.smoothing_px = float(smoothing_px)
        self.detached_logit = float(detached_logit)

    def predict(
        self,
        image_hu: np.ndarray,
        box_xyxy: Box,
        *,
        positive_clicks: Sequence[Point] = (),
        negative_clicks: Sequence[Point] = (),
        previous: MaskPrediction | None = None,
        window: Window | None = None,
        scribbles: np.ndarray | None = None,
    ) -> MaskPrediction:
        image = np.asarray(image_hu, dtype=np.float32)
        if image.ndim != 2:
            raise ImageDimensionError(
                f"BBox2Mask works on one 2D slice; got an array of shape {image.shape}."
            )
        scribbled = None if scribbles is None else check_scribbles(scribbles, image.shape) > 0
        box = clip_box(box_xyxy, image.shape, min_size_px=1.0)
        rows, columns = box_pixel_slices(box, image.shape)
        crop = image[rows, columns]
        if self.smoothing_px > 0:
            from scipy import ndimage

            crop = ndimage.gaussian_filter(crop, self.smoothing_px, mode="nearest")
        if window is not None:
            normalised = apply_window(crop, window)
        else:
            low, high = float(crop.min()), float(crop.max())
            normalised = (crop - low) / (high - low) if high > low else np.zeros_like(crop)

        yy, xx = np.mgrid[rows, columns]
        centres_x, centres_y = xx + 0.5, yy + 0.5
        seed_mask = self._seed_mask(normalised.shape, rows, columns, positive_clicks)
        if scribbled is not None:
            seed_mask |= scribbled[0][rows, columns]
        seeds = normalised[seed_mask]
        reference = float(np.median(seeds))
        robust_std = 1.4826 * float(np.median(np.abs(seeds - reference)))
        tolerance = max(self.min_tolerance, self.spread_factor * robust_std)
        logits = (tolerance - np.abs(normalised - reference)) / (tolerance / 4.0)

        two_sigma2 = 2.0 * self.click_radius_px**2
        for points, sign in ((positive_clicks, 1.0), (negative_clicks, -1.0)):
            for x, y in points:
                distance2 = (centres_x - float(x)) ** 2 + (centres_y - float(y)) ** 2
                logits = logits + sign * self.click_strength * np.exp(-distance2 / two_sigma2)
        if scribbled is not None:
            from scipy import ndimage

            for channel, sign in ((0, 1.0), (1, -1.0)):
                if scribbled[channel].any():
                    distance = ndimage.distance_transform_edt(~scribbled[channel])[rows, columns]
                    logits = logits + sign * self.click_strength * np.exp(-(distance**2) / two_sigma2)

        anchors = seed_mask.copy()
        if previous is not None and np.shape(previous.logits) == image.shape:
            previous_crop = np.asarray(previous.logits, dtype=np.float32)[rows, columns]
            logits = logits + self.prior_weight * np.clip(previous_crop, -6.0, 6.0)
            anchors |= previous_crop > 0
        if self.connected_to_seeds:
            logits = self._keep_connected(logits, anchors)

        full_logits = np.full(image.shape, OUTSIDE_LOGIT, dtype=np.float32)
        full_logits[rows, columns] = logits
        probabilities = np.zeros(image.shape, dtype=np.float32)
        probabilities[rows, columns] = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
        crop_xyxy = (float(columns.start), float(rows.start), float(columns.stop), float(rows.stop))
        return MaskPrediction(
            logits=full_logits,
            probabilities=probabilities,
            model_logits=logits.astype(np.float32),
            crop_xyxy=crop_xyxy,
            extras={"reference_intensity": reference, "tolerance": tolerance, "model": self.name},
        )

    @staticmethod
    def _seed_mask(
        shape: tuple[int, int], rows: slice, columns: slice, positive_clicks: Sequence[Point]
    ) -> np.ndarray:
        """Seed pixels in crop coordinates: the box's central third and 3 x 3 around positive clicks."""
        height, width = shape
        seeds = np.zeros(shape, dtype=bool)
        r0, r1 = height // 3, max(height // 3 + 1, (2 * height + 2) // 3)
        c0, c1 = width // 3, max(width // 3 + 1, (2 * width + 2) // 3)
        seeds[r0:r1, c0:c1] = True
        for x, y in positive_clicks:
            r, c = int(np.floor(y)) - rows.start, int(np.floor(x)) - columns.start
            if 0 <= r < height and 0 <= c < width:
                seeds[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = True
        return seeds

    def _keep_connected(self, logits: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Positive-logit regions not touching an anchor pixel are pushed to at most ``-detached_logit``."""
        from scipy import ndimage

        labels, count = ndimage.label(logits > 0, structure=np.ones((3, 3), dtype=bool))
        if count == 0:
            return logits
        keep = np.zeros(count + 1, dtype=bool)
        keep[np.unique(labels[anchors & (labels > 0)])] = True
        keep[0] = True
        detached = ~keep[labels]
        return np.where(detached, np.minimum(logits, -self.detached_logit), logits).astype(np.float32)
