"""The BBox2Mask pipeline crops to the box, windows before normalising and maps the mask back."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from LIMISLib import ScribblePromptBBox2Mask, ScribblePromptUNet, enlarge_box  # noqa: E402
from LIMISLib.bbox2mask import OUTSIDE_LOGIT, crop_bounds  # noqa: E402
from LIMISLib.ct_windows import Window  # noqa: E402
from LIMISLib.exceptions import ImageDimensionError, InvalidPromptError  # noqa: E402
from LIMISLib.model_interfaces import BBox2Mask, MaskPrediction  # noqa: E402

pytestmark = pytest.mark.torch


class ProbeNetwork(torch.nn.Module):
    """Records its input; outputs +10 inside the box channel and -10 outside (so mask == box)."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return (x[:, 1:2] * 2 - 1) * 10


def make_probe(**settings) -> tuple[ScribblePromptBBox2Mask, ProbeNetwork]:
    network = ProbeNetwork()
    return ScribblePromptBBox2Mask(network, **settings), network


def ramp_image(height: int = 120, width: int = 160) -> np.ndarray:
    return np.linspace(-1000, 1000, height * width, dtype=np.float32).reshape(height, width)


def test_enlarge_box_grows_each_side_and_clips_to_the_image():
    assert enlarge_box((20, 30, 40, 50), 10, (100, 100)) == (10, 20, 50, 60)
    assert enlarge_box((5, 2, 95, 98), 10, (100, 100)) == (0, 0, 100, 100)
    assert enlarge_box((20, 30, 40, 50), -15, (100, 100)) == (30, 40, 30, 40)  # shrinks to the centre


def test_crop_is_the_box_plus_margin_widened_to_hold_clicks():
    assert crop_bounds((20.5, 30, 40, 50.2), 10, (100, 100)) == (10, 20, 50, 61)
    assert crop_bounds((20, 30, 40, 50), 10, (100, 100), [(80, 5)]) == (10, 5, 81, 60)
    assert crop_bounds((2, 3, 98, 99), 10, (100, 100)) == (0, 0, 100, 100)


def test_the_scribbleprompt_pipeline_implements_the_bbox2mask_protocol():
    model, _ = make_probe()
    assert isinstance(model, BBox2Mask)


def test_mask_maps_back_to_the_box_on_the_full_slice_and_is_empty_outside_the_crop():
    model, _ = make_probe(crop_margin_px=16)
    image = ramp_image()
    prediction = model.predict(image, (40, 30, 104, 94))
    assert isinstance(prediction, MaskPrediction)
    assert prediction.probabilities.shape == image.shape == prediction.logits.shape
    assert prediction.crop_xyxy == (24, 14, 120, 110)
    expected = np.zeros(image.shape, bool)
    expected[30:94, 40:104] = True
    disagreement = np.logical_xor(prediction.mask(), expected).sum()
    assert disagreement <= 2 * (64 + 64)  # at most a one-pixel rim from the 128-grid resampling
    assert prediction.probabilities[:14].max() == 0 and prediction.probabilities[:, 120:].max() == 0
    assert np.all(prediction.logits[:14] == OUTSIDE_LOGIT)
    assert prediction.model_logits.shape == (128, 128)


def test_the_organ_window_is_applied_before_the_minmax_normalisation():
    model, network = make_probe(crop_margin_px=10)
    image = ramp_image()
    window = Window(150, 30)  # liver: -45 .. 105 HU
    model.predict(image, (40, 30, 100, 90), window=window)
    seen = network.inputs[-1][0, 0].numpy()
    crop = image[20:100, 30:110]
    expected = np.clip(crop, -45, 105)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(expected.astype(np.float32))[None, None], size=(128, 128), mode="bilinear"
    )[0, 0].numpy()
    assert np.allclose(seen, resized, atol=1e-5)
    assert seen.min() == 0 and seen.max() == 1


