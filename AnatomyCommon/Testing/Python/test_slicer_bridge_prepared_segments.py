"""Segments prepared off the main thread, then attached: the same segmentation Slicer's import builds.

Oracles: the input label array itself, and Slicer's own per-segment export
(``ExportSegmentsToLabelmapNode``) of the attached segments.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.mrml


def labels(dtype=np.uint8, big: int = 0) -> Volume:
    array = np.zeros((6, 7, 8), dtype=dtype)
    array[1:3, 1:4, 1:5] = 3
    array[3:5, 2:6, 4:8] = 7
    array[0, 0, 0] = 1
    if big:
        array[5, 6, 7] = big
    matrix = np.array([[0, 0.9, 0, 10], [-1.2, 0, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]])
    return Volume(array, matrix)


def slicer_export(node, reference_node, segment_ids):
    """Each segment through Slicer's export onto the reference grid (not the bridge's fast path)."""
    import slicer
    import vtk

    out = {}
    for segment_id in segment_ids:
        output = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            node, ids, output, reference_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
        )
        out[segment_id] = slicer.util.arrayFromVolume(output) > 0
    return out


def test_prepared_in_a_thread_then_attached_equals_the_label_map(mrml_scene):
    volume = labels()
    descriptions = [bridge.LabelDescription(3, "Three", (1.0, 0.0, 0.0)), bridge.LabelDescription(7, "Seven")]
    box, nodes_before = {}, mrml_scene.GetNumberOfNodes()
    thread = threading.Thread(
        target=lambda: box.setdefault("prepared", bridge.prepare_segments(volume, descriptions))
    )
    thread.start()
    thread.join()
    prepared = box["prepared"]
    assert (
        prepared.segment_names == ["Label 1", "Three", "Seven"]
        and mrml_scene.GetNumberOfNodes() == nodes_before
    )

    reference_node = bridge.volume_to_node(volume.with_array(np.zeros(volume.shape, np.int16)), "grid")
    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "S")
    ids = bridge.attach_segments(node, prepared, reference_volume_node=reference_node)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfLayers() == 1
    assert [segmentation.GetSegment(i).GetLabelValue() for i in ids] == [1, 3, 7]
    assert segmentation.GetSegment(ids[1]).GetColor() == (1.0, 0.0, 0.0)
    exported = slicer_export(node, reference_node, ids)
    for segment_id, value in zip(ids, (1, 3, 7), strict=True):
        np.testing.assert_array_equal(exported[segment_id], volume.array == value)
    restored, names = bridge.segmentation_node_to_labelmap(node, reference_node)
    np.testing.assert_array_equal(restored.array, volume.array)
    assert names == {1: "Label 1", 3: "Three", 7: "Seven"}
    with pytest.raises(RuntimeError, match="already added"):
        bridge.attach_segments(node, prepared)


def test_values_above_255_keep_their_value_and_the_geometry(mrml_scene):
    volume = labels(np.uint16, big=300)
    node = bridge.labelmap_to_segmentation_node(volume, name="Big")
    grid = bridge.segmentation_reference_grid(node)  # the label map's geometry, set on attach
    np.testing.assert_allclose(grid.ijk_to_ras, volume.ijk_to_ras, atol=1e-6)
    restored, names = bridge.segmentation_node_to_labelmap(node, volume)
    np.testing.assert_array_equal(restored.array, volume.array)
    assert names[300] == "Label 300"


def test_replacing_segments_leaves_only_the_new_ones(mrml_scene):
    node = bridge.labelmap_to_segmentation_node(labels(), name="R")
    second = labels().with_array((labels().array == 7).astype(np.uint8) * 2)
    bridge.attach_segments(node, bridge.prepare_segments(second), replace_segments=True)
    segmentation = node.GetSegmentation()
    assert [segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())] == [
        "Label 2"
    ]


def test_a_label_map_with_negative_values_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        bridge.present_label_values(np.array([[[0, -1, 2]]], dtype=np.int16))
    assert bridge.present_label_values(np.array([[[0, 5, 2, 5]]], dtype=np.int32)) == [2, 5]


def test_replacing_segments_does_not_erase_them_voxel_by_voxel(mrml_scene):
    """The old segments are dropped, not erased one label at a time from their shared layer.

    Slicer erases a removed segment's label from the layer (a scan of the layer per segment); the
    layer left intact shows that no such pass ran.
    """
    import slicer
    from vtk.util import numpy_support

    volume = labels()
    node = bridge.labelmap_to_segmentation_node(volume, name="R")
    segmentation = node.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    old_layer = segmentation.GetNthSegment(0).GetRepresentation(representation)
    bridge.attach_segments(node, bridge.prepare_segments(volume), replace_segments=True)
    kept = numpy_support.vtk_to_numpy(old_layer.GetPointData().GetScalars()).reshape(volume.shape)
    np.testing.assert_array_equal(kept, volume.array)
    assert segmentation.GetNumberOfSegments() == 3 and segmentation.GetNumberOfLayers() == 1
