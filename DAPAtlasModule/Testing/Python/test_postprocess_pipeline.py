"""The whole post-processing: every injected error repaired, in every orientation, with a report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, phantom

from DAPAtlasLib.exceptions import GeometryMismatchError, InvalidLabelValuesError, UnknownStepError
from DAPAtlasLib.postprocess import STEP_NAMES, postprocess, validate_steps
from DAPAtlasLib.simulated_model_errors import ERROR_KINDS, crop_field_of_view, inject_model_errors


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("sex", ["M", "F"])
def test_every_injected_error_is_repaired_and_correct_voxels_stay(orientation, sex):
    p = phantom(orientation, sex)
    corrupted = inject_model_errors(p.labels, sex=sex)
    clean = postprocess(p.labels, ct=p.ct, sex=sex)
    result = postprocess(corrupted.labels, ct=p.ct, sex=sex)
    assert np.array_equal(result.labels.array, corrupted.expected_after(clean.labels))
    # on the correct map only the largest-component rule changes anything (phantom discretisation)
    assert [s.step for s in clean.report.steps if s.changed] in ([], ["largest_component"])
    for error in corrupted.errors:
        assert result.report.step(error.step).changed, error.kind


def test_every_error_kind_is_repaired_by_the_step_it_names():
    steps = {e.step for e in inject_model_errors(phantom("RAS").labels).errors}
    # each step has at least one error kind; rib_order's error (every rib numbered from the other
    # end) cannot coexist with the other rib errors and is injected in test_postprocess_rib_order
    assert steps == set(STEP_NAMES) - {"rib_order"}
    assert len(ERROR_KINDS) == 13


def test_steps_run_in_the_published_order_whatever_order_is_asked():
    assert validate_steps(["skull_from_ct", "left-right-split", "cheeks"]) == [
        "left_right_split",
        "cheeks",
        "skull_from_ct",
    ]
    p = phantom("RAS")
    result = postprocess(p.labels, steps=["largest_component", "left_right_split"])
    assert [s.step for s in result.report.steps] == ["left_right_split", "largest_component"]


def test_unknown_step_names_are_refused_with_a_suggestion():
    with pytest.raises(UnknownStepError, match="did you mean 'rib_counting'"):
        validate_steps(["rib_countin"])


def test_input_is_not_modified_and_geometry_is_kept():
    p = phantom("LPS")
    corrupted = inject_model_errors(p.labels, ["left_right_swap"])
    before = corrupted.labels.array.copy()
    result = postprocess(corrupted.labels)
    assert np.array_equal(corrupted.labels.array, before)
    assert result.labels.same_grid_as(corrupted.labels) and result.labels.array.dtype == np.uint8


def test_report_converts_to_json_and_text_with_what_each_rule_fixed():
    p = phantom("RAS")
    corrupted = inject_model_errors(p.labels, ["gonads_in_orbit", "stray_fragment"])
    report = postprocess(corrupted.labels, ct=p.ct, sex="M").report
    data = json.loads(report.to_json())
    body = next(s for s in data["steps"] if s["step"] == "body_part_limits")
    assert {(r["from_name"], r["to_name"]) for r in body["relabelled"]} == {
        ("Gonads", "Eyeball Left"),
        ("Gonads", "Eyeball Right"),
    }
    largest = next(s for s in data["steps"] if s["step"] == "largest_component")
    liver = next(r for r in largest["removed_components"] if r["name"] == "Liver")
    assert liver["components"] == 1 and liver["total_ml"] > 0
    assert data["sex"] == "M" and data["sex_source"] == "user"
    text = report.to_text()
    assert "Gonads -> Eyeball Left" in text and "removed 1 stray piece(s) of Liver" in text


@pytest.mark.parametrize(("lowest_mm", "highest_mm"), [(520, 760), (150, 520), (760, None), (None, 250)])
def test_partial_fields_of_view_give_reports_not_exceptions(lowest_mm, highest_mm):
    p = phantom("LPS")
    labels = crop_field_of_view(p.labels, lowest_mm=lowest_mm, highest_mm=highest_mm)
    ct = crop_field_of_view(p.ct, lowest_mm=lowest_mm, highest_mm=highest_mm)
    result = postprocess(labels, ct=ct, sex="M")
    assert len(result.report.steps) == len(STEP_NAMES)
    assert [s.step for s in result.report.steps if s.changed] in ([], ["largest_component"])


def test_label_map_without_any_anchor_is_processed_with_reports():
    p = phantom("RAS")
    labels = np.where(np.isin(p.labels.array, [13, 26, 1, 2, 3]), p.labels.array, 0).astype(np.uint8)
    result = postprocess(p.labels.with_array(labels), ct=p.ct, sex="F")
    skipped = {s.step: s.skipped_reason for s in result.report.steps if not s.applied}
    assert {"left_right_split", "spine_fragments", "rib_counting", "skull_from_ct"} <= set(skipped)


def test_values_outside_the_schema_and_a_ct_on_another_grid_are_refused():
    p = phantom("RAS")
    bad = p.labels.array.astype(np.int16)
    bad[0, 0, 0] = 200
    with pytest.raises(InvalidLabelValuesError, match="0 to 144"):
        postprocess(p.labels.with_array(bad))
    small = phantom("RAS", "M", 0, "small")
    with pytest.raises(GeometryMismatchError):
        postprocess(p.labels, ct=small.ct)


def test_a_structure_of_two_voxels_one_apart_does_not_crash_the_26_connected_rules():
    """cc3d 4.1.1 raises on a bool (1, 1, 3) mask [1, 0, 1] with 26-connectivity; the cheek rule
    and the lung-top landmark label such crops of a label's bounding box."""
    from AnatomyCommonLib.volume import Volume

    array = np.zeros((6, 7, 9), dtype=np.uint8)
    array[2, 3, 2] = array[2, 3, 4] = 29  # thyroid left: two voxels, one apart along i
    array[4, 1, 5] = array[4, 1, 7] = 121  # upper lung lobe, the same shape
    labels = Volume(array, np.diag([1.5, 1.5, 2.0, 1.0]))
    result = postprocess(labels, steps=["cheeks", "body_part_limits"])
    assert np.array_equal(result.labels.array, array)  # nothing to change, and no crash
