"""The interaction command line (parse, replay) and the main-job step."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.image_io import write_volume
from LIMISLib.__main__ import main
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session_replay import DEMO_SCRIPT, read_script, replay
from LIMISLib.volume_session import VolumeSession

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=0, sex="M", orientation="LPS", n_lesions=0)


def test_parse_prints_kind_and_args_as_json(capsys):
    assert main(["parse", "negative", "click", "in", "cell", "eleven", "--rules-only"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["kind"], data["args"]) == ("grid_click", {"cell": 11, "positive": False})
    assert main(["parse", "3", "--context", "examples", "--rules-only"]) == 0
    assert json.loads(capsys.readouterr().out)["args"] == {"choice": 3}
    assert main(["parse", "flibber", "--rules-only"]) == 3
    assert json.loads(capsys.readouterr().out)["kind"] == "unknown"


def test_the_demo_script_replays_with_the_baseline_and_writes_a_png_per_step(phantom, tmp_path):
    session = VolumeSession(phantom.ct, IntensityBBox2Mask())
    records = replay(session, list(DEMO_SCRIPT), tmp_path / "out", labels=phantom.labels, semantic=False)
    assert all(record.ok for record in records), [(r.text, r.message) for r in records if not r.ok]
    assert [r.kind for r in records][1:] == [
        "segment",
        "accept",
        "guided",
        "accept",
        "grid_click",
        "revert",
        "propagate",
        "finish",
    ]
    assert "reference label map" in records[1].box_source
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert len(pngs) == len(DEMO_SCRIPT) and all(r.png in pngs for r in records)
    assert len(records[7].changed_slices) > 3
    saved = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert [r["text"] for r in saved] == list(DEMO_SCRIPT)


def test_replay_command_runs_a_script_file_and_refuses_a_non_empty_output(phantom, tmp_path):
    write_volume(phantom.ct, tmp_path / "ct.nii.gz")
    write_volume(phantom.labels, tmp_path / "labels.nii.gz")
    script = tmp_path / "session.txt"
    script.write_text(
        "# demo\n@slice middle spleen\nsegment the spleen   # prompt\nreject\nraise the threshold\n"
    )
    assert read_script(script) == [
        "@slice middle spleen",
        "segment the spleen",
        "reject",
        "raise the threshold",
    ]
    out = tmp_path / "out"
    arguments = ["replay", str(script), "--ct", str(tmp_path / "ct.nii.gz"), "--out", str(out)]
    arguments += ["--labels", str(tmp_path / "labels.nii.gz"), "--model", "baseline", "--rules-only"]
    assert main(arguments) == 0
    assert len(list(out.glob("*.png"))) == 4
    assert main(arguments) == 2  # the folder is not empty now


def test_replay_with_the_neural_models_names_the_missing_weights(phantom, tmp_path):
    write_volume(phantom.ct, tmp_path / "ct.nii.gz")
    (tmp_path / "s.txt").write_text("segment the liver\n")
    path = os.pathsep.join(str(ROOT / folder) for folder in ("AnatomyCommon", "LIMIS"))
    env = {**os.environ, "SLICER_ANATOMY_WEIGHTS_DIR": str(tmp_path / "weights"), "PYTHONPATH": path}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "LIMISLib",
            "replay",
            str(tmp_path / "s.txt"),
            "--ct",
            str(tmp_path / "ct.nii.gz"),
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "scribbleprompt-unet" in result.stderr and "not installed" in result.stderr


def test_the_main_job_step_shows_the_loop_with_the_weight_free_baseline(
    phantom, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(tmp_path / "weights"))
    spec = importlib.util.spec_from_file_location("limis_main_job", ROOT / "scripts" / "main_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = {"phantom": phantom}
    module.step_limis_session(tmp_path, argparse.Namespace(), context)
    printed = capsys.readouterr().out
    assert "WEIGHT-FREE BASELINE" in printed and "scribbleprompt-unet" in printed
    # the atlas boxes come from the post-processed map WITH injected errors, not the phantom's truth
    atlas = context["dap_postprocessed_labels"]
    assert atlas.shape == phantom.labels.shape and (atlas.array != phantom.labels.array).any()
    folder = tmp_path / "limis"
    records = json.loads((folder / "replay.json").read_text())
    assert [r["text"] for r in records] == list(DEMO_SCRIPT)
    assert all(r["ok"] for r in records), [r["message"] for r in records if not r["ok"]]
    assert {r["kind"] for r in records} >= {
        "segment",
        "accept",
        "guided",
        "grid_click",
        "revert",
        "propagate",
    }
    assert all((folder / r["png"]).is_file() for r in records)
    assert (folder / "contact_sheet.png").stat().st_size > 10_000
    assert records[1]["box_source"] == "atlas label map" and "baseline" in records[1]["model"]
    scored = [r for r in records if r["volume_dice"] is not None]
    assert len(scored) == len(records) - 1  # every line after the first segmentation has its Dice
    assert printed.count("Dice slice") == len(scored)
    assert scored[-1]["volume_dice"] > scored[0]["volume_dice"]  # propagation covered more of the liver


def test_replay_pngs_get_the_umask_mode(phantom, tmp_path):
    import stat

    session = VolumeSession(phantom.ct, IntensityBBox2Mask())
    old = os.umask(0o022)
    try:
        replay(session, list(DEMO_SCRIPT[:2]), tmp_path / "out", labels=phantom.labels, semantic=False)
    finally:
        os.umask(old)
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert pngs
    assert {stat.S_IMODE(p.stat().st_mode) for p in pngs} == {0o644}
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left
