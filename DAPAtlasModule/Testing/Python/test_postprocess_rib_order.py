"""Rib order from anatomy, not convention: rib k must attach to vertebra T_k.

Expected maps are the phantom truth; the corrupted maps number every rib from the other end
(rib k labelled 13-k, the released script's order), built by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import crop_between, median_height, phantom

from AnatomyCommonLib.anatomy.label_schema import rib_id, vertebra_id
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.postprocess.rib_order import check_rib_order


def numbered_from_the_other_end(array: np.ndarray) -> np.ndarray:
    out = array.copy()
    for number in range(1, 13):
        for side in ("left", "right"):
            out[array == rib_id(number, side)] = rib_id(13 - number, side)
    return out


def view_of(orientation: str, view: str):
    truth = phantom(orientation).labels
    if view == "abdomen only":
        truth = crop_between(truth, median_height(truth, 102), median_height(truth, vertebra_id("T9")))
    elif view == "chest only":
        truth = crop_between(
            truth, median_height(truth, vertebra_id("L1")), median_height(truth, vertebra_id("C6"))
        )
    return truth


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "oblique"])
@pytest.mark.parametrize("view", ["whole body", "abdomen only", "chest only"])
def test_ribs_numbered_from_the_other_end_are_detected_and_renumbered(orientation, view):
    truth = view_of(orientation, view)
    reversed_labels = truth.with_array(numbered_from_the_other_end(truth.array))
    out, report = check_rib_order(reversed_labels)
    assert np.array_equal(out.array, truth.array)
    assert report.details["rib_order"] == "reversed"
    assert any("other end" in w for w in report.warnings)


@pytest.mark.parametrize("view", ["whole body", "abdomen only", "chest only"])
def test_ribs_numbered_from_the_top_are_reported_as_anatomical_and_left_alone(view):
    truth = view_of("LPS", view)
    out, report = check_rib_order(truth)
    assert np.array_equal(out.array, truth.array)
    assert report.details["rib_order"] == "anatomical" and not report.warnings


def test_a_few_wrong_rib_numbers_are_not_a_reversed_order():
    truth = phantom("RAS").labels
    array = truth.array.copy()
    for old, new in ((3, 10), (10, 3)):  # rib 3 <-> rib 10 on the left: 10 = 13 - 3
        array[truth.array == rib_id(old, "left")] = rib_id(new, "left")
    out, report = check_rib_order(truth.with_array(array))
    assert np.array_equal(out.array, array)
    assert report.details["rib_order"] == "anatomical"


def test_without_thoracic_vertebrae_the_order_is_undetermined_and_nothing_changes():
    truth = view_of("RAS", "abdomen only")
    array = numbered_from_the_other_end(truth.array)
    array[np.isin(array, range(50, 62))] = 1
    out, report = check_rib_order(truth.with_array(array))
    assert np.array_equal(out.array, array)
    assert report.details["rib_order"] == "undetermined"


def test_the_pipeline_repairs_a_reversed_model_and_says_so():
    truth = view_of("oblique", "whole body")
    result = postprocess(
        truth.with_array(numbered_from_the_other_end(truth.array)), steps=["rib_order", "rib_counting"]
    )
    assert np.array_equal(result.labels.array, truth.array)
    assert result.report.step("rib_order").details["rib_order"] == "reversed"
    assert not result.report.step("rib_counting").changed


def test_after_inference_without_the_rules_a_reversed_model_output_is_renumbered():
    """V2 runs without the rules; the rib order is still checked on its output."""
    from DAPAtlasLib.inference import check_model_rib_order

    truth = view_of("LPS", "abdomen only")
    model_output = truth.with_array(numbered_from_the_other_end(truth.array), dap_model="test")
    out = check_model_rib_order(model_output)
    assert np.array_equal(out.array, truth.array)
    assert out.metadata["dap_rib_order_report"].details["rib_order"] == "reversed"
    assert out.metadata["dap_model"] == "test"
    # a correctly numbered output is returned as it is
    same = check_model_rib_order(truth)
    assert np.array_equal(same.array, truth.array)
    assert same.metadata["dap_rib_order_report"].details["rib_order"] == "anatomical"


@pytest.mark.parametrize("seed", range(40))
def test_the_attachment_vote_stopping_early_is_the_vote_of_all_points(seed):
    """The nearest-vertebra lookups stop once the rest cannot change the outcome; the oracle
    looks every point up (as the released rule) and counts the votes with np.bincount."""
    from scipy.spatial import cKDTree

    from DAPAtlasLib.postprocess import rib_anatomy

    rng = np.random.default_rng(seed)
    vertebrae = rng.normal(size=(300, 3)) * 8.0 + np.repeat(np.arange(12)[:, None] * [0, 0, 25.0], 25, 0)
    owner = np.repeat(np.arange(1, 13), 25)
    in_view = np.ones(13, dtype=bool)
    in_view[0] = False
    in_view[rng.integers(1, 13, size=rng.integers(0, 4))] = False
    tree = cKDTree(vertebrae)
    # points near one vertebra (a clear vote), near two (split votes) or far (no vote)
    level = rng.integers(0, 12)
    spread = rng.choice([2.0, 12.0, 30.0, 60.0])
    points = rng.normal(size=(int(rng.integers(5, 3000)), 3)) * spread + [30.0, 0.0, 25.0 * level]
    dist, nearest = tree.query(points)
    votes = owner[nearest[dist <= rib_anatomy._ATTACHMENT_MAX_DISTANCE_MM]]
    expected = None
    if votes.size:
        counts = np.bincount(votes)
        winner = int(counts.argmax())
        if counts[winner] >= rib_anatomy._ATTACHMENT_MAJORITY * votes.size and in_view[winner]:
            expected = winner
    assert rib_anatomy._clear_attachment(tree, owner, in_view, points) == expected


@pytest.mark.parametrize("orientation", ["LPS", "oblique"])
def test_rib_component_points_labels_and_border_are_those_of_each_components_own_mask(
    orientation, monkeypatch
):
    """Oracle: each component's own mask in its box (points_ras, np.bincount, touches_border),
    with a subsample limit small enough to subsample every rib."""
    import cc3d

    from DAPAtlasLib.postprocess import rib_anatomy
    from DAPAtlasLib.postprocess.label_editing import LabelMapEditor, component_statistics
    from DAPAtlasLib.postprocess.report import StepReport
    from DAPAtlasLib.postprocess.step_context import StepContext

    whole = view_of(orientation, "whole body")
    truth = crop_between(whole, None, median_height(whole, rib_id(3, "left")))  # ribs cut at the top
    monkeypatch.setattr(rib_anatomy, "_MAX_POINTS", 150)
    editor = LabelMapEditor(truth)
    context = StepContext(editor=editor)
    region = editor.box(*rib_anatomy.RIBS)
    rib_mask = rib_anatomy.is_rib(editor.array[region])
    found = rib_anatomy.rib_components(context, region, rib_mask, StepReport(step="test"))
    pieces, n = cc3d.connected_components(rib_mask, connectivity=6, return_N=True)
    assert len(found.components) == n >= 20
    expected = component_statistics(pieces, n)  # the run pass over the whole box
    assert np.array_equal(found.stats["voxel_counts"], expected["voxel_counts"])
    assert np.array_equal(found.stats["first_voxel"], expected["first_voxel"])
    assert found.stats["bounding_boxes"] == expected["bounding_boxes"]
    assert any(c.border for c in found.components) and not all(c.border for c in found.components)
    for component in found.components:
        own = pieces == component.index
        points = context.geometry.points_ras(own, region, max_points=150)
        assert np.array_equal(component.points, points)
        assert component.label == int(np.bincount(editor.array[region][own]).argmax())
        assert component.border == rib_anatomy.touches_border(own, region, editor.array.shape)
        assert component.voxels == int(own.sum())
