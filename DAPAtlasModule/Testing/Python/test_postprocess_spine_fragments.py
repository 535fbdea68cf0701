"""Spine fragment merging: pieces labelled as the neighbouring vertebra join the vertebra they touch."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom, step_output
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import vertebra_id
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.postprocess.spine_fragments import merge_spine_fragments

STEP = "spine_fragments"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_lower_third_of_t8_labelled_t7_goes_back_to_t8(orientation):
    corrupted, expected, out, report, _p = corrupted_and_repaired(STEP, ["vertebra_fragment"], orientation)
    assert np.array_equal(out.array, expected)
    t7, t8 = vertebra_id("T7"), vertebra_id("T8")
    assert changed_pairs(corrupted.labels.array, out.array) == {(t7, t8): corrupted.errors[0].voxels}
    assert report.relabelled == {(t7, t8): corrupted.errors[0].voxels}


def test_a_correct_spine_and_floating_pieces_are_left_alone():
    p = phantom("LPS")
    labels = p.labels.array.copy()
    # a floating T3-labelled blob far from every vertebra (in the liver): not this rule's business
    liver = np.argwhere(labels == 13)
    labels[tuple(liver[:5].T)] = vertebra_id("T3")
    out, report = merge_spine_fragments(p.labels.with_array(labels))
    assert np.array_equal(out.array, labels)
    assert report.applied and not report.changed and report.details["fragments_checked"] >= 1


def test_fewer_than_two_vertebrae_skip_the_rule_with_a_report():
    p = phantom("RAS")
    labels = p.labels.array.copy()
    labels[((labels >= 43) & (labels <= 65)) | (labels == 102)] = 1  # only L5 left
    out, report = step_output(STEP, p.labels.with_array(labels))
    assert not report.applied and "1 vertebra" in report.skipped_reason
    assert np.array_equal(out.array, labels)


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "oblique"])
def test_lower_part_of_l5_labelled_sacrum_is_merged_back_into_l5(orientation):
    """Issue 13: the sacrum was not in the chain, so this piece became background at the end."""
    truth = phantom(orientation).labels
    l5 = vertebra_id("L5")
    mask = truth.array == l5
    heights = truth.kji_to_ras(np.argwhere(mask))[:, 2]
    lower = np.zeros_like(mask)
    lower[mask] = heights < np.percentile(heights, 33)
    array = truth.array.copy()
    array[lower] = 102  # sacrum
    out, report = merge_spine_fragments(truth.with_array(array))
    assert np.array_equal(out.array, truth.array)
    assert report.relabelled == {(102, l5): int(lower.sum())}
    # and through the whole pipeline the piece ends as L5, not as background
    result = postprocess(truth.with_array(array), sex="M")
    assert np.all(result.labels.array[lower] == l5)


def test_upper_part_of_the_sacrum_labelled_l5_goes_back_to_the_sacrum():
    truth = phantom("LPS").labels
    mask = truth.array == 102
    heights = truth.kji_to_ras(np.argwhere(mask))[:, 2]
    upper = np.zeros_like(mask)
    upper[mask] = heights > np.percentile(heights, 85)
    array = truth.array.copy()
    array[upper] = vertebra_id("L5")
    assert ndimage.label(array == vertebra_id("L5"))[1] >= 2
    out, _ = merge_spine_fragments(truth.with_array(array))
    assert np.array_equal(out.array, truth.array)


def test_lower_part_of_c1_labelled_c2_goes_back_to_c1():
    truth = phantom("RAS", size="small").labels
    c1, c2 = vertebra_id("C1"), vertebra_id("C2")
    mask = truth.array == c1
    heights = truth.kji_to_ras(np.argwhere(mask))[:, 2]
    lower = np.zeros_like(mask)
    lower[mask] = heights < np.percentile(heights, 40)
    array = truth.array.copy()
    array[lower] = c2
    out, _ = merge_spine_fragments(truth.with_array(array))
    assert np.array_equal(out.array, truth.array)
