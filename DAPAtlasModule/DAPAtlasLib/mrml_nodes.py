"""DAP Atlas results as MRML nodes: segmentation grouped by anatomical system, table, plot.

What the Slicer module shows, built here so that it is testable outside the application with
the PyPI ``slicer-core`` package:

* :func:`create_dap_segmentation` - a segmentation node from a DAP label map with the DAP names,
  colours and SNOMED terminology tags; segments are ordered by anatomical system and carry the
  system in the :data:`SYSTEM_TAG` tag.
* :func:`segment_ids_by_system`, :func:`set_system_visibility` - show or hide a whole system.
* :func:`statistics_table_node`, :func:`volume_by_system_plot` - the statistics table and a bar
  chart of volumes per system (plot series + chart nodes).
* :func:`load_color_table_node`, :func:`load_terminology` - the generated resource files.

``slicer`` and ``vtk`` are imported inside the functions only; ``scene`` defaults to
``slicer.mrmlScene``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.anatomy.label_schema import SYSTEM_TITLES, SYSTEMS, label_by_id, segment_descriptions
from AnatomyCommonLib.volume import Volume

#: Segment tag holding the anatomical system (a key of :data:`~.label_schema.SYSTEMS`).
SYSTEM_TAG = "DAPAtlas.System"


def _segment_tag(segment, tag: str) -> str | None:
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(tag, value) else None


def create_dap_segmentation(
    labels: Volume,
    name: str = "DAP Atlas",
    *,
    scene=None,
    reference_volume_node=None,
    segmentation_node=None,
    key: str | None = None,
):
    """A segmentation node of a DAP label map: DAP names, colours, terminology, system tags.

    Segments are ordered by anatomical system (the order of :data:`SYSTEMS`), then by label id,
    so the segment list reads as groups. With ``key`` (e.g. ``"post-processed|<input node id>"``)
    the segmentation of the same key is refilled (its old segments replaced) instead of adding one.
    This is :func:`prepare_dap_segments` (the module runs it in its job runner) then
    :func:`attach_dap_segments` (main thread) on the calling thread.
    """
    return attach_dap_segments(
        prepare_dap_segments(labels),
        name,
        scene=scene,
        reference_volume_node=reference_volume_node,
        segmentation_node=segmentation_node,
        key=key,
    )


def _system_of(value: int) -> str:
    try:
        return label_by_id(int(value)).system
    except KeyError:
        return "background"


def prepare_dap_segments(labels: Volume) -> slicer_bridge.PreparedSegments:
    """The DAP segments of a label map, built without a scene (any thread): names, colours,
    terminology, the system tag, in system order. Attach them with :func:`attach_dap_segments`."""
    return slicer_bridge.prepare_segments(
        labels,
        segment_descriptions(),
        order=lambda value: (SYSTEMS.index(_system_of(value)), value),
        tags=lambda value: {SYSTEM_TAG: _system_of(value)},
    )


def attach_dap_segments(
    prepared: slicer_bridge.PreparedSegments,
    name: str = "DAP Atlas",
    *,
    scene=None,
    reference_volume_node=None,
    segmentation_node=None,
    key: str | None = None,
):
    """Main thread: prepared DAP segments into a segmentation node (the node of ``key`` is refilled)."""
    scene = slicer_bridge.mrml_scene(scene)
    if segmentation_node is None and key is not None:
        segmentation_node = slicer_bridge.result_node("vtkMRMLSegmentationNode", key, name, scene=scene)
        if segmentation_node.GetDisplayNode() is None:
            segmentation_node.CreateDefaultDisplayNodes()
    return slicer_bridge.attach_prepared_segments(
        prepared,
        name,
        scene=scene,
        reference_volume_node=reference_volume_node,
        segmentation_node=segmentation_node,
        replace_segments=key is not None,
    )


def segment_ids_by_system(segmentation_node) -> dict[str, list[str]]:
    """System -> segment ids (systems in :data:`SYSTEMS` order; untagged segments under "other")."""
    segmentation = segmentation_node.GetSegmentation()
    groups: dict[str, list[str]] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        system = _segment_tag(segmentation.GetSegment(segment_id), SYSTEM_TAG) or "other"
        groups.setdefault(system, []).append(segment_id)
    order = {system: n for n, system in enumerate(SYSTEMS)}
    return dict(sorted(groups.items(), key=lambda item: order.get(item[0], len(order))))


def set_system_visibility(segmentation_node, system: str, visible: bool) -> int:
    """Show or hide every segment of one system; returns how many segments it affected."""
    if system not in SYSTEMS and system != "other":
        raise KeyError(f"Unknown anatomical system {system!r}; use one of {', '.join(SYSTEMS[1:])}.")
    display = segmentation_node.GetDisplayNode()
    if display is None:
        segmentation_node.CreateDefaultDisplayNodes()
        display = segmentation_node.GetDisplayNode()
    ids = segment_ids_by_system(segmentation_node).get(system, [])
    for segment_id in ids:
        display.SetSegmentVisibility(segment_id, bool(visible))
    return len(ids)


def system_visibility(segmentation_node) -> dict[str, bool]:
    """System -> True when at least one of its segments is visible."""
    display = segmentation_node.GetDisplayNode()
    return {
        system: any(display.GetSegmentVisibility(s) for s in ids) if display else True
        for system, ids in segment_ids_by_system(segmentation_node).items()
    }


def statistics_table_node(
    rows: Sequence[dict], name: str = "DAP Atlas statistics", *, scene=None, node=None, key: str | None = None
):
    """A table node with one row per structure (rows from :func:`~.statistics.statistics_rows`).

    With ``key`` the table of the same key is refilled instead of adding one.
    """
    scene = slicer_bridge.mrml_scene(scene)
    if node is None and key is not None:
        node = slicer_bridge.result_node("vtkMRMLTableNode", f"{key}|table", name, scene=scene)
    return slicer_bridge.rows_to_table_node(rows, name, scene=scene, node=node)


def volume_by_system_plot(
    volumes_ml: dict[str, float],
    name: str = "DAP Atlas volume by system",
    *,
    scene=None,
    key: str | None = None,
):
    """A bar chart of volume per anatomical system: (chart node, series node, table node).

    With ``key`` the chart, series and table of the same key are refilled instead of adding new ones.
    """
    import slicer

    scene = slicer_bridge.mrml_scene(scene)
    rows = [
        {"system": SYSTEM_TITLES.get(s, s), "index": n, "volume_ml": v}
        for n, (s, v) in enumerate(volumes_ml.items())
    ]

    def node(class_name: str, role: str, node_name: str):
        if key is None:
            return scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(node_name))
        return slicer_bridge.result_node(class_name, f"{key}|{role}", node_name, scene=scene)

    table = slicer_bridge.rows_to_table_node(
        rows, f"{name} table", scene=scene, node=node("vtkMRMLTableNode", "plot table", f"{name} table")
    )
    series = node("vtkMRMLPlotSeriesNode", "plot series", f"{name} series")
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName("index")
    series.SetYColumnName("volume_ml")
    series.SetLabelColumnName("system")
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeBar)
    series.SetColor(0.35, 0.55, 0.8)
    chart = node("vtkMRMLPlotChartNode", "plot chart", name)
    if not chart.HasPlotSeriesNodeID(series.GetID()):
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle("Volume by anatomical system")
    chart.SetXAxisTitle("anatomical system")
    chart.SetYAxisTitle("volume (ml)")
    chart.SetLegendVisibility(False)
    return chart, series, table


def statistics_nodes(labels: Volume, ct: Volume, name: str, *, key: str, scene=None):
    """Statistics table and volume-by-system chart of a DAP label map: (table node, chart node).

    ``key`` names the input (e.g. the segmentation node's ID): showing the statistics of the same
    input again refills the same nodes.
    """
    from .statistics import structure_statistics

    return statistics_result_nodes(structure_statistics(labels, ct), name, key=key, scene=scene)


def statistics_result_nodes(stats, name: str, *, key: str, scene=None):
    """Table and chart nodes of already computed structure statistics (main-thread, MRML only)."""
    from .statistics import statistics_rows, volumes_by_system

    table = statistics_table_node(statistics_rows(stats), f"{name} statistics", scene=scene, key=key)
    chart, _, _ = volume_by_system_plot(
        volumes_by_system(stats), f"{name} volume by system", scene=scene, key=key
    )
    return table, chart


@dataclass(frozen=True)
class ApplyComputation:
    """What the background half of the module's Apply computed (numpy and unattached VTK objects)."""

    result: Any  # PostprocessResult: the repaired labels and the report
    statistics: list  # StructureStatistics of the repaired labels
    segments: slicer_bridge.PreparedSegments | None = None  # the repaired labels as DAP segments
    input_warnings: tuple = ()  # what the CT check reported (forced runs)


def _check_cancel(job, message: str) -> None:
    from AnatomyCommonLib.errors import CancelledError

    if job is not None and job.should_cancel():
        raise CancelledError(message)


def apply_in_background(
    labels: Volume,
    ct: Volume,
    *,
    sex: str,
    steps,
    metadata,
    job,
    check_ct: dict | None = None,
    force: bool = False,
) -> ApplyComputation:
    """The part of Apply that runs in the job runner: the rules, the statistics, the segments.

    ``job`` is the :class:`~AnatomyCommonLib.background_jobs.ThreadJob` (progress per rule; Cancel is
    honoured between rules and before the statistics by raising CancelledError). ``check_ct``
    (``{"name": ..., "force": ...}``) first checks that the CT looks like a CT in HU
    (:func:`~.input_checks.check_ct`, ImplausibleCTError). Only the MRML reads before and the
    attaching after (:func:`attach_dap_segments`, :func:`statistics_result_nodes`) stay on the
    main thread. ``force``: the user accepted a CT that does not look like one.
    """
    from .input_checks import check_ct as check_ct_values
    from .postprocess import postprocess
    from .statistics import structure_statistics

    cancelled = "Post-processing cancelled; nothing was added to the scene."

    def progress(step: str, index: int, total: int) -> None:
        _check_cancel(job, cancelled)
        job.report_progress(0.85 * index / max(total, 1), f"rule {index + 1}/{total}: {step}")

    warnings = check_ct_values(ct, name=check_ct["name"], force=check_ct["force"]) if check_ct else []
    result = postprocess(
        labels, ct=ct, sex=sex, steps=steps, metadata=metadata, progress=progress, force=force
    )
    _check_cancel(job, cancelled)
    job.report_progress(0.85, "statistics")
    statistics = structure_statistics(result.labels, ct)
    _check_cancel(job, cancelled)
    job.report_progress(0.93, "segments")
    segments = prepare_dap_segments(result.labels)
    job.report_progress(1.0, "done")
    return ApplyComputation(result, statistics, segments, tuple(warnings))


def statistics_in_background(labels: Volume, ct: Volume, *, job=None) -> list:
    """The statistics of *Show statistics*, for the job runner (the nodes are made on the main thread)."""
    from .statistics import structure_statistics

    if job is not None:
        job.report_progress(0.0, "statistics")
    statistics = structure_statistics(labels, ct)
    if job is not None:
        job.report_progress(1.0, "done")
    return statistics


def model_output_in_background(labels_path, *, job=None) -> slicer_bridge.PreparedSegments:
    """The end of *Segment*, for the job runner: read the model's label map file, build its segments."""
    from AnatomyCommonLib.image_io import read_labelmap

    if job is not None:
        job.report_progress(0.0, "reading the model output")
    labels = read_labelmap(labels_path, name="DAP Atlas model output")
    _check_cancel(job, "Import cancelled; nothing was added to the scene.")
    if job is not None:
        job.report_progress(0.5, "building the segments")
    return prepare_dap_segments(labels)


def load_color_table_node(path: str | Path | None = None, *, scene=None):
    """Read the DAP colour table (``Resources/DAPAtlas.ctbl``) into a colour table node."""
    from AnatomyCommonLib.anatomy.label_exports import COLOR_TABLE_FILE

    from .module_resources import module_resources_dir

    scene = slicer_bridge.mrml_scene(scene)
    path = Path(path) if path is not None else module_resources_dir() / COLOR_TABLE_FILE
    storage = scene.AddNewNodeByClass("vtkMRMLColorTableStorageNode")
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "DAP Atlas colors")
    storage.SetFileName(str(path))
    try:
        if not storage.ReadData(node):
            raise RuntimeError(f"Slicer could not read the colour table {path}.")
    finally:
        scene.RemoveNode(storage)
    node.SetAttribute("Category", "Segmentation")
    return node


