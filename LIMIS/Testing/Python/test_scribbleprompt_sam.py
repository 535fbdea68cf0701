"""ScribblePrompt-SAM: the ViT-B layout of segment-anything, the authors' preprocessing, same interface."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
segment_anything = pytest.importorskip("segment_anything")

from LIMISLib.ct_windows import Window  # noqa: E402
from LIMISLib.exceptions import CorruptWeightsError  # noqa: E402
from LIMISLib.model_interfaces import BBox2Mask  # noqa: E402
from LIMISLib.neural.scribbleprompt_sam import (  # noqa: E402
    ScribblePromptSAMBBox2Mask,
    build_sam,
    count_parameters,
    load_sam_checkpoint,
    sam_image_input,
    sam_state_dict_shapes,
)

pytestmark = pytest.mark.torch
TINY = {"embed_dim": 32, "depth": 1, "num_heads": 1, "global_attn_indexes": (0,)}


@pytest.fixture(scope="module")
def tiny_sam():
    torch.manual_seed(0)
    return build_sam(**TINY)


def test_default_architecture_has_the_state_dict_of_segment_anything_vit_b():
    ours = sam_state_dict_shapes()
    with torch.device("meta"):
        reference = segment_anything.build_sam_vit_b()
    assert ours == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert len(ours) == 314
    assert count_parameters(ours) == pytest.approx(93.7e6, rel=1e-3)


def test_image_preprocessing_is_resize_to_1024_times_255_then_sam_normalisation(tiny_sam):
    image = torch.rand(1, 1, 128, 128)
    seen = sam_image_input(image, tiny_sam)
    resized = torch.nn.functional.interpolate(image, size=(1024, 1024), mode="bilinear", align_corners=False)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    assert seen.shape == (1, 3, 1024, 1024)
    assert torch.allclose(seen, (255 * resized.repeat(1, 3, 1, 1) - mean) / std, atol=1e-4)


@pytest.mark.slow
def test_predicts_through_the_same_interface_and_returns_256_pixel_low_res_logits(tiny_sam):
    model = ScribblePromptSAMBBox2Mask(tiny_sam, crop_margin_px=10)
    assert isinstance(model, BBox2Mask)
    image = np.random.default_rng(0).normal(40, 80, size=(90, 110)).astype(np.float32)
    first = model.predict(image, (30, 20, 70, 60), window=Window(400, 40))
    assert first.probabilities.shape == (90, 110)
    assert first.model_logits.shape == (256, 256)
    assert first.crop_xyxy == (20, 10, 80, 70)
    assert first.extras["mask_index"] in (0, 1, 2)
    assert first.probabilities[:, :20].max() == 0
    second = model.predict(image, (30, 20, 70, 60), positive_clicks=[(50, 40)], previous=first)
    assert second.model_logits.shape == (256, 256)
    scribbles = np.zeros((2, 90, 110), np.float32)
    scribbles[0, 40, 40:60] = 1
    scribbles[1, 85:88, 95:105] = 1  # outside box + margin: the crop grows to hold it
    seen = []
    original = tiny_sam.prompt_encoder.forward

    def spy(points, boxes, masks):
        seen.append(points)
        return original(points, boxes, masks)

    tiny_sam.prompt_encoder.forward = spy
    try:
        third = model.predict(image, (30, 20, 70, 60), scribbles=scribbles, previous=second)
    finally:
        tiny_sam.prompt_encoder.forward = original
    assert third.crop_xyxy == (20, 10, 105, 88)
    coords, labels = seen[-1]
    assert int((labels == 1).sum()) > 0 and int((labels == 0).sum()) > 0  # both scribbles became clicks
    assert coords.shape[1] == labels.shape[1]


def test_checkpoint_loads_strictly_with_the_compile_prefix(tmp_path, tiny_sam):
    path = tmp_path / "sam.pt"
    torch.save({f"_orig_mod.{k}": v for k, v in tiny_sam.state_dict().items()}, path)
    loaded = load_sam_checkpoint(path, architecture=TINY)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, tiny_sam.state_dict()[key])


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_sam):
    path = tmp_path / "unet.pt"
    torch.save({"downs.0.conv.0.weight": torch.zeros(1)}, path)
    with pytest.raises(CorruptWeightsError, match="SAM ViT-B"):
        load_sam_checkpoint(path, architecture=TINY)
