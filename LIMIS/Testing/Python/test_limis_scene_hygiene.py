"""LIMIS's scene actions, repeated, add nothing new (slicer-core MRML; oracle: node counts by class)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.mrml_nodes import grid_to_markups, write_slice_mask
from LIMISLib.slice_geometry import AxialSliceGeometry, box_around_mask

pytestmark = pytest.mark.mrml


def node_counts(scene) -> Counter:
    return Counter(scene.GetNthNode(n).GetClassName() for n in range(scene.GetNumberOfNodes()))


def test_writing_slices_and_showing_the_grid_twice_adds_nothing(mrml_scene):
    phantom = make_phantom("tiny", seed=0, sex="M", orientation="LPS", n_lesions=0)
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    volume_node = bridge.volume_to_node(phantom.ct, "CT", scene=mrml_scene)
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    truth = phantom.labels.array == label_id("liver")
    k = [s for s in range(geometry.n_slices) if geometry.extract(truth, s).any()][4]
    mask = geometry.extract(truth, k)
    box = box_around_mask(mask)
    counts = []
    labels_node = lines_node = None
    for _ in range(3):
        write_slice_mask(segmentation, "liver", geometry, k, mask, volume_node)
        write_slice_mask(segmentation, "liver", geometry, k + 1, geometry.extract(truth, k + 1), volume_node)
        labels_node, lines_node = grid_to_markups(
            geometry, box, k, scene=mrml_scene, labels_node=labels_node, lines_node=lines_node
        )
        segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
        exported = bridge.segment_to_mask_or_empty(segmentation, segment_id, volume_node)  # read back
        counts.append(node_counts(mrml_scene))
    assert counts[1] == counts[0] and counts[2] == counts[0]
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert np.count_nonzero(exported.any(axis=tuple(a for a in range(3) if a != geometry.slice_axis))) == 2
