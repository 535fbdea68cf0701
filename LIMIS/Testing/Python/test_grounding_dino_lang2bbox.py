"""Lang2BBox: transformers Grounding DINO with a peft LoRA adapter, prompted as in LIMIS (tiny models)."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from LIMISLib import GroundingDinoLang2BBox, LoRASettings  # noqa: E402
from LIMISLib.exceptions import InvalidPromptError, MissingWeightsError, StructureNotFoundError  # noqa: E402
from LIMISLib.model_interfaces import Detection, Lang2BBox  # noqa: E402
from LIMISLib.neural.grounding_dino import (  # noqa: E402
    DetectorSettings,
    cxcywh_to_xyxy,
    load_tokenizer,
    phrase_token_maps,
    save_tiny_base,
    tiny_config,
    xyxy_to_cxcywh,
)

pytestmark = pytest.mark.torch
NAMES = ["liver", "kidney left", "spleen"]


def tiny_detector(seed: int = 0) -> GroundingDinoLang2BBox:
    torch.manual_seed(seed)
    return GroundingDinoLang2BBox.from_config(tiny_config(), settings=DetectorSettings(image_size=128))


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).normal(size=(128, 128)).astype(np.float32)


def test_the_packaged_vocabulary_is_bert_base_uncased(tokenizer):
    ids = tokenizer("liver . kidney left .")["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102
    assert ids[1] == 11290  # "liver"
    assert ids.count(1012) == 2  # "."


def test_phrases_are_split_at_the_dots(tokenizer):
    ids = torch.tensor([tokenizer("liver . kidney left . spleen .")["input_ids"]])
    (maps,) = phrase_token_maps(ids)
    tokens = [tokenizer.convert_ids_to_tokens(ids[0][row.bool()].tolist()) for row in maps]
    assert tokens == [["liver"], ["kidney", "left"], ["sp", "##leen"]]


def test_lora_goes_on_self_attention_and_deformable_attention_only():
    detector = tiny_detector()
    total = sum(p.numel() for p in detector.model.parameters())
    n_trainable = detector.add_lora(LoRASettings(rank=4, alpha=8, dropout=0.0))
    wrapped = {
        re.sub(r"layers\.\d+", "layers.N", name.removeprefix("base_model.model.model."))
        for name, module in detector.model.named_modules()
        if hasattr(module, "lora_A")
    }
    assert wrapped == {
        *(
            f"encoder.layers.N.text_enhancer_layer.self_attn.{p}"
            for p in ("query", "key", "value", "out_proj")
        ),
        *(
            f"encoder.layers.N.deformable_layer.self_attn.{p}"
            for p in ("sampling_offsets", "attention_weights", "value_proj", "output_proj")
        ),
        *(f"decoder.layers.N.self_attn.{p}" for p in ("query", "key", "value", "out_proj")),
        *(f"decoder.layers.N.encoder_attn_text.{p}" for p in ("query", "key", "value", "out_proj")),
        *(
            f"decoder.layers.N.encoder_attn.{p}"
            for p in ("sampling_offsets", "attention_weights", "value_proj", "output_proj")
        ),
    }
    trainable = [n for n, p in detector.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert n_trainable == sum(p.numel() for n, p in detector.model.named_parameters() if p.requires_grad)
    assert n_trainable < 0.02 * total


def test_lora_settings_are_configurable():
    detector = tiny_detector()
    only_queries = r".*decoder\.layers\.\d+\.self_attn\.query$"
    detector.add_lora(LoRASettings(rank=2, alpha=5, dropout=0.1, target_modules=only_queries))
    config = detector.model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (2, 5, 0.1)
    wrapped = [n for n, m in detector.model.named_modules() if hasattr(m, "lora_A")]
    assert len(wrapped) == 2 and all(n.endswith("self_attn.query") for n in wrapped)


def _perturb_adapter(detector: GroundingDinoLang2BBox) -> None:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in detector.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


@pytest.mark.slow
def test_adapter_is_saved_on_its_own_reloaded_and_merged_with_the_same_outputs(tmp_path, image):
    trained = tiny_detector(seed=3)
    base_state = {k: v.clone() for k, v in trained.model.state_dict().items()}
    trained.add_lora(LoRASettings(rank=4, alpha=8, dropout=0.0))
    _perturb_adapter(trained)
    reference = trained.score_phrases([image], [NAMES])[0][0]
    baseline = tiny_detector(seed=3).score_phrases([image], [NAMES])[0][0]
    assert not np.allclose(reference, baseline, atol=1e-4)  # the adapter changes the output

    folder = trained.save_adapter(tmp_path / "adapter")
    assert {p.name for p in folder.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    from safetensors.torch import load_file

    saved = load_file(str(folder / "adapter_model.safetensors"))
    assert saved and all("lora_" in key for key in saved)  # adapter weights only, no base weights

    fresh = tiny_detector(seed=99)
    fresh.model.load_state_dict(base_state)
    fresh.load_adapter(folder)
    assert np.allclose(fresh.score_phrases([image], [NAMES])[0][0], reference, atol=1e-5)

    fresh.merge_adapter()
    assert not fresh.has_adapter
    assert not any("lora" in name for name, _ in fresh.model.named_parameters())
    assert np.allclose(fresh.score_phrases([image], [NAMES])[0][0], reference, atol=1e-4)


def test_base_weights_load_from_a_local_folder(tmp_path, image):
    detector = tiny_detector(seed=5)
    folder = save_tiny_base(detector, tmp_path / "base")
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in folder.iterdir()}
    loaded = GroundingDinoLang2BBox.from_pretrained(folder, image_size=128)
    assert np.allclose(
        loaded.score_phrases([image], [NAMES])[0][0],
        detector.score_phrases([image], [NAMES])[0][0],
        atol=1e-5,
    )
    with pytest.raises(MissingWeightsError, match=r"config\.json"):
        GroundingDinoLang2BBox.from_pretrained(tmp_path / "empty")


def test_detect_returns_the_highest_scoring_box_of_the_target_phrase(image):
    detector = tiny_detector()
    assert isinstance(detector, Lang2BBox)
    scores, boxes = detector.score_phrases([detector.normalise(image * 100)], [NAMES])[0]
    best = int(np.argmax(scores[:, 1]))
    found = detector.detect(image * 100, "Kidney Left", candidates=NAMES, score_threshold=0.0)
    assert isinstance(found, Detection) and found.label == "kidney left"
    assert found.score == pytest.approx(float(scores[best, 1]), abs=1e-6)
    assert found.box_xyxy == pytest.approx(cxcywh_to_xyxy(boxes[best], 128, 128))


def test_below_the_threshold_the_structure_is_not_found_with_a_clear_message(image):
    with pytest.raises(StructureNotFoundError, match=r"'spleen'.*threshold 1\.01"):
        tiny_detector().detect(image, "spleen", candidates=NAMES, score_threshold=1.01)


def test_a_name_that_would_break_the_phrase_split_is_refused(image):
    with pytest.raises(InvalidPromptError, match="phrases"):
        tiny_detector().detect(image, "liver", candidates=["liver", "segment 4. liver"], score_threshold=0)


def test_boxes_convert_between_pixels_and_normalised_centre_format():
    box = (10.0, 20.0, 50.0, 100.0)
    assert xyxy_to_cxcywh(box, 200, 400) == (0.15, 0.15, 0.2, 0.2)
    assert cxcywh_to_xyxy(xyxy_to_cxcywh(box, 200, 400), 200, 400) == pytest.approx(box)


def test_batched_loss_is_the_box_weighted_mean_of_single_image_losses(image):
    """transformers 5.x offsets class labels wrongly for batches > 2; our loss function fixes it."""
    detector = tiny_detector()
    detector.model.eval()
    detector.model.config.auxiliary_loss = False
    rng = np.random.default_rng(1)
    images = [rng.normal(size=(128, 128)).astype(np.float32) for _ in range(3)]
    prompts = [
        ["liver", "spleen"],
        ["kidney left", "colon", "liver", "stomach"],
        ["bladder", "liver", "spleen"],
    ]
    targets = [
        {"class_labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3]])},
        {
            "class_labels": torch.tensor([3, 0]),
            "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.2], [0.6, 0.6, 0.3, 0.2]]),
        },
        {"class_labels": torch.tensor([2]), "boxes": torch.tensor([[0.7, 0.3, 0.1, 0.1]])},
    ]
    with torch.no_grad():
        batched = detector.forward(images, prompts, labels=targets)[0].loss_dict
        singles = [
            detector.forward([i], [p], labels=[t])[0].loss_dict
            for i, p, t in zip(images, prompts, targets, strict=True)
        ]
    counts = [len(t["class_labels"]) for t in targets]
    for key in ("loss_ce", "loss_bbox", "loss_giou"):
        weighted = sum(float(s[key]) * n for s, n in zip(singles, counts, strict=True)) / sum(counts)
        assert float(batched[key]) == pytest.approx(weighted, rel=1e-3), key
