"""Left-right split: paired structures take the side of the mid-sagittal plane they lie on."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, changed_pairs, corrupted_and_repaired, phantom, step_output

from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.postprocess.anatomy_geometry import (
    DEFAULT_MAX_PLANE_TILT_DEG,
    MidsagittalPlane,
    PlaneFitFailure,
    fit_midsagittal_plane,
)
from DAPAtlasLib.postprocess.left_right_split import split_left_right

STEP = "left_right_split"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_swapped_kidneys_femurs_and_adrenals_are_put_back_on_their_side(orientation):
    _corrupted, expected, out, report, p = corrupted_and_repaired(STEP, ["left_right_swap"], orientation)
    assert np.array_equal(out.array, expected)
    assert np.array_equal(out.array, p.labels.array)
    assert report.relabelled_from(15) == report.relabelled_to(16) > 0
    assert report.details["plane"]["tilt_deg"] < 1.0


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "oblique"])
def test_upper_half_of_a_lobe_labelled_as_the_other_side_is_relabelled_and_nothing_else(orientation):
    corrupted, expected, out, report, _p = corrupted_and_repaired(STEP, ["left_right_partial"], orientation)
    assert np.array_equal(out.array, expected)
    assert changed_pairs(corrupted.labels.array, out.array) == {(120, 122): corrupted.errors[0].voxels}
    assert report.relabelled == {(120, 122): corrupted.errors[0].voxels}


@pytest.mark.parametrize("orientation", ["RAS", "SRA"])
def test_a_correct_label_map_is_left_unchanged(orientation):
    p = phantom(orientation, "F")
    out, report = step_output(STEP, p.labels)
    assert np.array_equal(out.array, p.labels.array)
    assert report.applied and not report.changed
    assert report.rules[-1] == "iliac vessels below the top of the sacrum"


def test_iliac_vessels_are_split_below_the_sacrum_but_not_above():
    p = phantom("LPS")
    labels = p.labels.array.copy()
    heights = p.labels.kji_to_ras(np.argwhere(labels == 113))[:, 2]
    iliac_right = np.argwhere(labels == 113)
    labels[tuple(iliac_right.T)] = 112  # the whole right iliac artery labelled left
    out, report = split_left_right(p.labels.with_array(labels))
    sacrum_top = report.details["sacrum_top_mm"]
    back = out.array[tuple(iliac_right.T)]
    below = heights < sacrum_top - 1
    above = heights > sacrum_top + 1
    assert below.any() and above.any()
    assert np.all(back[below] == 113)  # repaired in the pelvis
    assert np.all(back[above] == 112)  # left alone where the left common iliac vein may cross the midline


def test_implausible_plane_from_a_wrong_header_is_refused_with_the_reason():
    p = phantom("RAS")
    # declare the voxel axes in the wrong order: the spine now runs left-right
    matrix = p.labels.ijk_to_ras.copy()
    matrix[:3, :3] = matrix[:3, [2, 1, 0]]
    wrong = Volume(p.labels.array, matrix)
    out, report = split_left_right(wrong)
    assert not report.applied
    assert "deg away from the patient's left-right axis" in report.skipped_reason
    assert np.array_equal(out.array, p.labels.array)


def test_missing_anchors_skip_the_split_with_a_report_not_an_exception():
    p = phantom("RAS")
    labels = p.labels.array.copy()
    labels[np.isin(labels, [*range(43, 67), 92, 102, 135])] = 1
    labels[labels == 16] = 15
    out, report = split_left_right(p.labels.with_array(labels))
    assert not report.applied and "at least 3 are needed" in report.skipped_reason
    assert np.array_equal(out.array, labels)


def test_flipped_left_right_in_the_header_is_flagged_by_the_liver_check():
    p = phantom("RAS")
    matrix = p.labels.ijk_to_ras.copy()
    matrix[0, :] *= -1  # mirror the header: the liver now appears on the patient's left
    _, report = split_left_right(Volume(p.labels.array, matrix))
    assert any("liver lies left" in w for w in report.warnings)


def test_plane_through_collinear_spine_anchors_contains_the_anterior_axis():
    anchors = {43 + n: np.array([3.0, -20.0, 800.0 - 30 * n]) for n in range(10)}
    plane = fit_midsagittal_plane(anchors)
    assert isinstance(plane, MidsagittalPlane) and plane.method == "spine line + anterior axis"
    assert np.allclose(plane.normal_ras, (-1.0, 0.0, 0.0), atol=1e-9)
    assert plane.signed_distance(np.array([[-7.0, 50.0, 500.0]]))[0] == pytest.approx(10.0)


def test_plane_tilted_beyond_the_limit_is_refused_and_within_it_accepted():
    def anchors(tilt_deg):
        t = np.deg2rad(tilt_deg)
        normal = np.array([-np.cos(t), np.sin(t), 0.0])
        inplane = [
            np.array([np.sin(t), np.cos(t), 0.0]) * y + np.array([0, 0, z])
            for y in (-40, 60)
            for z in (300, 700)
        ]
        return {i: p + 0.0 * normal for i, p in enumerate(inplane)}

    assert isinstance(fit_midsagittal_plane(anchors(DEFAULT_MAX_PLANE_TILT_DEG - 3)), MidsagittalPlane)
    failure = fit_midsagittal_plane(anchors(DEFAULT_MAX_PLANE_TILT_DEG + 3))
    assert isinstance(failure, PlaneFitFailure) and "limit 25.8 deg" in failure.reason
