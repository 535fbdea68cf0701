"""Cheeks from thyroid fragments: thyroid-labelled pieces in the face become cheeks."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom

from DAPAtlasLib.postprocess import PostprocessSettings
from DAPAtlasLib.postprocess.cheeks import cheeks_from_thyroid

STEP = "cheeks"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_thyroid_labelled_tissue_in_the_left_cheek_becomes_cheek_left(orientation):
    corrupted, expected, out, _report, _ = corrupted_and_repaired(STEP, ["thyroid_in_cheek"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(29, 128): corrupted.errors[0].voxels}


def test_the_thyroid_itself_is_never_turned_into_a_cheek():
    p = phantom("LPS")
    out, report = cheeks_from_thyroid(p.labels)
    assert np.array_equal(out.array, p.labels.array) and not report.changed


def test_without_c2_the_height_above_the_thyroid_still_finds_the_cheek():
    corrupted, _expected, *_ = corrupted_and_repaired(STEP, ["thyroid_in_cheek"], "RAS")
    array = corrupted.labels.array.copy()
    array[array == 44] = 1
    out, report = cheeks_from_thyroid(corrupted.labels.with_array(array))
    assert any("C2 is missing" in rule for rule in report.skipped_rules)
    assert np.all(out.array[corrupted.errors[0].mask] == 128)
    # a guard larger than the cheek's height above the thyroid keeps it thyroid
    strict = PostprocessSettings(cheek_min_height_above_thyroid_mm=500.0)
    out, _ = cheeks_from_thyroid(corrupted.labels.with_array(array), settings=strict)
    assert np.all(out.array[corrupted.errors[0].mask] == 29)
