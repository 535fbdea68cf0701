"""Rib counting: ribs numbered 1..12 from the top, also on partial fields of view and with fragments."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom, step_output

from AnatomyCommonLib.anatomy.label_schema import rib_id
from DAPAtlasLib.postprocess import PostprocessSettings
from DAPAtlasLib.postprocess.rib_counting import count_ribs
from DAPAtlasLib.simulated_model_errors import crop_field_of_view, inject_model_errors

STEP = "rib_counting"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_shuffled_rib_numbers_are_restored_with_rib_1_the_most_superior(orientation):
    _corrupted, expected, out, report, p = corrupted_and_repaired(STEP, ["rib_shuffle"], orientation)
    assert np.array_equal(out.array, expected)
    assert np.array_equal(out.array, p.labels.array)
    assert report.details["left_method"] == report.details["right_method"] == "order by height (12 ribs)"
    heights = [
        p.labels.kji_to_ras(np.argwhere(out.array == rib_id(k, "left")))[:, 2].mean() for k in range(1, 13)
    ]
    assert heights == sorted(heights, reverse=True)


@pytest.mark.parametrize("orientation", ["RAS", "LAI", "oblique"])
def test_outer_part_of_a_rib_labelled_with_another_number_rejoins_its_rib(orientation):
    corrupted, expected, out, _report, _ = corrupted_and_repaired(STEP, ["rib_fragment"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {
        (rib_id(9, "left"), rib_id(4, "left")): corrupted.errors[0].voxels
    }


def test_a_floating_rib_fragment_takes_the_number_of_the_nearest_rib_within_the_distance_limit():
    p = phantom("RAS")
    labels = p.labels.array.copy()
    rib2 = np.argwhere(labels == rib_id(2, "right"))
    # a 1-voxel fragment labelled rib 7 right, 12 mm outward (patient right = +i) from rib 2 right
    tip = rib2[np.argmax(rib2[:, 2])]
    fragment = tuple(tip + np.array([0, 0, 2]))
    assert labels[fragment] not in range(67, 91)
    labels[fragment] = rib_id(7, "right")
    near = PostprocessSettings(rib_fragment_max_distance_mm=15.0)
    out, report = count_ribs(p.labels.with_array(labels), settings=near)
    assert report.details["fragments"] == 1 and report.details["right_ribs"] == 12
    expected = p.labels.array.copy()
    expected[fragment] = rib_id(2, "right")
    assert np.array_equal(out.array, expected)
    # beyond the default 10 mm the fragment keeps its label, and counting is not disturbed
    out, report = count_ribs(p.labels.with_array(labels))
    expected[fragment] = rib_id(7, "right")
    assert np.array_equal(out.array, expected)


@pytest.mark.parametrize(
    ("lowest_mm", "highest_mm", "first_rib", "moves"),
    [
        (
            520,
            760,
            1,
            {rib_id(2, "left"): rib_id(6, "left"), rib_id(6, "left"): rib_id(2, "left")},
        ),  # upper chest
        (
            300,
            560,
            5,
            {rib_id(6, "right"): rib_id(9, "right"), rib_id(9, "right"): rib_id(6, "right")},
        ),  # lower chest
        (
            100,
            450,
            9,
            {rib_id(10, "left"): rib_id(12, "left"), rib_id(12, "left"): rib_id(10, "left")},
        ),  # abdomen
    ],
)
@pytest.mark.parametrize("orientation", ["LPS", "SRA"])
def test_partial_field_of_view_numbers_ribs_by_the_thoracic_vertebra_they_attach_to(
    orientation, lowest_mm, highest_mm, first_rib, moves
):
    p = phantom(orientation)
    labels = crop_field_of_view(p.labels, lowest_mm=lowest_mm, highest_mm=highest_mm)
    clean_out, clean_report = count_ribs(labels)
    assert np.array_equal(clean_out.array, labels.array)
    assert f"first visible rib = rib {first_rib}" in clean_report.details["left_method"]
    shuffled = labels.array.copy()
    for old, new in moves.items():
        shuffled[labels.array == old] = new
    out, _ = count_ribs(labels.with_array(shuffled))
    assert np.array_equal(out.array, labels.array)


def test_partial_ribs_without_thoracic_vertebrae_are_left_unchanged_with_a_report():
    p = phantom("RAS")
    labels = crop_field_of_view(p.labels, lowest_mm=300, highest_mm=560)
    array = labels.array.copy()
    array[(array >= 50) & (array <= 61)] = 1  # no thoracic vertebra labelled
    out, report = count_ribs(labels.with_array(array))
    assert np.array_equal(out.array, array)
    assert any("no thoracic vertebra" in rule for rule in report.skipped_rules)
    assert not report.applied


def test_no_ribs_at_all_is_a_skipped_step():
    p = phantom("RAS")
    head = crop_field_of_view(p.labels, lowest_mm=780)
    out, report = step_output(STEP, head)
    assert not report.applied and report.skipped_reason == "no rib labels in the image"
    assert np.array_equal(out.array, head.array)


def test_without_a_mid_sagittal_plane_sides_come_from_the_rib_cage_centre():
    p = phantom("RAS")
    corrupted = inject_model_errors(p.labels, ["rib_shuffle"])
    array = corrupted.labels.array.copy()
    array[np.isin(array, [*range(43, 67), 92, 102])] = 1
    original = p.labels.array.copy()
    original[np.isin(original, [*range(43, 67), 92, 102])] = 1
    out, report = count_ribs(corrupted.labels.with_array(array))
    assert any("rib cage centre" in w for w in report.warnings)
    assert np.array_equal(out.array, original)
