"""python -m LIMISLib: prepare-data, train-lang2bbox, eval-*, segment-slice on phantoms and tiny models."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.image_io import write_volume  # noqa: E402
from LIMISLib.__main__ import main  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for seed in (0, 1, 2):
        phantom = make_phantom("tiny", seed=seed, orientation="LPS")
        write_volume(phantom.ct, root / "dap" / "images" / f"case{seed}.nii.gz")
        write_volume(phantom.labels, root / "dap" / "labels" / f"case{seed}.nii.gz")
    write_volume(phantom.ct, root / "ct.nii.gz")
    return root


def test_the_model_pipeline_runs_from_the_command_line(workspace, capsys, monkeypatch):
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(workspace / "weights"))
    data, run = workspace / "prepared", workspace / "run"
    assert main(["prepare-data", str(data), "--dataset", f"dap={workspace / 'dap'}", "--spacing-mm", "6",
                 "--size", "64", "--quiet", "--json", str(workspace / "prepare.json")]) == 0  # fmt: skip
    assert json.loads((workspace / "prepare.json").read_text())["counts"]["test"] > 0

    assert main(["train-lang2bbox", str(data), str(run), "--tiny", "--steps", "2", "--batch-size", "2",
                 "--lora-rank", "4", "--checkpoint-every", "1", "--val-slices", "2",
                 "--quiet"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "trainable parameters" in out and "loss: first" in out
    adapter = run / "checkpoints" / "step_000002"
    assert (adapter / "adapter_model.safetensors").is_file() and (
        run / "base_model" / "config.json"
    ).is_file()

    assert main(["eval-lang2bbox", str(data), "--tiny", "--adapter", str(adapter), "--max-slices", "4",
                 "--quiet", "--json", str(workspace / "coco.json")]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "mAP@50" in table and "overall" in table
    assert set(json.loads((workspace / "coco.json").read_text())["overall"]) == {"mAP", "mAP50", "mAP75"}

    assert (
        main(
            [
                "eval-bbox2mask",
                str(data),
                "--random-init",
                "--max-slices",
                "1",
                "--structures",
                "liver",
                "--quiet",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "crop, CT window, box +10 px" in table and "whole image, min-max, box +0 px" in table

    # without weights, segment-slice says what is missing and how to install it
    assert main(["segment-slice", str(workspace / "ct.nii.gz"), "--text", "liver", "--out", "x.png"]) == 2
    error = capsys.readouterr().err
    assert "ScribblePrompt_unet_v1_nf192_res128.pt" in error and "models install" in error

    # with (here: tiny, random) weights installed it writes the PNG
    torch.manual_seed(0)
    from LIMISLib import ScribblePromptUNet

    checkpoint = workspace / "ScribblePrompt_unet_v1_nf192_res128.pt"
    torch.save(ScribblePromptUNet().state_dict(), checkpoint)
    assert main(["models", "install", "scribbleprompt-unet", str(checkpoint)]) == 0
    assert main(["models", "use-folder", "grounding-dino-tiny", str(run / "base_model")]) == 0
    assert main(["models", "install", "limis-lang2bbox-lora", str(adapter)]) == 0
    capsys.readouterr()
    png = workspace / "liver.png"
    assert main(["segment-slice", str(workspace / "ct.nii.gz"), "--text", "the liver", "--slice", "70",
                 "--out", str(png), "--score-threshold", "0"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["structure"] == "liver" and summary["slice"] == 70 and png.is_file()
