"""Each action of the DAP Atlas module, run twice, adds nothing the second time (slicer-core MRML).

Oracle: the scene's node counts per class.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib import slicer_bridge
from DAPAtlasLib import mrml_nodes

pytestmark = pytest.mark.mrml


def node_counts(scene) -> Counter:
    return Counter(scene.GetNthNode(n).GetClassName() for n in range(scene.GetNumberOfNodes()))


def test_apply_and_statistics_twice_add_nothing_new(mrml_scene):
    p = phantom("RAS")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT", scene=mrml_scene)
    model_output = mrml_nodes.create_dap_segmentation(p.labels, "model output", scene=mrml_scene)
    counts = []
    for _ in range(2):
        # the steps of Apply: read the model output, import the result, statistics of the result
        labels = mrml_nodes.dap_labels_from_node(model_output, ct_node, scene=mrml_scene)
        key = f"post-processed|{model_output.GetID()}"
        result = mrml_nodes.create_dap_segmentation(
            labels, "post-processed", scene=mrml_scene, reference_volume_node=ct_node, key=key
        )
        table, chart = mrml_nodes.statistics_nodes(labels, p.ct, "post-processed", key=key, scene=mrml_scene)
        counts.append(node_counts(mrml_scene))
    assert counts[1] == counts[0]
    n_labels = len(np.unique(p.labels.array)) - 1
    assert result.GetSegmentation().GetNumberOfSegments() == n_labels  # replaced, not doubled
    assert table.GetNumberOfRows() == n_labels and chart.GetNumberOfPlotSeriesNodes() == 1
    assert counts[0]["vtkMRMLSegmentationNode"] == 2 and counts[0]["vtkMRMLPlotChartNode"] == 1
