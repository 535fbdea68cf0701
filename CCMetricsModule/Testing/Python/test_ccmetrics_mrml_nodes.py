"""The module's logic on real MRML (slicer-core): reference segment -> mask -> evaluate -> table rows."""

import numpy as np
import pytest

from AnatomyCommonLib import Volume
from AnatomyCommonLib import slicer_bridge as bridge
from CCMetricsLib import evaluate
from CCMetricsLib.exceptions import GeometryMismatchError
from CCMetricsLib.mrml_nodes import (
    add_regions,
    evaluate_nodes,
    matching_segment_id,
    show_regions,
    table_row_position_ras,
)
from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask
from CCMetricsLib.voronoi import voronoi_regions

pytestmark = pytest.mark.mrml

OBLIQUE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@pytest.fixture
def scene_case(mrml_scene):
    shape = (20, 40, 36)
    spacing_ijk = (0.9, 1.1, 2.0)
    spacing_kji = spacing_ijk[::-1]
    reference = sphere_mask(
        shape, random_spheres(shape, 4, (2.5, 6.0), 4.0, spacing_kji, seed=3), spacing_kji
    )
    prediction, plan = perturb_prediction(
        reference,
        missed=1,
        dilated=1,
        false_positives=1,
        false_positive_radius_mm=2.5,
        spacing=spacing_kji,
        seed=2,
    )
    ct = Volume.from_geometry(np.zeros(shape, np.int16), spacing_ijk, (30.0, -20.0, 100.0), OBLIQUE)
    ct_node = bridge.volume_to_node(ct, "CT", scene=mrml_scene)
    reference_labels = ct.with_array(reference.astype(np.uint8))
    reference_node = bridge.labelmap_to_segmentation_node(
        reference_labels,
        [bridge.LabelDescription(1, "lesions")],
        "Reference",
        scene=mrml_scene,
        reference_volume_node=ct_node,
    )
    prediction_volume = ct.with_array(prediction.astype(np.uint8))
    model_a = bridge.labelmap_to_segmentation_node(
        prediction_volume,
        [bridge.LabelDescription(1, "lesions")],
        "Model A",
        scene=mrml_scene,
        reference_volume_node=ct_node,
    )
    model_b = bridge.volume_to_node(prediction_volume, "Model B", scene=mrml_scene, labelmap=True)
    return mrml_scene, reference_labels, prediction_volume, reference_node, model_a, model_b, plan


def test_reference_segment_to_table_rows_round_trip_equals_the_library(scene_case):
    scene, reference, prediction, reference_node, model_a, model_b, plan = scene_case
    result = evaluate_nodes(reference_node, [model_a, model_b], distance_worst=40, scene=scene)
    expected = evaluate(reference, prediction, distance_worst=40)
    rows = bridge.table_node_to_rows(result.component_table)
    assert [r["prediction"] for r in rows] == ["Model A"] * 4 + ["Model B"] * 4
    for table_row, row in zip(rows[:4], expected.per_component, strict=True):
        assert table_row["component_id"] == row["component_id"]
        assert table_row["dice"] == pytest.approx(row["dice"])
        assert table_row["hd95"] == pytest.approx(row["hd95"])
        assert table_row["detected"] == float(row["detected"])
        assert (table_row["centroid_r"], table_row["centroid_a"], table_row["centroid_s"]) == pytest.approx(
            row["centroid_ras"]
        )
    assert rows[4:] == [{**r, "prediction": "Model B"} for r in rows[:4]]
    missed = [int(r["component_id"]) for r in rows[:4] if r["detected"] == 0.0]
    assert missed == plan.missed
    summary = bridge.table_node_to_rows(result.summary_table)
    assert [s["prediction"] for s in summary] == ["Model A", "Model B"]
    assert summary[0]["cc_dice"] == pytest.approx(expected.mean["dice"])
    assert summary[0]["standard_dice"] == pytest.approx(expected.standard["dice"])
    assert table_row_position_ras(result.component_table, 0) == pytest.approx(
        expected.per_component[0]["centroid_ras"]
    )


def test_the_region_overlay_has_one_outlined_segment_per_component_on_the_reference_grid(scene_case):
    scene, reference, _, reference_node, model_a, _, _ = scene_case
    result = evaluate_nodes(reference_node, [model_a], with_regions=True, scene=scene)
    segmentation = result.regions.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 4
    display = result.regions.GetDisplayNode()
    assert display.GetVisibility2DOutline() and not display.GetVisibility2DFill()
    labels, names = bridge.segmentation_node_to_labelmap(result.regions, reference, scene=scene)
    expected, _ = voronoi_regions(reference.array, reference.spacing_kji_mm, spacing_order="kji")
    assert np.array_equal(labels.array, expected)
    assert names[1] == "Region 1"
    show_regions(result.regions, visible=False)
    assert not display.GetVisibility()
    assert reference_node.GetSegmentation().GetNumberOfSegments() == 1  # inputs untouched


def test_a_label_map_on_another_grid_is_refused(scene_case):
    scene, _, prediction, reference_node, _, _, _ = scene_case
    moved = Volume(prediction.array, prediction.ijk_to_ras.copy())
    moved.ijk_to_ras[2, 3] += 10.0
    moved_node = bridge.volume_to_node(moved, "Moved", scene=scene, labelmap=True)
    with pytest.raises(GeometryMismatchError, match="Moved"):
        evaluate_nodes(reference_node, [moved_node], scene=scene)


def test_prediction_segments_are_matched_by_the_reference_segment_name(mrml_scene):
    volume = Volume.from_geometry(np.zeros((4, 5, 6), np.uint8))
    labels = volume.with_array(np.zeros((4, 5, 6), np.uint8))
    labels.array[1, 1, 1], labels.array[2, 3, 4] = 1, 2
    node = bridge.labelmap_to_segmentation_node(
        labels,
        [bridge.LabelDescription(1, "liver"), bridge.LabelDescription(2, "lesions")],
        "S",
        scene=mrml_scene,
    )
    segmentation = node.GetSegmentation()
    assert segmentation.GetSegment(matching_segment_id(node, "lesions")).GetName() == "lesions"
    with pytest.raises(KeyError, match="several segments"):
        matching_segment_id(node, "tumour")


def test_the_overlay_can_be_left_out_and_added_later(scene_case):
    scene, _, _, reference_node, model_a, _, _ = scene_case
    result = evaluate_nodes(reference_node, [model_a], with_regions=False, scene=scene)
    assert result.regions is None
    assert add_regions(result, scene=scene).GetSegmentation().GetNumberOfSegments() == 4
