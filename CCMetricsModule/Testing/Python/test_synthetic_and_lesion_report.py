"""Synthetic perturbations do what they say; the lesion report writes every output."""

import csv
import json

import numpy as np
import pytest

from AnatomyCommonLib import Volume, read_volume
from CCMetricsLib import evaluate
from CCMetricsLib.lesion_report import write_lesion_report
from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask
from CCMetricsLib.voronoi import label_components


@pytest.fixture(scope="module")
def spheres_case():
    shape = (40, 64, 64)
    spacing = (2.0, 0.8, 0.8)
    reference = sphere_mask(shape, random_spheres(shape, 8, (2.0, 6.0), 5.0, spacing, seed=9), spacing)
    prediction, plan = perturb_prediction(
        reference,
        missed=2,
        dilated=1,
        eroded=1,
        shifted=2,
        false_positives=2,
        false_positive_radius_mm=2.0,
        spacing=spacing,
        seed=5,
    )
    return reference, prediction, plan, spacing


def test_each_perturbation_changes_its_component_as_named(spheres_case):
    reference, prediction, plan, spacing = spheres_case
    labels, n = label_components(reference)
    assert n == 8 and len(plan.unchanged) == 2 and len(plan.false_positives) == 2
    for component in plan.missed:
        assert not prediction[labels == component].any()
    for component in plan.unchanged:
        assert prediction[labels == component].all()
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji")
    rows = {row["component_id"]: row for row in result.per_component}
    (dilated,) = plan.dilated
    (eroded,) = plan.eroded
    assert rows[dilated]["prediction_voxels"] > rows[dilated]["voxel_count"] and rows[dilated]["dice"] < 1
    assert rows[eroded]["prediction_voxels"] < rows[eroded]["voxel_count"] and rows[eroded]["dice"] < 1
    for component in plan.shifted:
        assert rows[component]["prediction_voxels"] == rows[component]["voxel_count"]
        assert rows[component]["dice"] < 1
    assert result.counts["n_false_positive_components"] == 2
    assert [plan.kind_of(c) for c in sorted(plan.missed)] == ["missed", "missed"]


def test_lesion_report_writes_tables_json_png_and_regions(spheres_case, tmp_path):
    reference, prediction, plan, spacing = spheres_case
    ref = Volume.from_geometry(
        reference.astype(np.uint8), spacing[::-1], direction_ras=np.diag([-1.0, -1.0, 1.0])
    )
    report = write_lesion_report(
        ref,
        {"model": ref.with_array(prediction.astype(np.uint8))},
        tmp_path,
        component_notes={c: plan.kind_of(c) for c in range(1, 9)},
        distance_worst=50,
    )
    assert all(path.exists() for path in report.paths.values())
    rows = list(csv.DictReader(report.paths["components"].open()))
    assert sorted(int(r["component_id"]) for r in rows if r["note"] == "missed") == sorted(plan.missed)
    assert json.loads(report.paths["json"].read_text())["predictions"][0]["prediction"] == "model"
    assert read_volume(report.paths["regions"]).array.max() == 8
    assert "CC-dice" in report.summary_table and "missed" in report.component_table
    with pytest.raises(FileExistsError):
        write_lesion_report(ref, {"model": ref}, tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_lesion_report_files_get_the_umask_mode_like_any_other_file(spheres_case, tmp_path, umask):
    """regions.nii.gz and the PNG used to come out 0600 (temp-file rename); now open()'s mode."""
    import os
    import stat

    reference, prediction, _, spacing = spheres_case
    ref = Volume.from_geometry(reference.astype(np.uint8), spacing[::-1])
    old = os.umask(umask)
    try:
        report = write_lesion_report(ref, {"model": ref.with_array(prediction.astype(np.uint8))}, tmp_path)
    finally:
        os.umask(old)
    expected = {0o022: 0o644, 0o077: 0o600}[umask]
    for name in ("regions", "png"):
        assert stat.S_IMODE(report.paths[name].stat().st_mode) == expected, name
