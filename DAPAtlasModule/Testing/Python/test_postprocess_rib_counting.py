"""Rib counting: ribs numbered 1..12 from the top, also on partial fields of view and with fragments."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import (
    ORIENTATIONS,
    changed_pairs,
    corrupted_and_repaired,
    crop_between,
    median_height,
    phantom,
    step_output,
    touches_border,
)

from AnatomyCommonLib.anatomy.label_schema import rib_id, vertebra_id
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
    ("lowest_mm", "highest_mm", "first_rib", "swap", "cut_rib"),
    [
        (520, 760, 1, (2, 4), 6),  # upper chest: ribs 1-5 complete, 6-8 cut by the lower edge
        (300, 560, 7, (8, 10), 6),  # lower chest: ribs 7-12 complete, 5-6 cut by the upper edge
        (100, 450, 11, (11, 12), 10),  # abdomen: ribs 11-12 complete, 9-10 cut by the upper edge
    ],
)
@pytest.mark.parametrize("orientation", ["LPS", "SRA"])
def test_partial_field_of_view_numbers_ribs_by_the_thoracic_vertebra_they_attach_to(
    orientation, lowest_mm, highest_mm, first_rib, swap, cut_rib
):
    p = phantom(orientation)
    labels = crop_field_of_view(p.labels, lowest_mm=lowest_mm, highest_mm=highest_mm)
    assert touches_border(labels.array == rib_id(cut_rib, "left"))
    clean_out, clean_report = count_ribs(labels)
    assert np.array_equal(clean_out.array, labels.array)
    assert f"first complete rib = rib {first_rib}" in clean_report.details["left_method"]
    shuffled = labels.array.copy()
    a, b = (rib_id(n, "left") for n in swap)
    shuffled[labels.array == a] = b
    shuffled[labels.array == b] = a
    out, _ = count_ribs(labels.with_array(shuffled))
    assert np.array_equal(out.array, labels.array)
    # a rib cut by the border keeps its label, even a wrong one: which rib it is may lie outside
    wrong = labels.array.copy()
    wrong[labels.array == rib_id(cut_rib, "left")] = rib_id(3, "left")
    out, report = count_ribs(labels.with_array(wrong))
    assert np.array_equal(out.array, wrong)
    assert report.details["left_ribs_cut_by_the_border"] >= 1


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


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "oblique"])
def test_abdomen_scan_whose_top_edge_cuts_ribs_10_and_11_keeps_every_rib_label(orientation):
    """Issue 13: an abdomen crop through ribs 10-11 had ribs 10 and 11 swapped."""
    truth = phantom(orientation).labels
    top = 0.5 * (
        median_height(truth, rib_id(11, "left"), rib_id(11, "right"))
        + median_height(truth, rib_id(10, "left"), rib_id(10, "right"))
    )
    crop = crop_between(truth, median_height(truth, 102), top)
    if orientation != "oblique":  # an oblique crop box also holds voxels above the cut height
        for number in (10, 11):  # both cut by the top edge, both partly visible
            assert touches_border(np.isin(crop.array, [rib_id(number, "left"), rib_id(number, "right")]))
    out, report = count_ribs(crop)
    assert np.array_equal(out.array, crop.array)
    assert not report.changed


def test_attachments_that_disagree_leave_the_side_unchanged_with_a_report():
    """A rib between two vertebrae whose labels say otherwise: no guess, the map stays."""
    truth = phantom("RAS").labels
    crop = crop_between(truth, median_height(truth, 102), median_height(truth, vertebra_id("T8")))
    array = crop.array.copy()
    # T11 labelled T9: rib 11 now attaches to "T9" while rib 12 attaches to T12 -> they disagree
    array[array == vertebra_id("T11")] = vertebra_id("T9")
    shuffled = array.copy()
    shuffled[array == rib_id(11, "left")] = rib_id(12, "left")
    shuffled[array == rib_id(12, "left")] = rib_id(11, "left")
    out, report = count_ribs(crop.with_array(shuffled))
    left = np.isin(array, [rib_id(n, "left") for n in range(1, 13)])
    assert np.array_equal(out.array[left], shuffled[left])
    assert any("disagree" in w and "left" in w for w in report.warnings)
