"""The pixel checks of the browser tests, on images built by hand (no browser needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from .web_pixels import (
    changed_fraction,
    chroma,
    coloured_fraction,
    decode_png,
    drawn,
    new_colour_fraction,
)


def grey_ramp(height=60, width=80) -> np.ndarray:
    """A CT-like grey picture: 80 distinct grey levels left to right."""
    levels = np.linspace(20, 220, width).round().astype(np.uint8)
    return np.repeat(np.repeat(levels[None, :, None], height, axis=0), 3, axis=2)


def test_a_blank_or_single_colour_view_is_not_drawn():
    for value in (0, 37, 255):
        summary = drawn(np.full((50, 70, 3), value, np.uint8))
        assert summary.grey_levels == 1 and summary.grey_std == 0.0
        assert not summary.is_image()
    assert not drawn(np.zeros((50, 70, 3), np.uint8) + np.array([200, 30, 30], np.uint8)).is_image()


def test_a_grey_picture_is_drawn_and_counted_by_hand():
    image = grey_ramp()
    summary = drawn(image)
    assert summary.grey_levels == np.unique(image[..., 0]).size == 80
    assert summary.grey_std == pytest.approx(image[..., 0].astype(float).std())
    assert summary.grey_fraction == 1.0
    assert summary.is_image()
    # two grey levels only (a placeholder, a letterbox) is not a picture
    two = np.zeros((50, 70, 3), np.uint8)
    two[:, 35:] = 200
    assert not drawn(two).is_image()


def test_coloured_pixels_of_a_mask_overlay_are_counted_exactly():
    base = grey_ramp()
    overlay = base.copy()
    # a 10 x 12 orange patch (liver colour) blended at 50 % over the grey: chroma ~ 0.5 * (221 - 56)
    patch = (overlay[10:20, 30:42].astype(float) * 0.5 + np.array([221, 130, 101]) * 0.5).round()
    overlay[10:20, 30:42] = patch.astype(np.uint8)
    assert chroma(base).max() == 0
    assert coloured_fraction(base) == 0.0
    assert coloured_fraction(overlay) == pytest.approx(10 * 12 / (60 * 80))
    assert new_colour_fraction(base, overlay) == pytest.approx(10 * 12 / (60 * 80))
    # colour that was already there does not count as new
    assert new_colour_fraction(overlay, overlay) == 0.0
    assert changed_fraction(base, overlay) == pytest.approx(10 * 12 / (60 * 80))


def test_jpeg_like_noise_is_neither_colour_nor_change():
    rng = np.random.default_rng(0)
    base = grey_ramp()
    noisy = np.clip(base.astype(int) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
    assert coloured_fraction(noisy) == 0.0
    assert changed_fraction(base, noisy) == 0.0
    assert drawn(noisy).is_image()


def test_screenshots_of_different_views_are_refused():
    with pytest.raises(ValueError, match="different sizes"):
        changed_fraction(np.zeros((100, 100, 3), np.uint8), np.zeros((50, 100, 3), np.uint8))
    # one pixel of layout difference is tolerated (common size compared)
    assert changed_fraction(np.zeros((100, 100, 3), np.uint8), np.zeros((100, 99, 3), np.uint8)) == 0.0


def test_png_round_trip_keeps_the_pixels():
    from PIL import Image

    image = grey_ramp()
    image[5, 6] = (250, 10, 10)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])).save(buffer, format="PNG")
    decoded = decode_png(buffer.getvalue())
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, image)