def load_terminology(logic, path: str | Path | None = None) -> str:
    """Load ``Resources/DAPAtlas.term.json`` into a terminologies logic; returns the context name."""
    from AnatomyCommonLib.anatomy.label_exports import TERMINOLOGY_FILE

    from .module_resources import module_resources_dir

    path = Path(path) if path is not None else module_resources_dir() / TERMINOLOGY_FILE
    name = logic.LoadTerminologyFromFile(str(path))
    if not name:
        raise RuntimeError(f"Slicer could not load the terminology {path}.")
    return name


class DapLabelsRead:
    """A DAP label map planned from a node on the main thread; :meth:`read` (any thread) returns it."""

    def __init__(self, read_labels, lookup=None) -> None:
        self._read_labels = read_labels
        self._lookup = lookup

    def read(self) -> Volume:
        """The DAP label map (uint8 ids); InvalidLabelValuesError for values above 144."""
        import numpy as np

        from .exceptions import InvalidLabelValuesError

        labels = self._read_labels()
        if self._lookup is None:
            return labels
        remapped = self._lookup[labels.array]
        if remapped.size and int(remapped.max()) > 144:
            raise InvalidLabelValuesError(
                "The segmentation holds label values above 144; it is not a DAP label map."
            )
        return labels.with_array(remapped.astype(np.uint8))


