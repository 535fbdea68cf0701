"""``python -m DAPAtlasLib postprocess|stats|labels``: files in and out, batch folders, errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib.image_io import read_volume, write_volume
from DAPAtlasLib.__main__ import main
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.simulated_model_errors import inject_model_errors


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A corrupted tiny phantom written as NRRD (labels) and NIfTI (CT), LPS orientation."""
    folder = tmp_path_factory.mktemp("case")
    p = phantom("LPS", "F")
    corrupted = inject_model_errors(
        p.labels, ["left_right_swap", "gonads_in_orbit", "stray_fragment"], sex="F"
    )
    labels_path = write_volume(corrupted.labels, folder / "case1.nrrd")
    ct_path = write_volume(p.ct, folder / "case1_ct.nii.gz")
    return {"labels": labels_path, "ct": ct_path, "phantom": p, "corrupted": corrupted, "folder": folder}


def test_postprocess_writes_the_repaired_labels_with_geometry_and_a_json_report(case, tmp_path, capsys):
    out = tmp_path / "repaired.nii.gz"
    report = tmp_path / "report.json"
    code = main(
        [
            "postprocess",
            str(case["labels"]),
            str(out),
            "--ct",
            str(case["ct"]),
            "--sex",
            "F",
            "--report",
            str(report),
        ]
    )
    assert code == 0
    written = read_volume(out)
    expected = postprocess(case["corrupted"].labels, ct=case["phantom"].ct, sex="F").labels
    assert written.same_grid_as(case["phantom"].labels)
    assert np.array_equal(written.array, expected.array)
    data = json.loads(report.read_text())
    assert data["sex"] == "F" and len(data["steps"]) == 9
    assert "Gonads -> Eyeball Left" in capsys.readouterr().out


def test_selected_steps_only_and_existing_output_is_refused(case, tmp_path, capsys):
    out = tmp_path / "lr.nii.gz"
    assert (
        main(["postprocess", str(case["labels"]), str(out), "--steps", "left_right_split,largest_component"])
        == 0
    )
    report = capsys.readouterr().out
    assert "rib_counting" not in report and "left_right_split" in report
    assert main(["postprocess", str(case["labels"]), str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["postprocess", str(case["labels"]), str(out), "--overwrite", "--steps", "sex"]) == 2
    assert "Unknown post-processing step" in capsys.readouterr().err


def test_batch_over_folders_matches_cts_by_name_and_writes_one_report(case, tmp_path, capsys):
    labels_dir, ct_dir, out_dir = tmp_path / "labels", tmp_path / "ct", tmp_path / "out"
    labels_dir.mkdir()
    ct_dir.mkdir()
    for name in ("a", "b"):
        shutil.copy(case["labels"], labels_dir / f"{name}.nrrd")
    shutil.copy(case["ct"], ct_dir / "a_0000.nii.gz")  # nnU-Net naming
    shutil.copy(case["ct"], ct_dir / "b.nii.gz")  # same name
    report = tmp_path / "batch.json"
    assert (
        main(["postprocess", str(labels_dir), str(out_dir), "--ct", str(ct_dir), "--report", str(report)])
        == 0
    )
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.nrrd", "b.nrrd"]
    assert set(json.loads(report.read_text())) == {"a", "b"}
    captured = capsys.readouterr()
    assert "a: " in captured.out and "post-processing" in captured.err  # the progress bar
    (ct_dir / "b.nii.gz").unlink()
    assert main(["postprocess", str(labels_dir), str(tmp_path / "out2"), "--ct", str(ct_dir)]) == 2
    assert "No CT for b.nrrd" in capsys.readouterr().err


def test_stats_writes_a_csv_per_case_or_for_a_folder(case, tmp_path):
    out = tmp_path / "stats.csv"
    assert (
        main(
            [
                "stats",
                str(case["labels"]),
                str(case["ct"]),
                "--csv",
                str(out),
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    labels = np.unique(case["corrupted"].labels.array)
    assert [int(r["label"]) for r in rows] == [int(v) for v in labels if v]
    assert rows[0]["hu_mean"] != ""
    assert json.loads((tmp_path / "s.json").read_text())["structures"][0]["label"] == int(rows[0]["label"])
    folder = tmp_path / "many"
    folder.mkdir()
    shutil.copy(case["labels"], folder / "x.nrrd")
    shutil.copy(case["labels"], folder / "y.nrrd")
    assert main(["stats", str(folder), "--csv", str(tmp_path / "many.csv")]) == 0
    many = list(csv.DictReader((tmp_path / "many.csv").open()))
    assert {r["case"] for r in many} == {"x", "y"} and many[0]["hu_mean"] == ""


@pytest.mark.parametrize("file_format", ["csv", "json", "ctbl", "term.json"])
def test_labels_prints_the_schema_in_each_format(file_format, capsys):
    assert main(["labels", "--format", file_format]) == 0
    text = capsys.readouterr().out
    assert "Kidney" in text


def test_missing_inputs_fail_with_a_one_line_reason(tmp_path, capsys):
    assert main(["postprocess", str(tmp_path / "nope.nii.gz"), str(tmp_path / "o.nii.gz")]) == 2
    assert "No such label map" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "nope.nii.gz")]) == 2
    assert main(["postprocess", "--list-steps"]) == 0
    assert "skull_from_ct" in capsys.readouterr().out