def test_without_a_window_the_crop_is_minmax_normalised():
    model, network = make_probe(crop_margin_px=0)
    image = ramp_image()
    model.predict(image, (0, 0, 128, 120))
    seen = network.inputs[-1][0, 0].numpy()
    crop = image[0:120, 0:128]
    expected = (crop - crop.min()) / (crop.max() - crop.min())
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(expected.astype(np.float32))[None, None], size=(128, 128), mode="bilinear"
    )
    assert np.allclose(seen, resized[0, 0].numpy(), atol=1e-5)


def test_whole_image_mode_feeds_the_entire_slice():
    model, network = make_probe(crop_to_box=False)
    prediction = model.predict(ramp_image(), (40, 30, 100, 90))
    assert prediction.crop_xyxy == (0, 0, 160, 120)
    box = network.inputs[-1][0, 1].numpy()
    # 160 -> 128: x * 0.8; 120 -> 128: y * 16/15; truncated.
    assert box.sum() == (80 - 32) * (96 - 32) and box[32, 32] == 1 and box[96, 80] == 0


def test_clicks_land_in_the_crop_frame():
    model, network = make_probe(crop_margin_px=0)
    image = ramp_image(160, 160)
    model.predict(image, (20, 20, 148, 148), positive_clicks=[(30, 40)], negative_clicks=[(50, 60)])
    x = network.inputs[-1]  # the crop is 128 x 128 from (20, 20): no rescaling
    assert x[0, 2, 20, 10] == 1 and x[0, 3, 40, 30] == 1


def test_previous_logits_are_fed_back_unchanged_for_the_same_crop():
    model, network = make_probe()
    image = ramp_image()
    first = model.predict(image, (40, 30, 100, 90))
    first.model_logits = np.random.default_rng(0).normal(size=(128, 128)).astype(np.float32)
    model.predict(image, (40, 30, 100, 90), previous=first)
    assert np.array_equal(network.inputs[-1][0, 4].numpy(), first.model_logits)


def test_previous_logits_from_another_crop_are_resampled_from_the_full_slice():
    model, network = make_probe(crop_margin_px=0)
    image = ramp_image()
    previous = MaskPrediction(
        logits=np.full(image.shape, 3.0, np.float32),
        probabilities=np.ones(image.shape, np.float32),
        model_logits=np.zeros((128, 128), np.float32),
        crop_xyxy=(0, 0, 10, 10),
    )
    previous.logits[:, :80] = 50.0  # clipped to 20 when fed back
    model.predict(image, (40, 0, 120, 120), previous=previous)
    fed = network.inputs[-1][0, 4].numpy()
    assert fed[:, :60].max() == pytest.approx(20.0) and fed[:, 70:].max() == pytest.approx(3.0)


def test_invalid_prompts_are_refused_with_a_clear_error():
    model, _ = make_probe()
    image = ramp_image()
    with pytest.raises(InvalidPromptError, match="outside"):
        model.predict(image, (200, 10, 230, 40))
    with pytest.raises(InvalidPromptError, match="empty"):
        model.predict(image, (50, 10, 50, 40))
    with pytest.raises(InvalidPromptError, match="click"):
        model.predict(image, (10, 10, 40, 40), positive_clicks=[(170, 5)])
    with pytest.raises(ImageDimensionError):
        model.predict(np.zeros((2, 10, 10)), (1, 1, 5, 5))
    image[0, 0] = np.nan
    with pytest.raises(InvalidPromptError, match="NaN"):
        model.predict(image, (10, 10, 40, 40))


def test_the_real_unet_runs_end_to_end_on_a_slice():
    torch.manual_seed(0)
    model = ScribblePromptBBox2Mask(ScribblePromptUNet())
    prediction = model.predict(ramp_image(), (40, 30, 100, 90), window=Window(400, 40))
    assert prediction.probabilities.shape == (120, 160)
    assert prediction.probabilities.min() >= 0 and prediction.probabilities.max() <= 1
    assert prediction.extras["model"] == "ScribblePrompt-UNet"
