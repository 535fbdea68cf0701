"""Conversions leave the scene as they found it plus their result; repeated results replace.

The oracle is the scene itself: node counts per class before and after (slicer-core MRML).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.volume import Volume


def node_counts(scene) -> Counter:
    return Counter(scene.GetNthNode(n).GetClassName() for n in range(scene.GetNumberOfNodes()))


@pytest.fixture
def scene(mrml_scene):
    import slicer

    # the colour logic is attached in the application: with it the default colour nodes exist
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(mrml_scene)
    colors = slicer.vtkSlicerColorLogic()
    colors.SetMRMLApplicationLogic(app_logic)
    colors.SetMRMLScene(mrml_scene)
    yield mrml_scene


def _labels() -> Volume:
    array = np.zeros((8, 9, 10), np.uint8)
    array[2:5, 2:5, 2:5] = 1
    array[5:7, 5:7, 5:7] = 3
    return Volume(array, np.diag([1.0, 1.5, 2.0, 1.0]))


def test_labelmap_to_segmentation_adds_only_the_segmentation_and_its_display(scene):
    labels = _labels()
    before = node_counts(scene)
    slicer_bridge.labelmap_to_segmentation_node(labels, name="S", scene=scene)
    assert node_counts(scene) - before == Counter(
        {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1}
    )


@pytest.mark.parametrize("reference_kind", ["node", "volume"])
def test_segmentation_to_labelmap_adds_nothing_twice(scene, reference_kind):
    labels = _labels()
    reference_node = slicer_bridge.volume_to_node(labels, "ref", scene=scene)
    segmentation = slicer_bridge.labelmap_to_segmentation_node(labels, name="S", scene=scene)
    reference = reference_node if reference_kind == "node" else labels
    slicer_bridge.segmentation_node_to_labelmap(segmentation, reference, scene=scene)  # lazy singletons
    for _ in range(2):
        before = node_counts(scene)
        exported, _ = slicer_bridge.segmentation_node_to_labelmap(segmentation, reference, scene=scene)
        assert node_counts(scene) == before
        np.testing.assert_array_equal(exported.array, labels.array)
    names = [scene.GetNthNode(n).GetName() for n in range(scene.GetNumberOfNodes())]
    assert not [n for n in names if n.endswith("_ColorTable") or n.startswith("S_ColorTable")]


def test_result_node_is_reused_per_key_and_a_refilled_segmentation_replaces_its_segments(scene):
    first = slicer_bridge.result_node(
        "vtkMRMLTableNode", "stats|vtkMRMLScalarVolumeNode1", "Stats", scene=scene
    )
    again = slicer_bridge.result_node(
        "vtkMRMLTableNode", "stats|vtkMRMLScalarVolumeNode1", "Stats", scene=scene
    )
    other = slicer_bridge.result_node(
        "vtkMRMLTableNode", "stats|vtkMRMLScalarVolumeNode2", "Stats", scene=scene
    )
    assert again is first and other is not first
    labels = _labels()
    node = slicer_bridge.labelmap_to_segmentation_node(labels, name="R", scene=scene)
    for _ in range(3):
        before = node_counts(scene)
        slicer_bridge.labelmap_to_segmentation_node(
            labels, name="R", scene=scene, segmentation_node=node, replace_segments=True
        )
        assert node_counts(scene) == before
    segmentation = node.GetSegmentation()
    names = sorted(segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments()))
    assert names == ["Label 1", "Label 3"]


def test_scratch_nodes_removes_what_the_block_added_even_on_error(scene):
    before = node_counts(scene)
    with pytest.raises(RuntimeError), slicer_bridge.scratch_nodes(scene):
        slicer_bridge.volume_to_node(_labels(), "tmp", scene=scene, labelmap=True)
        raise RuntimeError("boom")
    assert node_counts(scene) == before


@pytest.mark.parametrize("orientation", ["LPS", "oblique"])
def test_the_shared_layer_read_equals_slicers_own_export(scene, monkeypatch, orientation):
    """The fast path (one lookup over the shared layer) against Slicer's per-segment export."""
    from AnatomyCommonLib.anatomy.phantom import make_phantom

    if orientation == "oblique":
        c, s = np.cos(0.3), np.sin(0.3)
        p = make_phantom("tiny", seed=2, direction_ras=np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]))
    else:
        p = make_phantom("tiny", seed=2, orientation=orientation)
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT", scene=scene)
    segmentation = slicer_bridge.labelmap_to_segmentation_node(
        p.labels, name="DAP", scene=scene, reference_volume_node=ct_node
    )
    ids = [segmentation.GetSegmentation().GetNthSegmentID(n) for n in range(0, 40, 3)]
    fast, fast_names = slicer_bridge.segmentation_node_to_labelmap(segmentation, ct_node, segment_ids=ids)
    monkeypatch.setattr(slicer_bridge, "_shared_layer_plan", lambda *args: None)
    slow, slow_names = slicer_bridge.segmentation_node_to_labelmap(segmentation, ct_node, segment_ids=ids)
    assert fast_names == slow_names and fast.same_grid_as(slow)
    np.testing.assert_array_equal(fast.array, slow.array)
    wanted = [int(v) for v in fast_names]
    np.testing.assert_array_equal(fast.array, np.where(np.isin(p.labels.array, wanted), p.labels.array, 0))
