"""Mouse prompts drawn on a slice, as pixels: a polyline (a markups curve) -> a scribble mask.

Pure numpy (+ scipy for thick lines). Points are continuous display pixels ``(x, y)`` as everywhere
in LIMISLib (pixel ``(r, c)`` covers ``c <= x < c + 1``, ``r <= y < r + 1``); the mask marks every
pixel the line passes through, sampled every quarter pixel along each segment.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from .exceptions import InvalidPromptError

#: Samples per pixel of segment length (4: a pixel the line crosses is missed only at a corner).
SAMPLES_PER_PX = 4


def rasterise_polyline(
    points_xy: Sequence[Sequence[float]],
    image_shape: tuple[int, int],
    *,
    closed: bool = False,
    width_px: float = 1.0,
) -> np.ndarray:
    """Bool (H, W) mask of the polyline through ``points_xy`` (closed: back to the first point).

    ``width_px`` > 1 thickens the line to a band of that width (pixels whose centre lies within
    (width - 1) / 2 of a line pixel's centre). Parts outside the slice are dropped; a line that
    lies wholly outside gives an :class:`InvalidPromptError`.
    """
    points = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    if len(points) == 0 or not np.isfinite(points).all():
        raise InvalidPromptError("A scribble needs at least one finite point.")
    if width_px < 1.0:
        raise InvalidPromptError(f"The scribble width must be >= 1 pixel; got {width_px}.")
    height, width = (int(v) for v in image_shape)
    path = np.vstack([points, points[:1]]) if closed and len(points) > 2 else points
    samples = [path[:1]]
    for start, end in itertools.pairwise(path):
        count = max(1, math.ceil(float(np.hypot(*(end - start))) * SAMPLES_PER_PX))
        t = np.linspace(0.0, 1.0, count + 1)[1:, None]
        samples.append(start + t * (end - start))
    xy = np.floor(np.vstack(samples)).astype(np.int64)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    if not inside.any():
        raise InvalidPromptError(f"The scribble lies outside the {width} x {height} slice.")
    mask = np.zeros((height, width), dtype=bool)
    mask[xy[inside, 1], xy[inside, 0]] = True
    radius = (float(width_px) - 1.0) / 2.0
    if radius > 0:
        from scipy import ndimage

        distance = ndimage.distance_transform_edt(~mask)
        mask = distance <= radius + 1e-9
    return mask
