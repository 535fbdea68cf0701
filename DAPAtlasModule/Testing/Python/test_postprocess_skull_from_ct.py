"""The rule-derived skull: 300..3000 HU above C5, minus vertebrae and other structures."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom

from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.exceptions import GeometryMismatchError
from DAPAtlasLib.postprocess.skull_from_ct import skull_from_ct

STEP = "skull_from_ct"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_skull_missing_from_the_labels_is_derived_again_from_the_ct(orientation):
    corrupted, expected, out, _report, _p = corrupted_and_repaired(STEP, ["skull_missing"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(1, 99): corrupted.errors[0].voxels}


def test_bone_density_voxels_keep_their_label_when_they_belong_to_another_structure():
    p = phantom("RAS")
    out, report = skull_from_ct(p.labels, p.ct)
    assert np.array_equal(out.array, p.labels.array) and not report.changed
    # the vertebrae C1..C4 lie above C5 at bone density but are never made skull
    above = (
        p.labels.kji_to_ras(np.argwhere(p.labels.array == 44))[:, 2].min() > report.details["top_of_c5_mm"]
    )
    assert above


def test_soft_tissue_and_background_never_become_skull():
    p = phantom("LPS")
    ct = p.ct.array.copy()
    ct[p.labels.array == 0] = 1500  # a dense head holder outside the body
    labels = p.labels.array.copy()
    labels[labels == 99] = 1
    # with no air left the volume fails the CT plausibility check: forced, as a user would
    out, _ = skull_from_ct(p.labels.with_array(labels), p.ct.with_array(ct), force=True)
    assert not np.any(out.array[p.labels.array == 0])
    assert np.array_equal(out.array == 99, p.labels.array == 99)


def test_without_ct_or_c5_the_rule_is_skipped_with_the_reason():
    p = phantom("RAS")
    from DAPAtlasLib.postprocess import postprocess

    report = postprocess(p.labels, steps=[STEP]).report.step(STEP)
    assert not report.applied and "no CT" in report.skipped_reason
    labels = p.labels.array.copy()
    labels[labels == 47] = 1
    _, report = skull_from_ct(p.labels.with_array(labels), p.ct)
    assert not report.applied and "C5 is missing" in report.skipped_reason


def test_a_ct_on_another_grid_is_refused():
    p = phantom("RAS")
    matrix = p.ct.ijk_to_ras.copy()
    matrix[:3, 3] += 5.0
    shifted = Volume(p.ct.array, matrix)
    with pytest.raises(GeometryMismatchError, match="origin"):
        skull_from_ct(p.labels, shifted)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint16, np.int8, np.float32])
def test_bone_window_of_an_integer_ct_is_the_float_comparison(dtype):
    from DAPAtlasLib.postprocess.skull_from_ct import bone_window

    values = np.random.default_rng(1).integers(-40000, 40000, 20000)
    hu = values.astype(dtype)
    bounds = ((300.0, 3000.0), (299.5, 3000.5), (-1e9, 1e9), (5e4, 6e4), (3000.0, 300.0), (-3.2, 0.0))
    for low, high in bounds:
        assert np.array_equal(bone_window(hu, low, high), (hu >= low) & (hu <= high)), (low, high)
