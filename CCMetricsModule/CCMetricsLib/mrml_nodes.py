"""What the CC-Metrics Slicer module does, without its GUI: MRML nodes in, CC-Metrics tables and the
Voronoi region overlay out.

Every MRML <-> numpy conversion goes through :mod:`AnatomyCommonLib.slicer_bridge`; the metrics
come from :func:`CCMetricsLib.compare`. ``slicer`` is imported only inside the functions (through
the bridge), so this module imports in plain Python and is tested with the PyPI ``slicer-core``.
Input nodes are never modified: results go to new table and segmentation nodes (or nodes passed in
to be refilled).
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluation import METRICS, ComparisonResult, compare, flat_row
from .exceptions import GeometryMismatchError, InvalidParameterError
from .multirater import MultiRaterResult, multirater_agreement
from .voronoi import voronoi_regions

#: Columns of the per-component table shown in the module, in order (metric columns follow).
COMPONENT_COLUMNS = (
    "prediction",
    "component_id",
    "volume_ml",
    "detected",
    "n_pred_components",
    "centroid_r",
    "centroid_a",
    "centroid_s",
)


@dataclass
class NodeEvaluation:
    """Result of :func:`evaluate_nodes`: the metrics and the nodes that show them."""

    comparison: ComparisonResult
    grid: Any  # AnatomyCommonLib Volume: the grid everything was evaluated on
    component_table: Any  # vtkMRMLTableNode, one row per (prediction, reference component)
    summary_table: Any  # vtkMRMLTableNode, one row per prediction: standard vs CC metrics
    regions: Any | None  # vtkMRMLSegmentationNode with one segment per Voronoi region
    reference: Any = None  # AnatomyCommonLib Volume: the binary reference mask that was evaluated
    connectivity: int = 26
    key: str | None = None  # result key of the nodes (one set of result nodes per reference node)


def _is_segmentation(node) -> bool:
    return node is not None and node.IsA("vtkMRMLSegmentationNode")


def _segment_ids(segmentation_node) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]


def matching_segment_id(segmentation_node, name: str | None) -> str:
    """The segment named ``name``; otherwise the only segment; otherwise a clear KeyError."""
    ids = _segment_ids(segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    names = {segment_id: segmentation.GetSegment(segment_id).GetName() for segment_id in ids}
    same = [segment_id for segment_id, segment_name in names.items() if segment_name == name]
    if same:
        return same[0]
    if len(ids) == 1:
        return ids[0]
    raise KeyError(
        f"{segmentation_node.GetName()} has no segment named {name!r} and several segments "
        f"({', '.join(names.values())}); rename the one to evaluate to {name!r}."
    )


def evaluation_grid(reference_node, grid_node=None):
    """The voxel grid (all-zero Volume) to evaluate on: the chosen volume, else the reference's own."""
    from AnatomyCommonLib import slicer_bridge

    if grid_node is not None:
        return slicer_bridge.volume_snapshot(grid_node).grid()
    if _is_segmentation(reference_node):
        return slicer_bridge.segmentation_reference_grid(reference_node)
    return slicer_bridge.volume_snapshot(reference_node).grid()


def node_mask(node, grid, *, segment_id: str | None = None, label: int | None = None, scene=None):
    """A binary uint8 mask Volume on ``grid`` from a segment or a label-map volume node.

    Label maps must already lie on the grid (GeometryMismatchError otherwise); ``label`` selects
    one value (None: every non-zero voxel). Empty masks are allowed (an empty prediction misses
    every component). (:func:`node_mask_reader`, then calling it.)
    """
    return node_mask_reader(node, grid, segment_id=segment_id, label=label, scene=scene)()


