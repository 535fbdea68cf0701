"""segmentation_reference_grid: the grid a segmentation was painted on (real MRML, slicer-core)."""

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.errors import GeometryMismatchError
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.mrml

OBLIQUE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def test_reference_grid_of_a_segmentation_is_its_source_volume_grid(mrml_scene):
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[1:3, 2:5, 3:6] = 1
    volume = Volume.from_geometry(labels, (0.8, 0.9, 2.0), (12.0, -40.0, 300.0), OBLIQUE)
    volume_node = bridge.volume_to_node(volume, "CT", scene=mrml_scene)
    segmentation = bridge.labelmap_to_segmentation_node(
        volume,
        [bridge.LabelDescription(1, "lesion")],
        "S",
        scene=mrml_scene,
        reference_volume_node=volume_node,
    )
    grid = bridge.segmentation_reference_grid(segmentation)
    assert grid.shape == volume.shape and not grid.array.any()
    assert np.allclose(grid.ijk_to_ras, volume.ijk_to_ras)
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    assert np.array_equal(
        bridge.segment_to_mask(segmentation, segment_id, grid, scene=mrml_scene).array, labels
    )


def test_a_segmentation_without_reference_geometry_gets_a_clear_error(mrml_scene):
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    with pytest.raises(GeometryMismatchError, match="reference volume"):
        bridge.segmentation_reference_grid(segmentation)
