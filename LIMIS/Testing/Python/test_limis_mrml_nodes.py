"""The MRML side of LIMIS against real MRML (PyPI slicer-core): box, clicks, grid, mask -> segment."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib import slicer_bridge as bridge
from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb, label_id
from AnatomyCommonLib.anatomy.label_terminology import terminology_entry
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.terminology import TerminologyEntry
from LIMISLib.click_grid import cell_center
from LIMISLib.mrml_nodes import (
    box_from_roi,
    box_to_roi,
    clicks_from_points,
    clicks_to_points,
    grid_to_markups,
    write_slice_mask,
)
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import Click
from LIMISLib.slice_geometry import AxialSliceGeometry, box_around_mask
from LIMISLib.volume_session import VolumeSession

pytestmark = pytest.mark.mrml


@pytest.fixture(scope="module", params=["LPS", "SRA"])
def phantom(request):
    return make_phantom("tiny", seed=0, sex="M", orientation=request.param, n_lesions=0)


def test_a_box_becomes_an_roi_on_its_slice_and_comes_back_unchanged(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    box, k = (12.0, 20.0, 30.0, 34.0), 80
    roi = box_to_roi(geometry, box, k, scene=mrml_scene)
    center, size, _ = bridge.roi_node_to_box(roi)
    assert np.allclose(center, geometry.pixel_to_ras([(21.0, 27.0)], k)[0])
    assert np.allclose(size, (18 * 6.0, 14 * 6.0, 6.0))
    back, slice_index = box_from_roi(geometry, roi)
    assert np.allclose(back, box) and slice_index == k


def test_dragging_the_roi_gives_the_session_a_new_box_step(mrml_scene, phantom):
    truth = phantom.labels.array == label_id("liver")
    session = VolumeSession(phantom.ct, IntensityBBox2Mask())
    geometry = session.geometry
    k = [s for s in range(geometry.n_slices) if geometry.extract(truth, s).any()][8]
    session.set_active_slice(k)
    session.segment("liver", box_xyxy=box_around_mask(geometry.extract(truth, k)))
    roi = box_to_roi(geometry, session.active.current.box_xyxy, k, scene=mrml_scene)
    center = [0.0, 0.0, 0.0]
    roi.GetCenter(center)
    shift_mm = geometry.display_axes_ras()[:, 0] * 12.0  # two pixels towards display right
    roi.SetCenter(*(np.asarray(center) + shift_mm))
    box, slice_index = box_from_roi(geometry, roi)
    reply = session.set_box(box)
    assert reply.ok and slice_index == k
    before = session.active.steps[0].box_xyxy
    assert np.allclose(session.active.current.box_xyxy, (before[0] + 2, before[1], before[2] + 2, before[3]))


def test_clicks_become_signed_control_points_and_come_back(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    clicks = [Click(10.5, 20.5, True), Click(33.25, 12.75, False)]
    node = clicks_to_points(geometry, clicks, 70, scene=mrml_scene)
    assert [node.GetNthControlPointLabel(n) for n in range(2)] == ["+1", "-2"]
    back = clicks_from_points(geometry, node)
    assert [slice_index for _, slice_index in back] == [70, 70]
    for (click, _), expected in zip(back, clicks, strict=True):
        assert click.positive == expected.positive
        assert np.allclose((click.x, click.y), (expected.x, expected.y))


def test_the_grid_shows_cell_numbers_at_the_cell_centres(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    box = (8.0, 8.0, 40.0, 24.0)
    numbers, lines = grid_to_markups(geometry, box, 60, scene=mrml_scene)
    assert [numbers.GetNthControlPointLabel(n) for n in range(16)] == [str(c) for c in range(1, 17)]
    for cell in (1, 7, 16):
        position = [0.0, 0.0, 0.0]
        numbers.GetNthControlPointPosition(cell - 1, position)
        assert np.allclose(geometry.ras_to_pixel(np.array(position))[0][0], cell_center(box, cell))
    assert lines.GetNumberOfControlPoints() == 12


def test_a_slice_mask_goes_into_the_structure_segment_on_exactly_that_slice(mrml_scene, phantom):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    volume_node = bridge.volume_to_node(phantom.ct, "CT", scene=mrml_scene)
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    truth = phantom.labels.array == label_id("kidney left")
    slices = [k for k in range(geometry.n_slices) if geometry.extract(truth, k).any()][3:5]
    for k in slices:
        segment_id = write_slice_mask(
            segmentation, "kidney left", geometry, k, geometry.extract(truth, k), volume_node
        )
    exported = bridge.segment_to_mask_or_empty(segmentation, segment_id, volume_node)
    expected = np.zeros(phantom.ct.shape, np.uint8)
    for k in slices:
        geometry.insert(expected, k, geometry.extract(truth, k).astype(np.uint8))
    assert np.array_equal(exported, expected)
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    assert segment.GetName() == "Kidney Left"
    assert np.allclose(segment.GetColor(), np.array(default_colors_rgb()[label_id("kidney left")]) / 255.0)
    import vtk

    tag = vtk.mutable("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), tag)
    assert TerminologyEntry.from_slicer_string(str(tag)) == terminology_entry(label_id("kidney left"))
    # overwriting a slice with an empty mask clears only that slice
    write_slice_mask(
        segmentation, "kidney left", geometry, slices[0], np.zeros(geometry.image_shape, bool), volume_node
    )
    geometry.insert(expected, slices[0], np.zeros(geometry.image_shape, np.uint8))
    assert np.array_equal(bridge.segment_to_mask_or_empty(segmentation, segment_id, volume_node), expected)
