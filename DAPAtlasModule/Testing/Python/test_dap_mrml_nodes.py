"""DAP results as MRML nodes: segmentation grouped by system, terminology tags, table, plot, sex."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.anatomy.label_schema import SYSTEMS, default_colors_rgb
from AnatomyCommonLib.anatomy.label_terminology import terminology_entry
from DAPAtlasLib import mrml_nodes
from DAPAtlasLib.statistics import statistics_rows, structure_statistics, volumes_by_system

pytestmark = pytest.mark.mrml


def _tag(segment, name):
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(name, value) else None


def test_segmentation_has_dap_names_colours_terminology_and_is_ordered_by_system(mrml_scene):
    p = phantom("LPS", "F")
    node = mrml_nodes.create_dap_segmentation(p.labels, scene=mrml_scene)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(np.unique(p.labels.array)) - 1
    systems = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        value = int(_tag(segment, slicer_bridge.LABEL_VALUE_TAG))
        systems.append(_tag(segment, mrml_nodes.SYSTEM_TAG))
        assert (
            _tag(segment, segment.GetTerminologyEntryTagName()) == terminology_entry(value).to_slicer_string()
        )
        assert np.allclose(np.array(segment.GetColor()) * 255, default_colors_rgb()[value], atol=0.6)
    assert systems == sorted(systems, key=SYSTEMS.index)
    assert segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Uterus")) is not None


def test_a_whole_system_can_be_hidden_and_shown(mrml_scene):
    node = mrml_nodes.create_dap_segmentation(phantom("RAS").labels, scene=mrml_scene)
    groups = mrml_nodes.segment_ids_by_system(node)
    assert len(groups["ribs"]) == 26 and len(groups["vertebrae"]) == 24
    assert mrml_nodes.set_system_visibility(node, "ribs", False) == 26
    display = node.GetDisplayNode()
    assert not any(display.GetSegmentVisibility(s) for s in groups["ribs"])
    assert all(display.GetSegmentVisibility(s) for s in groups["vertebrae"])
    assert mrml_nodes.system_visibility(node)["ribs"] is False
    mrml_nodes.set_system_visibility(node, "ribs", True)
    assert mrml_nodes.system_visibility(node)["ribs"] is True
    with pytest.raises(KeyError, match="Unknown anatomical system"):
        mrml_nodes.set_system_visibility(node, "skeleton", False)


def test_model_output_as_label_map_tagged_or_plain_segmentation_gives_the_same_dap_labels(mrml_scene):
    import slicer

    p = phantom("LPS")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT", scene=mrml_scene)
    label_node = slicer_bridge.volume_to_node(p.labels, "labels", scene=mrml_scene, labelmap=True)
    assert np.array_equal(
        mrml_nodes.dap_labels_from_node(label_node, ct_node, scene=mrml_scene).array, p.labels.array
    )
    tagged = mrml_nodes.create_dap_segmentation(p.labels, scene=mrml_scene, reference_volume_node=ct_node)
    assert np.array_equal(
        mrml_nodes.dap_labels_from_node(tagged, ct_node, scene=mrml_scene).array, p.labels.array
    )
    plain = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
        label_node, plain
    )  # "Label_N" names
    assert np.array_equal(
        mrml_nodes.dap_labels_from_node(plain, ct_node, scene=mrml_scene).array, p.labels.array
    )


def test_segments_that_are_not_dap_structures_are_refused(mrml_scene):
    import slicer

    from DAPAtlasLib.exceptions import InvalidLabelValuesError

    p = phantom("RAS")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT", scene=mrml_scene)
    mask = p.labels.with_array((p.labels.array == 13).astype(np.uint8))
    mask_node = slicer_bridge.volume_to_node(mask, "mask", scene=mrml_scene, labelmap=True)
    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(mask_node, node)
    node.GetSegmentation().GetNthSegment(0).SetName("My tumour")
    with pytest.raises(InvalidLabelValuesError, match="not DAP Atlas structures"):
        mrml_nodes.dap_labels_from_node(node, ct_node, scene=mrml_scene)


def test_patient_sex_comes_from_the_dicom_patient_in_the_subject_hierarchy(mrml_scene):
    import slicer

    p = phantom("RAS")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT", scene=mrml_scene)
    assert mrml_nodes.patient_sex_of_node(ct_node, scene=mrml_scene) is None
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(mrml_scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "patient")
    hierarchy.SetItemAttribute(patient, "DICOM.PatientSex", "F")
    study = hierarchy.CreateStudyItem(patient, "study")
    hierarchy.CreateItem(study, ct_node)
    assert mrml_nodes.patient_sex_of_node(ct_node, scene=mrml_scene) == "F"


def test_statistics_table_and_volume_by_system_chart(mrml_scene):
    import slicer

    p = phantom("RAS")
    stats = structure_statistics(p.labels, p.ct)
    table = mrml_nodes.statistics_table_node(statistics_rows(stats), scene=mrml_scene)
    rows = slicer_bridge.table_node_to_rows(table)
    assert len(rows) == len(stats) and rows[0]["name"] == stats[0].name
    assert rows[0]["volume_ml"] == pytest.approx(stats[0].volume_ml, abs=1e-3)
    volumes = volumes_by_system(stats)
    chart, series, chart_table = mrml_nodes.volume_by_system_plot(volumes, scene=mrml_scene)
    assert chart.GetNumberOfPlotSeriesNodes() == 1 and chart.GetNthPlotSeriesNode(0) is series
    assert series.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeBar
    assert series.GetTableNode() is chart_table and chart_table.GetNumberOfRows() == len(volumes)
    assert slicer_bridge.table_node_to_rows(chart_table)[0]["system"] == "Musculature"


def test_colour_table_resource_loads_into_a_node(mrml_scene):
    node = mrml_nodes.load_color_table_node(scene=mrml_scene)
    assert node.GetNumberOfColors() == 145 and node.GetColorName(15) == "Kidney Left"
