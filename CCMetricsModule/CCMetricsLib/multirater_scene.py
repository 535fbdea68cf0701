"""The multi-rater analysis on Slicer nodes (segmentations or label maps): masks on one grid,
:func:`~CCMetricsLib.multirater.multirater_agreement`, and its results as MRML nodes.

Nothing here imports slicer at import time; the MRML helpers are imported inside the function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import InvalidParameterError
from .multirater import MultiRaterResult, multirater_agreement


@dataclass
class NodeAgreement:
    """The analysis and the nodes showing it."""

    result: MultiRaterResult
    pair_table: Any
    model_table: Any
    consensus: Any  # label-map volume node of the STAPLE consensus


def _unique_names(nodes) -> list[str]:
    names: list[str] = []
    for node in nodes:
        base, name, counter = node.GetName(), node.GetName(), 2
        while name in names:
            name, counter = f"{base} {counter}", counter + 1
        names.append(name)
    return names


def multirater_nodes(
    rater_nodes: Sequence[Any],
    prediction_nodes: Sequence[Any] = (),
    repeat_nodes: Sequence[Any] = (),
    *,
    segment_name: str | None = None,
    label: int | None = None,
    grid_node=None,
    connectivity: int = 26,
    name: str = "Multi-rater",
    scene=None,
) -> NodeAgreement:
    """Agreement of ``rater_nodes`` (>= 2), ``repeat_nodes`` as further sessions of the first rater,
    ``prediction_nodes`` scored against the band; segmentations are read through the segment named
    ``segment_name`` or their only segment, label maps through ``label`` (None: any non-zero).
    Returns table nodes of the pairs and models and a label-map node of the STAPLE consensus."""
    from AnatomyCommonLib import slicer_bridge

    from .mrml_nodes import evaluation_grid, matching_segment_id, node_mask

    if len(rater_nodes) < 2:
        raise InvalidParameterError(f"Choose at least two raters, got {len(rater_nodes)}.")
    grid = evaluation_grid(rater_nodes[0], grid_node)

    def masks(nodes) -> dict[str, Any]:
        out = {}
        for node_name, node in zip(_unique_names(nodes), nodes, strict=True):
            segment = matching_segment_id(node, segment_name) if node.IsA("vtkMRMLSegmentationNode") else None
            out[node_name] = node_mask(node, grid, segment_id=segment, label=label, scene=scene)
        return out

    raters = masks(rater_nodes)
    repeats = {next(iter(raters)): list(masks(repeat_nodes).values())} if repeat_nodes else {}
    result = multirater_agreement(raters, repeats, masks(prediction_nodes), connectivity=connectivity)
    # one set of result nodes per first rater: computing again refills them
    key = f"{name}|{rater_nodes[0].GetID()}"

    def result_node(class_name: str, role: str):
        return slicer_bridge.result_node(class_name, f"{key}|{role}", f"{name} {role}", scene=scene)

    pair_table = slicer_bridge.rows_to_table_node(
        result.pair_rows(), f"{name} pairs", scene=scene, node=result_node("vtkMRMLTableNode", "pairs")
    )
    model_rows = result.model_rows() or [{"model": "(none)"}]
    model_table = slicer_bridge.rows_to_table_node(
        model_rows, f"{name} models", scene=scene, node=result_node("vtkMRMLTableNode", "models")
    )
    consensus = result.consensus.with_array(np.asarray(result.consensus.array, dtype=np.uint8))
    consensus_node = slicer_bridge.volume_to_node(
        consensus,
        f"{name} STAPLE consensus",
        scene=scene,
        labelmap=True,
        node=result_node("vtkMRMLLabelMapVolumeNode", "STAPLE consensus"),
    )
    return NodeAgreement(result, pair_table, model_table, consensus_node)