def dap_labels_reader(model_output_node, reference_volume_node, *, scene=None) -> DapLabelsRead:
    """Main thread: plan :func:`dap_labels_from_node` (names are checked here, voxels read later).

    Segment names that are no DAP structure raise InvalidLabelValuesError at once.
    """
    import re

    import numpy as np

    from AnatomyCommonLib.anatomy.label_schema import label_by_name

    from .exceptions import InvalidLabelValuesError

    if model_output_node.IsA("vtkMRMLLabelMapVolumeNode"):
        return DapLabelsRead(slicer_bridge.volume_snapshot(model_output_node).to_volume)
    if not model_output_node.IsA("vtkMRMLSegmentationNode"):
        raise InvalidLabelValuesError(
            f"{model_output_node.GetName()} is neither a label map volume nor a segmentation; "
            "choose the DAP Atlas model output."
        )
    reader = slicer_bridge.segmentation_labelmap_reader(
        model_output_node, reference_volume_node, scene=slicer_bridge.mrml_scene(scene)
    )
    names = reader.names
    tagged = set()
    segmentation = model_output_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        value = _segment_tag(segmentation.GetNthSegment(index), slicer_bridge.LABEL_VALUE_TAG)
        if value and value.isdigit():
            tagged.add(int(value))
    lookup = np.arange(max(names, default=0) + 1, dtype=np.int64)
    unresolved = []
    for value, name in names.items():
        if value in tagged:
            continue
        try:
            lookup[value] = label_by_name(name).id
        except KeyError:
            match = re.fullmatch(r"(?:label|segment)[ _-]*(\d+)", name.strip().lower())
            if match:
                lookup[value] = int(match.group(1))
            else:
                unresolved.append(name)
    if unresolved:
        raise InvalidLabelValuesError(
            f"Segments {unresolved[:5]} of {model_output_node.GetName()} are not DAP Atlas structures; "
            "use the segmentation produced by the DAP Atlas model (or name segments like 'Kidney Left')."
        )
    if np.array_equal(lookup, np.arange(lookup.size)) and lookup.size <= 145:
        lookup = None  # every segment keeps its DAP id: no remapping pass over the voxels
    return DapLabelsRead(lambda: reader.read()[0], lookup)


