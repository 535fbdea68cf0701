"""MRML conversions against the real Slicer libraries (PyPI slicer-core)."""

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.errors import EmptyMaskError, GeometryMismatchError
from AnatomyCommonLib.terminology import ANATOMICAL_STRUCTURE, LEFT, Code, TerminologyEntry
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.mrml

# Columns are the RAS directions of i, j, k: i -> Posterior, j -> Inferior, k -> Right (permuted + flipped).
OBLIQUE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def ct_volume() -> Volume:
    rng = np.random.default_rng(1)
    array = rng.integers(-1000, 1000, size=(6, 7, 8)).astype(np.int16)
    return Volume.from_geometry(array, (0.8, 0.9, 2.0), (12.0, -40.0, 300.0), OBLIQUE)


def label_volume() -> Volume:
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[1:3, 1:4, 1:5] = 15
    labels[3:5, 2:6, 4:7] = 16
    labels[0, 0, 0] = 144
    return ct_volume().with_array(labels)


def test_volume_node_round_trip_keeps_voxels_and_oblique_geometry(mrml_scene):
    volume = ct_volume()
    node = bridge.volume_to_node(volume, "CT", scene=mrml_scene)
    assert node.GetClassName() == "vtkMRMLScalarVolumeNode"
    back = bridge.node_to_volume(node)
    assert np.array_equal(back.array, volume.array)
    assert np.allclose(back.ijk_to_ras, volume.ijk_to_ras)


def test_prepared_volume_attaches_the_job_image_itself_with_voxels_and_oblique_geometry(mrml_scene):
    import threading

    ct = ct_volume()
    built = {}
    worker = threading.Thread(target=lambda: built.update(ct=bridge.prepare_volume(ct)))
    worker.start()  # prepared off the main thread, as in a job
    worker.join()
    node = bridge.attach_prepared_volume(built["ct"], "CT", scene=mrml_scene)
    assert node.GetImageData() is built["ct"].image and node.IsA("vtkMRMLScalarVolumeNode")
    back = bridge.node_to_volume(node)
    np.testing.assert_array_equal(back.array, ct.array)
    assert back.array.dtype == np.int16
    np.testing.assert_allclose(back.ijk_to_ras, ct.ijk_to_ras)

    # a given label-map node is refilled (its image replaced), booleans arrive as uint8
    labels = bridge.volume_to_node(label_volume(), "labels", scene=mrml_scene, labelmap=True)
    mask = ct.with_array(ct.array > 0)
    again = bridge.attach_prepared_volume(bridge.prepare_volume(mask), "x", scene=mrml_scene, node=labels)
    assert again is labels
    back = bridge.node_to_volume(labels)
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, mask.array.astype(np.uint8))
    with pytest.raises(ValueError, match="3D scalar"):
        bridge.prepare_volume(Volume(np.zeros((2, 3, 4, 3), np.uint8), np.eye(4)))


def test_node_to_volume_applies_a_parent_linear_transform(mrml_scene):
    import vtk

    node = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 25.0)  # 25 mm to the right
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    back = bridge.node_to_volume(node)
    assert back.origin_ras == pytest.approx((12.0 + 25.0, -40.0, 300.0))


def test_labelmap_to_segmentation_names_colours_and_terminology(mrml_scene):
    kidney = TerminologyEntry(ANATOMICAL_STRUCTURE, Code("64033007", "Kidney"), LEFT)
    descriptions = [
        bridge.LabelDescription(15, "Kidney Left", (0.8, 0.3, 0.3), kidney),
        bridge.LabelDescription(16, "Kidney Right", (0.3, 0.8, 0.3)),
    ]
    reference = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    node = bridge.labelmap_to_segmentation_node(
        label_volume(), descriptions, "Labels", scene=mrml_scene, reference_volume_node=reference
    )
    segmentation = node.GetSegmentation()
    segments = {segmentation.GetNthSegment(n).GetName(): segmentation.GetNthSegment(n) for n in range(3)}
    assert set(segments) == {"Kidney Left", "Kidney Right", "Label 144"}
    assert segments["Kidney Right"].GetColor() == pytest.approx((0.3, 0.8, 0.3), abs=1 / 255)
    import vtk

    tag = vtk.mutable("")
    assert segments["Kidney Left"].GetTag(segments["Kidney Left"].GetTerminologyEntryTagName(), tag)
    entry = TerminologyEntry.from_slicer_string(str(tag))
    assert entry.type.value == "64033007" and entry.modifier == LEFT
    # temporary label map and colour table nodes are gone
    assert mrml_scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == 0


