"""train-lang2bbox: the paper's prompts and augmentations, adapter-only checkpoints, resumable, learning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.image_io import write_volume  # noqa: E402
from LIMISLib import GroundingDinoLang2BBox, LoRASettings  # noqa: E402
from LIMISLib.neural.grounding_dino import DetectorSettings, tiny_config  # noqa: E402
from LIMISLib.neural.lang2bbox_training import (  # noqa: E402
    AugmentationSettings,
    TrainingSettings,
    augment_slice,
    augmentation_matrix,
    latest_checkpoint,
    make_prompt,
    read_metrics,
    train_lang2bbox,
    training_example,
    validation_loss,
)
from LIMISLib.organ_vocabulary import PAPER_STRUCTURES  # noqa: E402
from LIMISLib.training_data import PrepareSettings, SliceDataset, prepare_data  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    """A few phantom slices with many structures (the training split of two tiny phantoms)."""
    root = tmp_path_factory.mktemp("phantoms")
    for seed in (0, 1):
        phantom = make_phantom("tiny", seed=seed)
        write_volume(phantom.ct, root / "images" / f"c{seed}.nii.gz")
        write_volume(phantom.labels, root / "labels" / f"c{seed}.nii.gz")
    prepare_data([("dap", root)], root / "prepared", PrepareSettings(spacing_mm=6.0, size=64))
    data = SliceDataset.load(root / "prepared")
    data.records = sorted(data.records, key=lambda r: -len(r["boxes"]))[:4]
    return data


def tiny_detector_with_lora() -> GroundingDinoLang2BBox:
    torch.manual_seed(0)
    detector = GroundingDinoLang2BBox.from_config(tiny_config(), settings=DetectorSettings(image_size=128))
    detector.add_lora(LoRASettings(rank=4, alpha=8, dropout=0.0))
    return detector


def test_prompt_holds_the_present_names_plus_n_absent_ones_shuffled():
    rng = np.random.default_rng(0)
    orders = set()
    for _ in range(20):
        names = make_prompt(["liver", "spleen"], PAPER_STRUCTURES, 8, rng)
        assert len(names) == 10 == len(set(names))
        assert {"liver", "spleen"} <= set(names) <= set(PAPER_STRUCTURES)
        orders.add(tuple(names))
    assert len(orders) == 20
    assert len(make_prompt(["liver"], PAPER_STRUCTURES, 50, rng)) == 11  # never more names than exist


def test_each_augmentation_is_drawn_with_probability_one_tenth_within_the_paper_ranges():
    rng = np.random.default_rng(0)
    draws = [augmentation_matrix((64, 64), rng) for _ in range(4000)]
    assert sum(m is None for m in draws) / 4000 == pytest.approx(0.9**3, abs=0.03)
    always = AugmentationSettings(probability=1.0)
    for _ in range(200):
        matrix = augmentation_matrix((64, 64), rng, always)
        forward = np.linalg.inv(matrix[:2, :2])
        scale = math.sqrt(abs(np.linalg.det(forward)))
        angle = math.degrees(math.atan2(forward[1, 0], forward[0, 0]))
        assert 0.9 - 1e-9 <= scale <= 1.1 + 1e-9 and abs(angle) <= 10.3 + 1e-9
        centre = np.array([31.5, 31.5])
        shift = forward @ (centre - matrix[:2, 2]) - centre  # where the centre moves to, minus the centre
        assert np.all(np.abs(shift) <= 10 + 1e-6)


def test_image_and_labels_are_transformed_together():
    labels = np.zeros((64, 64), np.uint8)
    labels[20:40, 10:30] = 13
    image = labels.astype(np.float32) / 13
    rng = np.random.default_rng(5)
    warped, warped_labels = augment_slice(image, labels, rng, AugmentationSettings(probability=1.0))
    assert not np.array_equal(warped_labels, labels)
    assert np.mean((warped > 0.5) != (warped_labels == 13)) < 0.01
    same_image, same_labels = augment_slice(image, labels, rng, AugmentationSettings(probability=0.0))
    assert same_image is image and same_labels is labels


def test_training_targets_index_the_present_names_of_the_prompt(slices):
    record = slices.records[0]
    _, names, target = training_example(
        slices.load_arrays(record),
        slices.structures,
        TrainingSettings(augment=False),
        np.random.default_rng(0),
    )
    present = [names[i] for i in target["class_labels"].tolist()]
    assert set(present) == set(record["boxes"])
    for name, (cx, cy, w, h) in zip(present, target["boxes"].tolist(), strict=True):
        x0, y0, x1, y1 = record["boxes"][name]
        assert (cx * 64, cy * 64, w * 64, h * 64) == pytest.approx(
            ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
        )


def test_a_few_training_steps_reduce_the_loss(slices, tmp_path):
    detector = tiny_detector_with_lora()
    settings = TrainingSettings(
        steps=6, batch_size=2, learning_rate=1e-2, n_absent=2, augment=False, log_every=1
    )
    before = validation_loss(detector, slices, settings)
    result = train_lang2bbox(detector, slices, tmp_path / "run", settings, show_progress=False)
    after = validation_loss(detector, slices, settings)
    assert after < 0.5 * before, (before, after)
    assert [entry["step"] for entry in read_metrics(tmp_path / "run")] == list(range(1, 7))
    assert (
        len(result.losses) == 6 and result.final_adapter == tmp_path / "run" / "checkpoints" / "step_000006"
    )


@pytest.mark.slow
def test_checkpoints_hold_the_adapter_only_and_training_resumes_where_it_stopped(slices, tmp_path):
    settings = dict(batch_size=2, learning_rate=1e-3, n_absent=2, checkpoint_every=2, log_every=1)
    straight = tiny_detector_with_lora()
    train_lang2bbox(
        straight, slices, tmp_path / "straight", TrainingSettings(steps=4, **settings), show_progress=False
    )

    interrupted = tiny_detector_with_lora()
    train_lang2bbox(
        interrupted, slices, tmp_path / "resumed", TrainingSettings(steps=2, **settings), show_progress=False
    )
    resumed = tiny_detector_with_lora()
    result = train_lang2bbox(
        resumed, slices, tmp_path / "resumed", TrainingSettings(steps=4, **settings), show_progress=False
    )
    assert result.resumed_from == 2 and len(result.losses) == 2
    for (name, a), (_, b) in zip(
        straight.model.named_parameters(), resumed.model.named_parameters(), strict=True
    ):
        if "lora_" in name:
            assert torch.allclose(a, b, atol=1e-6), name

    checkpoint = latest_checkpoint(tmp_path / "resumed")
    assert checkpoint.name == "step_000004"
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    assert all("lora_" in key for key in weights)
    assert sum(v.numel() for v in weights.values()) == resumed.trainable_parameter_count()
    saved = json.loads((checkpoint / "lang2bbox_settings.json").read_text())
    assert saved["vocabulary"] == slices.structures and saved["image_size"] == 128


def test_training_needs_an_adapter(slices, tmp_path):
    torch.manual_seed(0)
    detector = GroundingDinoLang2BBox.from_config(tiny_config(), settings=DetectorSettings(image_size=128))
    with pytest.raises(ValueError, match="LoRA"):
        train_lang2bbox(detector, slices, tmp_path, TrainingSettings(steps=1), show_progress=False)
