"""Spine fragment merging: pieces labelled as the neighbouring vertebra join the vertebra they touch."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom, step_output

from AnatomyCommonLib.anatomy.label_schema import vertebra_id
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
    labels[(labels >= 43) & (labels <= 65)] = 1
    out, report = step_output(STEP, p.labels.with_array(labels))
    assert not report.applied and "1 vertebra" in report.skipped_reason
    assert np.array_equal(out.array, labels)
