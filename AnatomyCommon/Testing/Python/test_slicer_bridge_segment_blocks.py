"""Writing one block (e.g. one slice) of a segment against real MRML (PyPI slicer-core)."""

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.terminology import ANATOMICAL_STRUCTURE, LEFT, Code, TerminologyEntry
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.mrml

# i -> Posterior, j -> Inferior, k -> Right: permuted and flipped axes.
OBLIQUE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
KIDNEY = bridge.LabelDescription(
    15,
    "Kidney Left",
    (0.8, 0.3, 0.2),
    TerminologyEntry(ANATOMICAL_STRUCTURE, Code("64033007", "Kidney"), LEFT),
)


def reference(mrml_scene):
    volume = Volume.from_geometry(
        np.zeros((6, 7, 8), np.int16), (0.8, 0.9, 2.0), (12.0, -40.0, 300.0), OBLIQUE
    )
    return volume, bridge.volume_to_node(volume, "CT", scene=mrml_scene)


def read_back(segmentation_node, segment_id, volume_node):
    return bridge.segment_to_mask_or_empty(segmentation_node, segment_id, volume_node)


def test_ensure_segment_creates_one_named_coloured_segment_with_terminology_and_reuses_it(mrml_scene):
    _, volume_node = reference(mrml_scene)
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    first = bridge.ensure_segment(segmentation, KIDNEY, volume_node)
    again = bridge.ensure_segment(segmentation, KIDNEY, volume_node)
    assert first == again
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    segment = segmentation.GetSegmentation().GetSegment(first)
    assert segment.GetName() == "Kidney Left"
    assert np.allclose(segment.GetColor(), (0.8, 0.3, 0.2))
    import vtk

    tag = vtk.mutable("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), tag)
    assert TerminologyEntry.from_slicer_string(str(tag)) == KIDNEY.terminology
    assert not read_back(segmentation, first, volume_node).any()


def test_writing_one_slice_changes_only_that_slice_of_the_segment(mrml_scene):
    volume, volume_node = reference(mrml_scene)
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segment_id = bridge.ensure_segment(segmentation, KIDNEY, volume_node)
    expected = np.zeros(volume.shape, np.uint8)
    rng = np.random.default_rng(3)
    for k in (2, 4, 3):
        block = (rng.random((1, 7, 8)) > 0.5).astype(np.uint8)
        bridge.write_segment_block(segmentation, segment_id, block, (k, 0, 0), volume_node)
        expected[k : k + 1] = block
        assert np.array_equal(read_back(segmentation, segment_id, volume_node), expected)
    bridge.write_segment_block(
        segmentation, segment_id, np.zeros((1, 7, 8), np.uint8), (4, 0, 0), volume_node
    )
    expected[4] = 0
    assert np.array_equal(read_back(segmentation, segment_id, volume_node), expected)


def test_writing_a_block_leaves_other_segments_alone(mrml_scene):
    volume, volume_node = reference(mrml_scene)
    labels = np.zeros(volume.shape, np.uint8)
    labels[1:4, 2:5, 2:6] = 13
    segmentation = bridge.labelmap_to_segmentation_node(
        volume.with_array(labels),
        [bridge.LabelDescription(13, "Liver")],
        scene=mrml_scene,
        reference_volume_node=volume_node,
    )
    kidney = bridge.ensure_segment(segmentation, KIDNEY, volume_node)
    block = np.zeros((2, 3, 3), np.uint8)
    block[:, 1, 1] = 1
    bridge.write_segment_block(segmentation, kidney, block, (0, 0, 0), volume_node)
    exported, names = bridge.segmentation_node_to_labelmap(segmentation, volume_node)
    assert names == {13: "Liver", 15: "Kidney Left"}
    assert np.count_nonzero(exported.array == 13) == np.count_nonzero(labels)
    assert np.argwhere(exported.array == 15).tolist() == [[0, 1, 1], [1, 1, 1]]