def node_mask_reader(node, grid, *, segment_id: str | None = None, label: int | None = None, scene=None):
    """Main thread: check and plan :func:`node_mask`; returns a function making the mask (any thread)."""
    from AnatomyCommonLib import slicer_bridge

    if _is_segmentation(node):
        if segment_id is None:
            raise InvalidParameterError(f"Choose which segment of {node.GetName()} to evaluate.")
        reader = slicer_bridge.segmentation_labelmap_reader(node, grid, segment_ids=[segment_id], scene=scene)

        def segment_mask():
            labels, _ = reader.read()
            return labels.with_array((labels.array > 0).astype(np.uint8))

        return segment_mask
    snapshot = slicer_bridge.volume_snapshot(node)
    snapshot.grid().require_same_grid(grid, (node.GetName(), "the evaluation grid"))

    def label_mask():
        volume = snapshot.to_volume()
        mask = volume.array == label if label is not None else volume.array != 0
        return volume.with_array(mask.astype(np.uint8))

    return label_mask


def region_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` well separated colours (golden-ratio hue steps), one per region."""
    return [colorsys.hsv_to_rgb((0.13 + 0.618034 * k) % 1.0, 0.75, 0.95) for k in range(n)]


def component_table_rows(comparison: ComparisonResult) -> list[dict[str, Any]]:
    """Rows of the per-component table: identity, position (RAS mm), detection, metrics."""
    rows = []
    for result in comparison:
        for row in result.component_rows():
            flat = flat_row(row)
            ordered = {key: flat[key] for key in COMPONENT_COLUMNS if key in flat}
            ordered["detected"] = int(bool(ordered.get("detected")))
            ordered.update({metric: flat[metric] for metric in result.metrics})
            rows.append(ordered)
    return rows


def region_descriptions(n: int):
    """Name ("Region k") and colour of each of ``n`` Voronoi regions (label value k)."""
    from AnatomyCommonLib import slicer_bridge

    return [
        slicer_bridge.LabelDescription(k, f"Region {k}", color)
        for k, color in enumerate(region_colors(n), start=1)
    ]


def regions_segmentation(regions, n: int, name: str, *, scene=None, node=None, reference_volume_node=None):
    """A segmentation node with one coloured segment per Voronoi region, shown as outlines."""
    from AnatomyCommonLib import slicer_bridge

    node = slicer_bridge.labelmap_to_segmentation_node(
        regions,
        region_descriptions(n),
        name,
        scene=scene,
        segmentation_node=node,
        reference_volume_node=reference_volume_node,
        replace_segments=True,  # a refreshed overlay replaces the old regions, never adds to them
    )
    show_regions(node, visible=True, outline=True)
    return node


def show_regions(regions_node, *, visible: bool = True, outline: bool = True) -> None:
    """Show or hide the region overlay; ``outline`` draws region borders only, else filled regions."""
    display = regions_node.GetDisplayNode()
    if display is None:
        regions_node.CreateDefaultDisplayNodes()
        display = regions_node.GetDisplayNode()
    display.SetVisibility(bool(visible))
    display.SetVisibility2DOutline(True)
    display.SetVisibility2DFill(not outline)
    display.SetOpacity2DFill(0.35)
    display.SetVisibility3D(False)


@dataclass
class EvaluationInputs:
    """What the main thread reads from the nodes before a Compute (numpy only)."""

    grid: Any  # AnatomyCommonLib Volume: the evaluation grid (all zero)
    reference: Any  # function making the binary reference mask Volume (call it off the main thread)
    predictions: dict  # prediction name -> function making its binary mask Volume
    key: str  # result key of the nodes (one set of result nodes per reference node)
    name: str = "CC-Metrics"


@dataclass
class ComputedEvaluation:
    """What the job runner computed for a Compute: the metrics and the rows of both tables."""

    inputs: EvaluationInputs
    comparison: ComparisonResult
    component_rows: list
    summary_rows: list
    connectivity: int = 26
    reference: Any = None  # the binary reference mask Volume that was evaluated
    regions: Any = None  # PreparedSegments of the Voronoi regions (with_regions), else None
    n_regions: int = 0


def read_evaluation_inputs(
    reference_node,
    prediction_nodes: Sequence[Any],
    *,
    reference_segment_id: str | None = None,
    label: int | None = None,
    grid_node=None,
    name: str = "CC-Metrics",
    scene=None,
) -> EvaluationInputs:
    """Main thread: the evaluation grid and how to read the masks of the reference and each prediction.

    Errors in the choice of nodes (no segment of that name, another grid) are raised here; the
    voxels are read by :func:`compute_evaluation`. A prediction segmentation is read through its
    segment with the reference segment's name, or its only segment.
    """
    if reference_node is None:
        raise InvalidParameterError("Choose a reference segmentation or label map.")
    if not prediction_nodes:
        raise InvalidParameterError("Choose at least one prediction.")
    grid = evaluation_grid(reference_node, grid_node)
    reference_name = None
    if _is_segmentation(reference_node):
        reference_segment_id = reference_segment_id or matching_segment_id(reference_node, None)
        reference_name = reference_node.GetSegmentation().GetSegment(reference_segment_id).GetName()
    reference = node_mask_reader(
        reference_node, grid, segment_id=reference_segment_id, label=label, scene=scene
    )
    predictions = {}
    for node in prediction_nodes:
        if node is reference_node and reference_segment_id is not None:
            raise InvalidParameterError(f"{node.GetName()} is the reference; choose another prediction.")
        segment = matching_segment_id(node, reference_name) if _is_segmentation(node) else None
        try:
            predictions[node.GetName()] = node_mask_reader(
                node, grid, segment_id=segment, label=label, scene=scene
            )
        except GeometryMismatchError as error:
            raise GeometryMismatchError(f"{error} (prediction {node.GetName()})") from None
    return EvaluationInputs(grid, reference, predictions, result_key(name, reference_node), name)


def compute_evaluation(
    inputs: EvaluationInputs,
    *,
    metrics: Iterable[str] = METRICS,
    nsd_tolerance: float = 1.0,
    distance_worst: float | None = None,
    connectivity: int = 26,
    with_regions: bool = False,
    job=None,
) -> ComputedEvaluation:
    """The job-runner half of a Compute: metrics, table rows and (``with_regions``) the region segments.

    No MRML: runs on any thread. ``job`` (a ThreadJob) gets progress per prediction; Cancel is
    honoured before each prediction and before the regions (CancelledError).
    """
    from AnatomyCommonLib.errors import CancelledError

    def progress(index: int, total: int, prediction: str) -> None:
        if job is None:
            return
        if job.should_cancel():
            raise CancelledError("CC-Metrics cancelled; the tables were not changed.")
        share = 0.6 if with_regions else 0.9
        job.report_progress(share * index / max(total, 1), f"prediction {index + 1}/{total}: {prediction}")

    if job is not None:
        job.report_progress(0.0, "reading the masks")
    reference = inputs.reference()
    predictions = {name: read() for name, read in inputs.predictions.items()}
    comparison = compare(
        reference,
        predictions,
        metrics=metrics,
        nsd_tolerance=nsd_tolerance,
        distance_worst=distance_worst,
        connectivity=connectivity,
        progress=progress,
    )
    computed = ComputedEvaluation(
        inputs,
        comparison,
        component_table_rows(comparison),
        comparison.summary_rows(),
        connectivity,
        reference,
    )
    if with_regions:
        if job is not None:
            if job.should_cancel():
                raise CancelledError("CC-Metrics cancelled; the tables were not changed.")
            job.report_progress(0.6, "Voronoi regions")
        computed.regions, computed.n_regions = prepare_regions(reference, connectivity)
    if job is not None:
        job.report_progress(1.0, "done")
    return computed


def show_evaluation(
    computed: ComputedEvaluation,
    *,
    scene=None,
    component_table=None,
    summary_table=None,
    regions_node=None,
) -> NodeEvaluation:
    """Main thread: computed rows into the table nodes (and prepared regions into the overlay).

    Tables are refilled when nodes are passed, else the nodes of an earlier evaluation of the same
    reference node are reused, else new nodes are added.
    """
    from AnatomyCommonLib import slicer_bridge

    key, name = computed.inputs.key, computed.inputs.name
    component_table = component_table or slicer_bridge.result_node(
        "vtkMRMLTableNode", f"{key}|components", f"{name} components", scene=scene
    )
    summary_table = summary_table or slicer_bridge.result_node(
        "vtkMRMLTableNode", f"{key}|summary", f"{name} summary", scene=scene
    )
    component_table = slicer_bridge.rows_to_table_node(
        computed.component_rows, f"{name} components", scene=scene, node=component_table
    )
    summary_table = slicer_bridge.rows_to_table_node(
        computed.summary_rows, f"{name} summary", scene=scene, node=summary_table
    )
    evaluation = NodeEvaluation(
        computed.comparison,
        computed.inputs.grid,
        component_table,
        summary_table,
        None,
        computed.reference,
        computed.connectivity,
    )
    evaluation.key = key
    if computed.regions is not None:
        show_prepared_regions(
            evaluation,
            computed.regions,
            computed.n_regions,
            name=f"{name} regions",
            scene=scene,
            node=regions_node,
        )
    return evaluation


def evaluate_nodes(
    reference_node,
    prediction_nodes: Sequence[Any],
    *,
    reference_segment_id: str | None = None,
    label: int | None = None,
    grid_node=None,
    metrics: Iterable[str] = METRICS,
    nsd_tolerance: float = 1.0,
    distance_worst: float | None = None,
    connectivity: int = 26,
    with_regions: bool = False,
    name: str = "CC-Metrics",
    scene=None,
    component_table=None,
    summary_table=None,
    regions_node=None,
) -> NodeEvaluation:
    """Evaluate predictions (segmentation or label-map nodes) against a reference segment or label map.

    :func:`read_evaluation_inputs`, :func:`compute_evaluation` and :func:`show_evaluation` on the
    calling thread (the module runs the middle one in its job runner). The region overlay
    (``with_regions``) is off by default: the full region map is a whole-grid computation.
    """
    inputs = read_evaluation_inputs(
        reference_node,
        prediction_nodes,
        reference_segment_id=reference_segment_id,
        label=label,
        grid_node=grid_node,
        name=name,
        scene=scene,
    )
    computed = compute_evaluation(
        inputs,
        metrics=metrics,
        nsd_tolerance=nsd_tolerance,
        distance_worst=distance_worst,
        connectivity=connectivity,
        with_regions=with_regions,
    )
    return show_evaluation(
        computed,
        scene=scene,
        component_table=component_table,
        summary_table=summary_table,
        regions_node=regions_node,
    )


def result_key(name: str, reference_node) -> str:
    """Key of the result nodes of evaluations against ``reference_node`` (``slicer_bridge.result_node``)."""
    return f"{name}|{reference_node.GetID()}"


def compute_region_map(evaluation: NodeEvaluation):
    """The Voronoi region map of an evaluation's reference: (uint8/uint16 Volume, n regions).

    Pure numpy (no MRML): the module runs it in the background job runner. On a whole-body CT grid
    this takes tens of seconds, see :func:`~CCMetricsLib.voronoi.voronoi_regions`.
    """
    return _region_map(evaluation.reference, evaluation.connectivity)


def _region_map(reference, connectivity: int):
    region_map, n = voronoi_regions(
        reference.array, reference.spacing_kji_mm, connectivity, spacing_order="kji"
    )
    dtype = np.uint8 if n < 256 else np.uint16
    return reference.with_array(region_map.astype(dtype)), n


def prepare_regions(reference, connectivity: int = 26):
    """Job runner: the Voronoi regions of a reference mask as segments to attach: (PreparedSegments, n)."""
    from AnatomyCommonLib import slicer_bridge

    region_map, n = _region_map(reference, connectivity)
    return slicer_bridge.prepare_segments(region_map, region_descriptions(n)), n


def show_prepared_regions(
    evaluation: NodeEvaluation, prepared, n: int, *, name: str = "CC-Metrics regions", scene=None, node=None
):
    """Main thread: prepared region segments into the evaluation's overlay node (its old regions replaced)."""
    from AnatomyCommonLib import slicer_bridge

    if not n:
        return evaluation.regions
    if node is None and evaluation.key is not None:
        node = slicer_bridge.result_node(
            "vtkMRMLSegmentationNode", f"{evaluation.key}|regions", name, scene=scene
        )
    evaluation.regions = slicer_bridge.attach_prepared_segments(
        prepared, name, scene=scene, segmentation_node=node, replace_segments=True
    )
    show_regions(evaluation.regions, visible=True, outline=True)
    return evaluation.regions


def show_region_map(
    evaluation: NodeEvaluation, region_map, n: int, *, name: str = "CC-Metrics regions", scene=None, node=None
):
    """Put a region map from :func:`compute_region_map` into the evaluation's overlay node.

    The overlay of the same reference is refilled (its old regions replaced), never duplicated.
    """
    from AnatomyCommonLib import slicer_bridge

    if not n:
        return evaluation.regions
    prepared = slicer_bridge.prepare_segments(region_map, region_descriptions(n))
    return show_prepared_regions(evaluation, prepared, n, name=name, scene=scene, node=node)


def add_regions(evaluation: NodeEvaluation, *, name: str = "CC-Metrics regions", scene=None, node=None):
    """Build the Voronoi region overlay of an evaluation on the calling thread
    (:func:`prepare_regions` then :func:`show_prepared_regions`)."""
    prepared, n = prepare_regions(evaluation.reference, evaluation.connectivity)
    return show_prepared_regions(evaluation, prepared, n, name=name, scene=scene, node=node)


def table_row_position_ras(table_node, row: int) -> tuple[float, float, float] | None:
    """RAS centroid (mm) stored in a per-component table row, for centring the slice views."""
    from AnatomyCommonLib import slicer_bridge

    rows = slicer_bridge.table_node_to_rows(table_node)
    if not 0 <= row < len(rows) or "centroid_r" not in rows[row]:
        return None
    values = rows[row]
    return (float(values["centroid_r"]), float(values["centroid_a"]), float(values["centroid_s"]))


# ---------------------------------------------------------------- multi-rater analysis on nodes
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


@dataclass
class AgreementInputs:
    """What the main thread reads from the nodes before a Compute agreement (no voxel copied)."""

    grid: Any  # AnatomyCommonLib Volume: the grid every mask is read on (all zero)
    raters: dict  # rater name -> function making its binary mask Volume (call it off the main thread)
    repeats: list  # functions making the further sessions of the first rater
    predictions: dict  # model name -> function making its binary mask Volume
    key: str  # result key of the nodes (one set of result nodes per first rater)
    name: str = "Multi-rater"
    connectivity: int = 26


@dataclass
class ComputedAgreement:
    """What the job runner computed for a Compute agreement: the analysis, table rows, consensus image."""

    inputs: AgreementInputs
    result: MultiRaterResult
    pair_rows: list
    model_rows: list
    consensus: Any  # slicer_bridge.PreparedVolume of the STAPLE consensus (uint8, on the grid)


def read_agreement_inputs(
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
) -> AgreementInputs:
    """Main thread: the grid and how to read every rater, repeat session and prediction mask.

    Errors in the choice of nodes (fewer than two raters, no segment of that name, another grid)
    are raised here; the voxels are read by :func:`compute_agreement`.
    """
    if len(rater_nodes) < 2:
        raise InvalidParameterError(f"Choose at least two raters, got {len(rater_nodes)}.")
    grid = evaluation_grid(rater_nodes[0], grid_node)

    def readers(nodes, role: str) -> dict[str, Any]:
        out = {}
        for node_name, node in zip(_unique_names(nodes), nodes, strict=True):
            segment = matching_segment_id(node, segment_name) if _is_segmentation(node) else None
            try:
                out[node_name] = node_mask_reader(node, grid, segment_id=segment, label=label, scene=scene)
            except GeometryMismatchError as error:
                raise GeometryMismatchError(f"{error} ({role} {node.GetName()})") from None
        return out

    return AgreementInputs(
        grid,
        readers(rater_nodes, "rater"),
        list(readers(repeat_nodes, "repeat session").values()),
        readers(prediction_nodes, "prediction"),
        # one set of result nodes per first rater: computing again refills them
        f"{name}|{rater_nodes[0].GetID()}",
        name,
        connectivity,
    )


def compute_agreement(inputs: AgreementInputs, *, job=None) -> ComputedAgreement:
    """The job-runner half of a Compute agreement: masks, :func:`multirater_agreement`, table rows and
    the consensus image. No scene: runs on any thread. ``job`` (a ThreadJob) gets progress per
    pair, the STAPLE consensus and each model; Cancel is honoured before each (CancelledError)."""
    from AnatomyCommonLib import slicer_bridge
    from AnatomyCommonLib.errors import CancelledError

    def check_cancel() -> None:
        if job is not None and job.should_cancel():
            raise CancelledError("Agreement cancelled; the tables were not changed.")

    readers = [*inputs.raters.values(), *inputs.repeats, *inputs.predictions.values()]
    masks = []
    for index, read in enumerate(readers):
        check_cancel()
        if job is not None:
            job.report_progress(0.1 * index / len(readers), f"reading mask {index + 1}/{len(readers)}")
        masks.append(read())
    n_raters, n_repeats = len(inputs.raters), len(inputs.repeats)
    raters = dict(zip(inputs.raters, masks[:n_raters], strict=True))
    repeat_masks = masks[n_raters : n_raters + n_repeats]
    predictions = dict(zip(inputs.predictions, masks[n_raters + n_repeats :], strict=True))
    repeats = {next(iter(raters)): repeat_masks} if repeat_masks else {}

    def progress(index: int, total: int, step: str) -> None:
        check_cancel()
        if job is not None:
            job.report_progress(0.1 + 0.85 * index / max(total, 1), f"{index + 1}/{total}: {step}")

    result = multirater_agreement(
        raters, repeats, predictions, connectivity=inputs.connectivity, progress=progress
    )
    check_cancel()
    if job is not None:
        job.report_progress(0.95, "consensus label map")
    consensus = slicer_bridge.prepare_volume(
        result.consensus.with_array(np.asarray(result.consensus.array, dtype=np.uint8))
    )
    if job is not None:
        job.report_progress(1.0, "done")
    model_rows = result.model_rows() or [{"model": "(none)"}]
    return ComputedAgreement(inputs, result, result.pair_rows(), model_rows, consensus)


def show_agreement(computed: ComputedAgreement, *, scene=None) -> NodeAgreement:
    """Main thread: the computed rows into the pair and model tables and the prepared consensus image
    into the STAPLE label-map node (those of an earlier run with the same first rater are refilled)."""
    from AnatomyCommonLib import slicer_bridge

    key, name = computed.inputs.key, computed.inputs.name

    def result_node(class_name: str, role: str):
        return slicer_bridge.result_node(class_name, f"{key}|{role}", f"{name} {role}", scene=scene)

    pair_table = slicer_bridge.rows_to_table_node(
        computed.pair_rows, f"{name} pairs", scene=scene, node=result_node("vtkMRMLTableNode", "pairs")
    )
    model_table = slicer_bridge.rows_to_table_node(
        computed.model_rows, f"{name} models", scene=scene, node=result_node("vtkMRMLTableNode", "models")
    )
    consensus_node = slicer_bridge.attach_prepared_volume(
        computed.consensus,
        f"{name} STAPLE consensus",
        scene=scene,
        labelmap=True,
        node=result_node("vtkMRMLLabelMapVolumeNode", "STAPLE consensus"),
    )
    return NodeAgreement(computed.result, pair_table, model_table, consensus_node)


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
    Returns table nodes of the pairs and models and a label-map node of the STAPLE consensus.

    :func:`read_agreement_inputs`, :func:`compute_agreement` and :func:`show_agreement` on the
    calling thread (the module runs the middle one in its job runner)."""
    inputs = read_agreement_inputs(
        rater_nodes,
        prediction_nodes,
        repeat_nodes,
        segment_name=segment_name,
        label=label,
        grid_node=grid_node,
        connectivity=connectivity,
        name=name,
        scene=scene,
    )
    return show_agreement(compute_agreement(inputs), scene=scene)
