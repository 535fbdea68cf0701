"""``models install`` without network, or for a model without download URL, answers in one line
what to do instead (the real ``python -m <Lib>`` commands, network cut by a dead local proxy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")


def run_offline(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / folder) for folder in SOURCE_ROOTS)
    env["SLICER_ANATOMY_WEIGHTS_DIR"] = str(tmp_path / "weights")
    # port 9 (discard) on the loopback has no listener: every connection is refused at once
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[key] = "http://127.0.0.1:9"
    return subprocess.run(
        [sys.executable, "-m", *arguments], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


@pytest.mark.parametrize(
    "model, files, target",
    [
        ("grounding-dino-tiny", ["config.json", "model.safetensors", "vocab.txt"], "FOLDER"),
        ("scribbleprompt-unet", ["ScribblePrompt_unet_v1_nf192_res128.pt"], "FILE"),
    ],
)
def test_no_network_is_one_line_with_the_offline_route(tmp_path, model, files, target):
    result = run_offline(tmp_path, "LIMISLib", "models", "install", model, "--download")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in result.stderr and line.startswith("error: no network")
    assert all(name in line for name in files)
    assert "https://" in line and "on a connected machine" in line
    assert f"`python -m LIMISLib models install {model} --from {target}`" in line
    weights = tmp_path / "weights"
    assert not weights.exists() or not [p for p in weights.rglob("*") if p.is_file()]  # nothing half-written


@pytest.mark.parametrize("extra", [[], ["--download"]])
def test_a_model_without_download_url_says_where_it_comes_from(tmp_path, extra):
    result = run_offline(tmp_path, "DAPAtlasLib", "models", "install", "dap-atlas-v2", *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--download" not in lines[0]
    assert "no download URL" in lines[0] and "drive.google.com" in lines[0]
    assert "models install dap-atlas-v2 <folder or zip>" in lines[0]


def test_from_installs_a_copied_file_like_source(tmp_path):
    import hashlib
    import json

    from AnatomyCommonLib.cli import dispatch
    from AnatomyCommonLib.weights import WeightsManager, add_models_cli

    data = b"weights" * 10
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "schema": 1,
                "models": [
                    {
                        "name": "one-file",
                        "version": "1",
                        "files": [
                            {
                                "path": "w.pt",
                                "url": "http://127.0.0.1:9/w.pt",
                                "sha256": hashlib.sha256(data).hexdigest(),
                            }
                        ],
                    }
                ],
            }
        )
    )
    manager = WeightsManager([manifest], cache_dir=tmp_path / "cache")
    copied = tmp_path / "w.pt"
    copied.write_bytes(data)
    import argparse

    parser = argparse.ArgumentParser()
    add_models_cli(parser.add_subparsers(), lambda: manager)
    assert dispatch(parser, ["models", "install", "one-file", "--from", str(copied)]) == 0
    assert manager.is_installed("one-file")
    assert (
        dispatch(parser, ["models", "install", "one-file", str(copied), "--from", str(tmp_path / "x")]) == 2
    )
