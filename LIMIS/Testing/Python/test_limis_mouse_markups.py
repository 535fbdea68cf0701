"""Markups mouse prompts against real MRML (PyPI slicer-core): point lists and scribble curves."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.exceptions import InvalidPromptError
from LIMISLib.mrml_nodes import placed_point, scribble_from_curve
from LIMISLib.slice_geometry import AxialSliceGeometry

pytestmark = pytest.mark.mrml


@pytest.fixture(scope="module")
def phantom():
    # LPS: array axes (k, j, i) = (inferior->superior slices, rows, columns) as displayed
    return make_phantom("tiny", seed=0, sex="M", orientation="LPS", n_lesions=0)


def voxel_ras(volume, i: float, j: float, k: float) -> list[float]:
    """RAS of a voxel position from the volume's own ijk_to_ras matrix (by hand, no LIMISLib)."""
    return [float(v) for v in (np.asarray(volume.ijk_to_ras) @ np.array([i, j, k, 1.0]))[:3]]


def test_the_last_placed_point_is_its_pixel_and_slice(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    node = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "positive points")
    assert placed_point(geometry, node) is None
    node.AddControlPoint(*voxel_ras(phantom.ct, 5, 6, 40), "")
    node.AddControlPoint(*voxel_ras(phantom.ct, 12, 20, 70), "")
    # voxel centre (i, j) is pixel (i + 0.5, j + 0.5) on the display slice k
    assert placed_point(geometry, node) == pytest.approx((12.5, 20.5, 70))
    node.UnsetNthControlPointPosition(1)  # e.g. a point whose position was cleared
    assert placed_point(geometry, node) == pytest.approx((5.5, 6.5, 40))


@pytest.mark.parametrize("closed", [False, True])
def test_a_linear_curve_becomes_its_pixel_outline_on_its_slice(mrml_scene, phantom, closed):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    kind = "vtkMRMLMarkupsClosedCurveNode" if closed else "vtkMRMLMarkupsCurveNode"
    node = mrml_scene.AddNewNodeByClass(kind, "scribble")
    node.SetCurveTypeToLinear()
    corners = [(10, 12), (20, 12), (20, 18), (10, 18)]  # voxel centres (i, j) on slice 60
    for i, j in corners:
        node.AddControlPoint(*voxel_ras(phantom.ct, i, j, 60), "")
    mask, slice_index = scribble_from_curve(geometry, node)
    assert slice_index == 60
    expected = np.zeros(geometry.image_shape, bool)
    expected[12, 10:21] = True  # top edge
    expected[12:19, 20] = True  # right edge
    expected[18, 10:21] = True  # bottom edge
    if closed:
        expected[12:19, 10] = True  # the closing edge
    assert np.array_equal(mask, expected)


def test_a_curve_across_slices_or_without_points_is_refused(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    node = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsCurveNode", "scribble")
    with pytest.raises(InvalidPromptError, match="no points"):
        scribble_from_curve(geometry, node)
    node.AddControlPoint(*voxel_ras(phantom.ct, 10, 12, 60), "")
    node.AddControlPoint(*voxel_ras(phantom.ct, 20, 12, 64), "")
    with pytest.raises(InvalidPromptError, match="spans axial slices"):
        scribble_from_curve(geometry, node)
