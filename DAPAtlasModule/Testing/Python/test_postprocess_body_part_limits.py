"""Body-part limits: gonads in the orbit, bowel in the nasal cavity, bladder, bronchi above the lungs."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom

from DAPAtlasLib.postprocess.body_part_limits import limit_body_parts
from DAPAtlasLib.simulated_model_errors import crop_field_of_view, inject_model_errors

STEP = "body_part_limits"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_gonads_in_the_orbits_become_left_and_right_eyeballs(orientation):
    corrupted, expected, out, _report, p = corrupted_and_repaired(STEP, ["gonads_in_orbit"], orientation)
    assert np.array_equal(out.array, expected)
    left, right = int((p.labels.array == 130).sum()), int((p.labels.array == 131).sum())
    assert changed_pairs(corrupted.labels.array, out.array) == {(18, 130): left, (18, 131): right}
    assert np.array_equal(out.array == 18, p.labels.array == 18)  # the real gonads stay


@pytest.mark.parametrize("orientation", ["RAS", "LAI", "oblique"])
def test_colon_in_the_face_above_c1_becomes_nasal_cavity(orientation):
    corrupted, expected, out, _report, _ = corrupted_and_repaired(
        STEP, ["bowel_in_nasal_cavity"], orientation
    )
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(10, 132): corrupted.errors[0].voxels}


@pytest.mark.parametrize("orientation", ["LPS", "SRA"])
def test_bladder_in_the_gallbladder_fossa_becomes_gallbladder(orientation):
    corrupted, expected, out, _report, _ = corrupted_and_repaired(STEP, ["bladder_above_pelvis"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(17, 12): corrupted.errors[0].voxels}


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
def test_bronchi_above_the_lung_apices_become_trachea(orientation):
    corrupted, expected, out, _report, _ = corrupted_and_repaired(STEP, ["bronchi_above_lungs"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(125, 126): corrupted.errors[0].voxels}


def test_all_four_errors_at_once_and_a_correct_map_stays_unchanged():
    kinds = ["gonads_in_orbit", "bowel_in_nasal_cavity", "bladder_above_pelvis", "bronchi_above_lungs"]
    _corrupted, expected, out, _report, p = corrupted_and_repaired(STEP, kinds, "LPS", sex="F")
    assert np.array_equal(out.array, expected)
    clean, clean_report = limit_body_parts(p.labels)
    assert np.array_equal(clean.array, p.labels.array) and not clean_report.skipped_rules


def test_bowel_between_neck_and_skull_base_becomes_unknown_tissue():
    p = phantom("RAS")
    labels = p.labels.array.copy()
    thyroid = np.argwhere(labels == 29)  # the thyroid lies between C7 and C1
    labels[tuple(thyroid.T)] = 8
    out, report = limit_body_parts(p.labels.with_array(labels))
    assert np.all(out.array[tuple(thyroid.T)] == 1)
    assert report.relabelled == {(8, 1): len(thyroid)}


def test_abdomen_only_scan_skips_the_head_rules_and_still_fixes_the_gallbladder():
    p = phantom("LPS")
    abdomen = crop_field_of_view(p.labels, lowest_mm=150, highest_mm=520)
    corrupted = inject_model_errors(abdomen, ["bladder_above_pelvis"])
    out, report = limit_body_parts(corrupted.labels)
    assert np.array_equal(out.array, abdomen.array)
    skipped = " ".join(report.skipped_rules)
    assert "C6 and C7 are missing" in skipped and "no upper lung lobe" not in skipped


def test_head_only_scan_with_missing_lumbar_vertebrae_reports_instead_of_failing():
    p = phantom("RAS")
    head = crop_field_of_view(p.labels, lowest_mm=760)
    corrupted = inject_model_errors(head, ["gonads_in_orbit", "bowel_in_nasal_cavity"])
    out, report = limit_body_parts(corrupted.labels)
    assert np.array_equal(out.array, corrupted.expected.array)
    assert any("L3, L4 and L5 are missing" in rule for rule in report.skipped_rules)
    assert any("no upper lung lobe" in rule for rule in report.skipped_rules)
    assert any("use the skull base (C1) instead" in w for w in report.warnings)