def test_segmentation_round_trip_restores_label_values_on_the_reference_grid(mrml_scene):
    labels = label_volume()
    reference = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    node = bridge.labelmap_to_segmentation_node(
        labels, (), "Labels", scene=mrml_scene, reference_volume_node=reference
    )
    back, names = bridge.segmentation_node_to_labelmap(node, reference, scene=mrml_scene)
    assert np.array_equal(back.array, labels.array)
    assert np.allclose(back.ijk_to_ras, labels.ijk_to_ras)
    assert names == {15: "Label 15", 16: "Label 16", 144: "Label 144"}
    # a Volume works as the reference grid too
    again, _ = bridge.segmentation_node_to_labelmap(node, ct_volume(), scene=mrml_scene)
    assert np.array_equal(again.array, labels.array)


def test_segments_painted_in_slicer_without_value_tags_get_consecutive_values(mrml_scene):
    reference = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    node = bridge.labelmap_to_segmentation_node(label_volume(), (), "Labels", scene=mrml_scene)
    segmentation = node.GetSegmentation()
    for n in range(segmentation.GetNumberOfSegments()):
        segmentation.GetNthSegment(n).RemoveTag(bridge.LABEL_VALUE_TAG)
    back, _ = bridge.segmentation_node_to_labelmap(node, reference, scene=mrml_scene)
    assert sorted(np.unique(back.array).tolist()) == [0, 1, 2, 3]
    assert (back.array == 1).sum() == (label_volume().array == 15).sum()


def test_segment_to_mask_and_empty_segment_error(mrml_scene):
    reference = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    node = bridge.labelmap_to_segmentation_node(label_volume(), (), "Labels", scene=mrml_scene)
    segmentation = node.GetSegmentation()
    kidney_id = next(
        segmentation.GetNthSegmentID(n)
        for n in range(segmentation.GetNumberOfSegments())
        if segmentation.GetNthSegment(n).GetName() == "Label 16"
    )
    mask = bridge.segment_to_mask(node, kidney_id, reference, scene=mrml_scene)
    assert mask.array.dtype == np.uint8
    assert np.array_equal(mask.array, (label_volume().array == 16).astype(np.uint8))
    empty_id = segmentation.AddEmptySegment("empty")
    with pytest.raises(EmptyMaskError, match="empty"):
        bridge.segment_to_mask(node, empty_id, reference, scene=mrml_scene)
    with pytest.raises(KeyError, match="no segment"):
        bridge.segmentation_node_to_labelmap(node, reference, segment_ids=["nope"], scene=mrml_scene)


def test_table_node_round_trip(mrml_scene):
    rows = [
        {"structure": "liver", "volume_ml": 1500.5, "voxels": 12},
        {"structure": "spleen", "volume_ml": 180.25, "voxels": 3},
    ]
    node = bridge.rows_to_table_node(rows, "Stats", scene=mrml_scene)
    assert node.GetNumberOfRows() == 2 and node.GetNumberOfColumns() == 3
    assert bridge.table_node_to_rows(node) == [
        {"structure": "liver", "volume_ml": 1500.5, "voxels": 12.0},
        {"structure": "spleen", "volume_ml": 180.25, "voxels": 3.0},
    ]


def test_roi_markup_round_trip_with_oblique_axes(mrml_scene):
    node = bridge.box_to_roi_node((10, 20, 30), (40, 50, 6), "Box", axes_ras=OBLIQUE, scene=mrml_scene)
    center, size, axes = bridge.roi_node_to_box(node)
    assert center == pytest.approx((10, 20, 30))
    assert size == pytest.approx((40, 50, 6))
    assert np.allclose(axes, OBLIQUE)


def test_fiducial_markup_round_trip(mrml_scene):
    node = bridge.points_to_fiducial_node([(1, 2, 3), (-4, 5.5, 6)], ["+1", "-1"], "Clicks", scene=mrml_scene)
    points = bridge.fiducial_node_to_points(node)
    assert [label for _, label in points] == ["+1", "-1"]
    assert np.allclose(points[1][0], (-4, 5.5, 6))
    bridge.points_to_fiducial_node([(0, 0, 0)], ["+1"], node=node, scene=mrml_scene)
    assert node.GetNumberOfControlPoints() == 1


def test_non_linear_parent_transform_is_refused(mrml_scene):
    node = bridge.volume_to_node(ct_volume(), "CT", scene=mrml_scene)
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLGridTransformNode")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(GeometryMismatchError, match="Harden"):
        bridge.node_to_volume(node)