def dap_labels_from_node(model_output_node, reference_volume_node, *, scene=None) -> Volume:
    """The model output (a label-map volume or a segmentation node) as a DAP label map.

    A label-map volume is taken as is (its values are DAP ids). A segmentation is exported on
    the reference volume's grid; segments made by this toolkit keep their DAP id (label value
    tag), others are matched by name ("Kidney Left", "kidney_left", the released CSV names, or
    "Label 15" / "Segment_15"). The input node is not modified. (:func:`dap_labels_reader`, then
    ``read()``; the module reads in its job runner.)
    """
    return dap_labels_reader(model_output_node, reference_volume_node, scene=scene).read()


def patient_sex_of_node(node, *, scene=None) -> str | None:
    """The DICOM PatientSex of the patient a volume belongs to (subject hierarchy), else None.

    Slicer's DICOM import stores it as the patient item's ``DICOM.PatientSex`` attribute; a
    node attribute of the same name is used as a fallback.
    """
    import slicer

    scene = slicer_bridge.mrml_scene(scene)
    attribute = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMPatientSexAttributeName()
    value = node.GetAttribute(attribute)
    if value:
        return value
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        return None
    item = hierarchy.GetItemByDataNode(node)
    patient_level = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelPatient()
    while item and item != hierarchy.GetSceneItemID():
        if hierarchy.GetItemLevel(item) == patient_level:
            return hierarchy.GetItemAttribute(item, attribute) or None
        item = hierarchy.GetItemParent(item)
    return None
