"""What a screenshot of a view shows, from its pixels alone (no browser, no DOM).

The web app's views are images that trame renders on the server and streams over a websocket,
so "the slice view is drawn" and "the mask is shown" can only be told from the pixels of a
screenshot. These functions turn a PNG into numbers that the browser tests compare.

A CT slice is drawn in grey (R = G = B) with many grey levels; a segment, lesion or region
overlay is drawn in colour (channels far apart). The streamed images are JPEG-compressed, so
"grey" and "unchanged" allow a small tolerance.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: A pixel whose channels differ by more than this is "coloured" (JPEG noise on grey stays well below).
MIN_CHROMA = 48
#: A pixel whose channels differ by at most this is "grey".
MAX_GREY_CHROMA = 12
#: A pixel changed between two screenshots when a channel moved by more than this.
CHANGE_TOLERANCE = 24


def decode_png(data: bytes) -> np.ndarray:
    """RGB pixels (height x width x 3, uint8) of a PNG (alpha dropped)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Per pixel: largest minus smallest channel (0 for grey, up to 255 for saturated colour)."""
    rgb = np.asarray(rgb, dtype=np.int16)
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def coloured_mask(rgb: np.ndarray, min_chroma: int = MIN_CHROMA) -> np.ndarray:
    """Boolean mask of the pixels drawn in colour."""
    return chroma(rgb) > min_chroma


def coloured_fraction(rgb: np.ndarray, min_chroma: int = MIN_CHROMA) -> float:
    """Fraction of the pixels drawn in colour."""
    return float(coloured_mask(rgb, min_chroma).mean())


@dataclass(frozen=True)
class Drawn:
    """How much a view image shows: the grey pixels' spread and number of distinct levels."""

    grey_levels: int  # distinct values among the grey pixels
    grey_std: float  # standard deviation of the grey pixels' brightness
    grey_fraction: float  # fraction of the pixels that are grey

    def is_image(self, min_levels: int = 16, min_std: float = 8.0) -> bool:
        """True when the view shows a picture (a CT slice), not a blank or single-colour area."""
        return self.grey_levels >= min_levels and self.grey_std >= min_std

    def __str__(self) -> str:
        return f"{self.grey_levels} grey levels, grey std {self.grey_std:.1f}, {self.grey_fraction:.0%} grey"


def drawn(rgb: np.ndarray) -> Drawn:
    """Summary of the grey content of a view image (see :class:`Drawn`)."""
    rgb = np.asarray(rgb)
    grey = chroma(rgb) <= MAX_GREY_CHROMA
    if not grey.any():
        return Drawn(0, 0.0, 0.0)
    brightness = rgb[grey].astype(np.float64).mean(axis=-1)
    return Drawn(
        grey_levels=int(np.unique(np.round(brightness)).size),
        grey_std=float(brightness.std()),
        grey_fraction=float(grey.mean()),
    )


def changed_fraction(before: np.ndarray, after: np.ndarray, tolerance: int = CHANGE_TOLERANCE) -> float:
    """Fraction of the pixels that changed between two screenshots of the same element."""
    before, after = _same_size(before, after)
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=-1)
    return float((diff > tolerance).mean())


def new_colour_fraction(before: np.ndarray, after: np.ndarray, min_chroma: int = MIN_CHROMA) -> float:
    """Fraction of the pixels that are coloured in ``after`` but were not in ``before``
    (an overlay that appeared), whatever colour was already there."""
    before, after = _same_size(before, after)
    return float((coloured_mask(after, min_chroma) & ~coloured_mask(before, min_chroma)).mean())


def _same_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop two screenshots of one element to their common size (layout may move a pixel)."""
    a, b = np.asarray(a), np.asarray(b)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    if h < 0.9 * max(a.shape[0], b.shape[0]) or w < 0.9 * max(a.shape[1], b.shape[1]):
        raise ValueError(f"screenshots of different sizes {a.shape[:2]} and {b.shape[:2]}: not the same view")
    return a[:h, :w], b[:h, :w]
