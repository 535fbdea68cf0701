"""Each action of the CC-Metrics module, run twice, adds nothing the second time (slicer-core MRML).

Oracle: the scene's node counts per class, and the region overlay's segment names.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from AnatomyCommonLib import Volume
from AnatomyCommonLib import slicer_bridge as bridge
from CCMetricsLib.mrml_nodes import (
    add_regions,
    compute_region_map,
    evaluate_nodes,
    multirater_nodes,
    show_region_map,
)

pytestmark = pytest.mark.mrml


def node_counts(scene) -> Counter:
    return Counter(scene.GetNthNode(n).GetClassName() for n in range(scene.GetNumberOfNodes()))


@pytest.fixture
def nodes(mrml_scene):
    shape = (12, 20, 18)
    ct = Volume.from_geometry(np.zeros(shape, np.int16), (0.9, 1.1, 2.0), (3.0, -2.0, 10.0))
    reference = np.zeros(shape, np.uint8)
    reference[2:5, 3:7, 3:7] = 1
    reference[7:10, 12:16, 10:15] = 1
    prediction = reference.copy()
    prediction[7:10] = 0  # the second lesion is missed
    ct_node = bridge.volume_to_node(ct, "CT", scene=mrml_scene)
    reference_node = bridge.labelmap_to_segmentation_node(
        ct.with_array(reference),
        [bridge.LabelDescription(1, "lesions")],
        "Reference",
        scene=mrml_scene,
        reference_volume_node=ct_node,
    )
    prediction_node = bridge.labelmap_to_segmentation_node(
        ct.with_array(prediction),
        [bridge.LabelDescription(1, "lesions")],
        "Model",
        scene=mrml_scene,
        reference_volume_node=ct_node,
    )
    rater_b = bridge.volume_to_node(ct.with_array(reference), "Rater B", scene=mrml_scene, labelmap=True)
    return mrml_scene, reference_node, prediction_node, rater_b


def test_compute_twice_with_regions_adds_nothing_and_keeps_one_set_of_regions(nodes):
    scene, reference_node, prediction_node, _ = nodes
    counts = []
    for _ in range(3):
        evaluation = evaluate_nodes(reference_node, [prediction_node], metrics=["dice"], scene=scene)
        add_regions(evaluation, scene=scene)
        counts.append(node_counts(scene))
    assert counts[1] == counts[0] and counts[2] == counts[0]
    segmentation = evaluation.regions.GetSegmentation()
    names = [segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())]
    assert names == ["Region 1", "Region 2"]  # two reference lesions: two regions, once each


def test_regions_are_off_by_default_and_the_background_split_gives_the_same_overlay(nodes):
    scene, reference_node, prediction_node, _ = nodes
    evaluation = evaluate_nodes(reference_node, [prediction_node], metrics=["dice"], scene=scene)
    assert evaluation.regions is None
    assert node_counts(scene)["vtkMRMLSegmentationNode"] == 2  # only the inputs
    region_map, n = compute_region_map(evaluation)  # numpy only: this part runs off the main thread
    assert n == 2 and set(np.unique(region_map.array)) == {1, 2}
    overlay = show_region_map(evaluation, region_map, n, scene=scene)
    assert overlay.GetSegmentation().GetNumberOfSegments() == 2


def test_multirater_twice_adds_nothing(nodes):
    scene, reference_node, prediction_node, rater_b = nodes
    multirater_nodes([reference_node, rater_b], [prediction_node], scene=scene)
    before = node_counts(scene)
    multirater_nodes([reference_node, rater_b], [prediction_node], scene=scene)
    assert node_counts(scene) == before


def test_regions_computed_in_the_job_runner_then_shown_twice_keep_one_overlay(nodes):
    """The module's path: compute_region_map on the worker thread, show_region_map on this one."""
    from AnatomyCommonLib.background_jobs import SUCCEEDED, JobWorker

    scene, reference_node, prediction_node, _ = nodes
    worker = JobWorker("regions")
    try:
        counts = []
        for _ in range(2):
            evaluation = evaluate_nodes(reference_node, [prediction_node], metrics=["dice"], scene=scene)
            update = worker.submit(lambda job, e=evaluation: compute_region_map(e)).wait(timeout_s=120)
            assert update.state == SUCCEEDED
            overlay = show_region_map(evaluation, *update.result, scene=scene)
            counts.append(node_counts(scene))
    finally:
        worker.stop(timeout_s=30)
    assert counts[1] == counts[0]
    # each reference lesion lies inside the region with its own index (an independent check)
    labels, _ = bridge.segmentation_node_to_labelmap(overlay, evaluation.grid, scene=scene)
    reference = evaluation.reference.array.astype(bool)
    assert set(np.unique(labels.array[reference])) == {1, 2} and (labels.array > 0).all()
    first, second = labels.array[3, 5, 5], labels.array[8, 14, 12]  # centres of the two lesions
    assert {int(first), int(second)} == {1, 2}
