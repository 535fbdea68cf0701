"""Prompts are encoded exactly as ScribblePrompt encodes them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from LIMISLib.exceptions import InvalidPromptError  # noqa: E402
from LIMISLib.neural.scribbleprompt_prompts import (  # noqa: E402
    box_on_grid,
    encode_prompts,
    minmax_normalise,
    rasterise_box,
    resize_image,
)

pytestmark = pytest.mark.torch


def test_channels_are_image_box_positive_negative_previous_in_this_order():
    image = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
    previous = np.full((128, 128), -3.5, dtype=np.float32)
    x = encode_prompts(
        image, (10, 20, 30, 40), positive_clicks=[(5, 6)], negative_clicks=[(7, 8)], previous_logits=previous
    )
    assert x.shape == (1, 5, 128, 128)
    assert np.array_equal(x[0, 0].numpy(), image)
    assert x[0, 1].sum() == 20 * 20 and x[0, 1, 20, 10] == 1 and x[0, 1, 40, 30] == 0
    assert x[0, 2, 6, 5] == 1 and x[0, 2].sum() == 1
    assert x[0, 3, 8, 7] == 1 and x[0, 3].sum() == 1
    assert np.all(x[0, 4].numpy() == -3.5)


def test_without_prompts_the_prompt_channels_are_zero():
    x = encode_prompts(np.zeros((64, 64), np.float32), None)
    assert torch.count_nonzero(x[0, 1:]) == 0


def test_box_corners_are_scaled_and_truncated_and_the_end_is_excluded():
    # 100 x 100 image: x scaled by 1.28; 90 * 1.28 = 115.2 -> 115, 100 -> 128; y: 50 * 1.28 = 64.
    assert box_on_grid((90, 0, 100, 50), (100, 100)) == (115, 0, 128, 64)
    channel = rasterise_box((115, 0, 128, 64))
    expected = np.zeros((128, 128), np.float32)
    expected[0:64, 115:128] = 1
    assert np.array_equal(channel, expected)


def test_a_box_at_the_image_border_covers_the_last_row_and_column():
    x = encode_prompts(np.zeros((256, 256), np.float32), (200.0, 200.0, 256.0, 256.0))
    box = x[0, 1].numpy()
    assert box[127, 127] == 1 and box[99, 99] == 0 and box.sum() == 28 * 28


def test_a_box_smaller_than_one_grid_pixel_vanishes_as_in_scribbleprompt():
    # 512 px -> 128: x0 = int(100 / 4) = 25 and x1 = int(102.5 / 4) = 25: an empty slice, like the original.
    x = encode_prompts(np.zeros((512, 512), np.float32), (100.0, 100.0, 102.5, 103.0))
    assert torch.count_nonzero(x[0, 1]) == 0


def test_clicks_are_single_pixels_at_truncated_coordinates():
    # 200 x 100 (rows x columns): x scaled by 1.28, y by 0.64; (10.7, 20.2) -> (13, 12).
    x = encode_prompts(np.zeros((200, 100), np.float32), None, positive_clicks=[(10.7, 20.2)])
    assert x[0, 2].sum() == 1 and x[0, 2, 12, 13] == 1


def test_a_click_outside_the_grid_is_refused():
    with pytest.raises(InvalidPromptError):
        encode_prompts(np.zeros((64, 64), np.float32), None, positive_clicks=[(64, 3)])


def test_resizing_by_two_is_the_mean_of_each_two_by_two_block():
    # bilinear with align_corners=False samples half-way between pixel centres when halving.
    image = np.random.default_rng(0).random((256, 256)).astype(np.float32)
    blocks = image.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    assert np.allclose(resize_image(image)[0, 0].numpy(), blocks, atol=1e-6)


def test_minmax_normalisation_spans_zero_to_one_and_a_constant_image_gives_zeros():
    scaled = minmax_normalise(np.array([[-100.0, 0.0], [300.0, 100.0]]))
    assert np.allclose(scaled, [[0.0, 0.25], [1.0, 0.5]])
    assert np.array_equal(minmax_normalise(np.full((3, 3), 7.0)), np.zeros((3, 3)))


def test_an_image_outside_zero_one_is_refused_as_in_scribbleprompt():
    with pytest.raises(InvalidPromptError, match=r"\[0, 1\]"):
        encode_prompts(np.full((8, 8), 2.0, np.float32), None)


def test_scribbles_are_resized_added_to_clicks_and_clamped():
    scribbles = np.zeros((2, 128, 128), np.float32)
    scribbles[0, 10, 10] = 1
    scribbles[1, 50:52, 50:52] = 1
    x = encode_prompts(
        np.zeros((128, 128), np.float32), None, positive_clicks=[(10, 10)], scribbles=scribbles
    )
    assert x[0, 2, 10, 10] == 1  # click + scribble, clamped
    assert x[0, 3].sum() == 4
