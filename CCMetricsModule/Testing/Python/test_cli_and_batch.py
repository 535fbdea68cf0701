"""The command line: one case with every output, folder mode, one-line errors."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from AnatomyCommonLib import Volume, read_volume, write_volume
from CCMetricsLib import voronoi_regions
from CCMetricsLib.__main__ import main
from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask

ROOT = Path(__file__).resolve().parents[3]
SPACING_IJK = (0.9, 0.9, 2.0)


def case(seed: int):
    shape = (24, 48, 48)
    spacing_kji = SPACING_IJK[::-1]
    reference = sphere_mask(shape, random_spheres(shape, 5, (2.5, 7.0), 4.0, spacing_kji, seed), spacing_kji)
    prediction, plan = perturb_prediction(
        reference,
        missed=1,
        dilated=1,
        shifted=1,
        false_positives=1,
        false_positive_radius_mm=2.5,
        spacing=spacing_kji,
        seed=seed,
    )
    volume = Volume.from_geometry(reference.astype(np.uint8), SPACING_IJK, origin_ras=(5.0, -3.0, 40.0))
    return volume, volume.with_array(prediction.astype(np.uint8)), plan


@pytest.fixture
def files(tmp_path):
    reference, prediction, plan = case(1)
    write_volume(reference, tmp_path / "ref.nii.gz")
    write_volume(prediction, tmp_path / "model.nii.gz")
    return tmp_path, reference, prediction, plan


def test_evaluate_writes_json_csv_regions_and_png_and_prints_a_summary(files, capsys):
    folder, reference, _, plan = files
    out = folder / "out"
    code = main(
        [
            "evaluate",
            "--reference",
            str(folder / "ref.nii.gz"),
            "--prediction",
            str(folder / "model.nii.gz"),
            "--prediction",
            str(folder / "ref.nii.gz"),
            "--json",
            str(out / "r.json"),
            "--csv",
            str(out / "r.csv"),
            "--summary-csv",
            str(out / "s.csv"),
            "--regions",
            str(out / "regions.nii.gz"),
            "--png",
            str(out / "r.png"),
            "--distance-worst",
            "40",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "CC-dice" in table and "model" in table and "ref" in table
    data = json.loads((out / "r.json").read_text())
    assert [p["prediction"] for p in data["predictions"]] == ["model", "ref"]
    assert data["predictions"][1]["mean"]["dice"] == 1.0
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert len(rows) == 2 * 5 and {"prediction", "component_id", "centroid_r", "hd95"} <= set(rows[0])
    missed = [r for r in rows if r["prediction"] == "model" and r["detected"] == "0"]
    assert [int(r["component_id"]) for r in missed] == plan.missed
    regions = read_volume(out / "regions.nii.gz")
    assert regions.same_grid_as(reference)
    expected, n = voronoi_regions(reference.array, reference.spacing_kji_mm, spacing_order="kji")
    assert n == 5 and np.array_equal(regions.array, expected)
    with Image.open(out / "r.png") as png:
        assert png.size[0] > 600 and png.size[1] > 300


def test_folder_mode_matches_cases_by_name_and_writes_per_case_and_dataset_tables(tmp_path, capsys):
    for sub in ("refs", "modelA", "modelB"):
        (tmp_path / sub).mkdir()
    for seed in (1, 2):
        reference, prediction, _ = case(seed)
        write_volume(reference, tmp_path / "refs" / f"case{seed}.nii.gz")
        write_volume(prediction, tmp_path / "modelA" / f"case{seed}.nii.gz")
        write_volume(reference, tmp_path / "modelB" / f"case{seed}.nii.gz")
    code = main(
        [
            "evaluate",
            "--reference-dir",
            str(tmp_path / "refs"),
            "--prediction-dir",
            str(tmp_path / "modelA"),
            "--prediction-dir",
            str(tmp_path / "modelB"),
            "--out-dir",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("modelA") == 2 and printed.count("modelB") == 2
    dataset = list(csv.DictReader((tmp_path / "out" / "dataset.csv").open()))
    assert [(r["case"], r["prediction"]) for r in dataset] == [
        ("case1", "modelA"),
        ("case1", "modelB"),
        ("case2", "modelA"),
        ("case2", "modelB"),
    ]
    assert all(float(r["cc_dice"]) == 1.0 for r in dataset if r["prediction"] == "modelB")
    summary = list(csv.DictReader((tmp_path / "out" / "dataset_summary.csv").open()))
    assert [(r["prediction"], r["cases"]) for r in summary] == [("modelA", "2"), ("modelB", "2")]
    per_case = list(csv.DictReader((tmp_path / "out" / "cases" / "case2.csv").open()))
    assert len(per_case) == 2 * 5


def test_folder_mode_reports_unmatched_cases_and_completes_the_others(tmp_path, capsys):
    reference, prediction, _ = case(1)
    for sub in ("refs", "model"):
        (tmp_path / sub).mkdir()
    write_volume(reference, tmp_path / "refs" / "a.nii.gz")
    write_volume(reference, tmp_path / "refs" / "b.nii.gz")
    write_volume(prediction, tmp_path / "model" / "a.nii.gz")
    code = main(
        [
            "evaluate",
            "--reference-dir",
            str(tmp_path / "refs"),
            "--prediction-dir",
            str(tmp_path / "model"),
            "--out-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert "b: no prediction in model" in capsys.readouterr().err
    dataset = list(csv.DictReader((tmp_path / "out" / "dataset.csv").open()))
    assert [(r["case"], r["status"]) for r in dataset] == [("a", "ok"), ("b", "failed")]


def test_label_maps_need_a_label_and_all_labels_evaluates_each(files, capsys, tmp_path):
    folder, reference, _, _ = files
    labels = reference.with_array(reference.array * 2)
    labels.array[0, 0, 0] = 7
    write_volume(labels, folder / "labels.nii.gz")
    code = main(
        [
            "evaluate",
            "--reference",
            str(folder / "labels.nii.gz"),
            "--prediction",
            str(folder / "labels.nii.gz"),
        ]
    )
    assert code == 2 and "--label N" in capsys.readouterr().err
    code = main(
        [
            "evaluate",
            "--reference",
            str(folder / "labels.nii.gz"),
            "--prediction",
            str(folder / "labels.nii.gz"),
            "--all-labels",
            "--csv",
            str(tmp_path / "all.csv"),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert sorted({r["label"] for r in rows}) == ["2", "7"]
    assert (
        main(
            [
                "evaluate",
                "--reference",
                str(folder / "labels.nii.gz"),
                "--prediction",
                str(folder / "labels.nii.gz"),
                "--label",
                "2",
            ]
        )
        == 0
    )


def test_a_prediction_on_another_grid_fails_with_exit_code_2_and_one_line(files):
    folder, _, prediction, _ = files
    shifted = Volume(prediction.array, prediction.ijk_to_ras.copy())
    shifted.ijk_to_ras[0, 3] += 5.0
    write_volume(shifted, folder / "moved.nii.gz")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "CCMetricsLib",
            "evaluate",
            "--reference",
            str(folder / "ref.nii.gz"),
            "--prediction",
            str(folder / "moved.nii.gz"),
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(ROOT / f) for f in ("AnatomyCommon", "CCMetricsModule")),
        },
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "origin" in lines[0]


def test_existing_outputs_are_not_overwritten_without_the_flag(files, capsys):
    folder, *_ = files
    (folder / "taken.csv").write_text("mine\n")
    args = [
        "evaluate",
        "--reference",
        str(folder / "ref.nii.gz"),
        "--prediction",
        str(folder / "model.nii.gz"),
        "--csv",
        str(folder / "taken.csv"),
    ]
    assert main(args) == 2
    assert (folder / "taken.csv").read_text() == "mine\n"
    assert main([*args, "--overwrite"]) == 0


def test_png_with_more_than_one_sheet_writes_and_names_every_page(tmp_path, capsys):
    """31 lesions need two sheets of 30 panels: both land at their final names and are printed."""
    mask = np.zeros((3, 40, 40), np.uint8)
    for index in range(31):  # isolated 2x2 lesions on a 6x6 lattice (26-connectivity keeps them apart)
        j, i = divmod(index, 6)
        mask[1, 2 + 6 * j : 4 + 6 * j, 2 + 6 * i : 4 + 6 * i] = 1
    reference = Volume.from_geometry(mask, (1.0, 1.0, 2.0))
    write_volume(reference, tmp_path / "ref.nii.gz")
    out = tmp_path / "out"
    path = str(tmp_path / "ref.nii.gz")
    code = main(["evaluate", "--reference", path, "--prediction", path, "--png", str(out / "r.png")])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["r.png", "r_page2.png"]  # no staged leftovers
    printed = capsys.readouterr().err
    assert str(out / "r.png") in printed and str(out / "r_page2.png") in printed
