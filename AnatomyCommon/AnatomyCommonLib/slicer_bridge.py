"""The one place where data crosses between MRML nodes and numpy.

Every function imports ``slicer``/``vtk`` when called, never at module import, so the rest of
the toolkit stays importable in plain Python. They work inside the Slicer application and with
the PyPI ``slicer-core`` package (the tests use the latter). ``scene`` defaults to
``slicer.mrmlScene``.

Conventions: arrays are ``[k, j, i]`` like ``slicer.util.arrayFromVolume``; geometry is the
IJK->RAS matrix of a :class:`~AnatomyCommonLib.volume.Volume`; colours are RGB floats in 0..1.
Input nodes are never modified: results go to new nodes (or a node the caller passes in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .errors import EmptyMaskError, GeometryMismatchError
from .terminology import TerminologyEntry
from .volume import Volume

#: Segment tag holding the label value a segment came from (round-trips label maps exactly).
LABEL_VALUE_TAG = "AnatomyToolkit.LabelValue"

#: Node attribute naming which result a node holds (see :func:`result_node`).
RESULT_KEY_ATTRIBUTE = "AnatomyToolkit.ResultKey"

# Singleton nodes Slicer creates lazily on first use (e.g. on the first export); they belong to
# the scene, not to the operation that happened to create them.
_SCENE_SINGLETONS = ("vtkMRMLSubjectHierarchyNode",)


@dataclass(frozen=True)
class LabelDescription:
    """How one label value of a label map appears as a segment."""

    value: int
    name: str
    color_rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)
    terminology: TerminologyEntry | None = None


def _slicer():
    import slicer

    return slicer


def mrml_scene(scene=None):
    """``scene`` if given, else Slicer's current scene (``slicer.mrmlScene``)."""
    return scene if scene is not None else _slicer().mrmlScene


def _vtk_matrix(matrix: np.ndarray):
    import vtk

    vtk_matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vtk_matrix.SetElement(r, c, float(matrix[r, c]))
    return vtk_matrix


def _numpy_matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _node_to_world(node) -> np.ndarray:
    """4x4 matrix from the node's own coordinates to world RAS (parent transforms applied)."""
    slicer = _slicer()
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise GeometryMismatchError(
            f"{node.GetName()} is under a non-linear transform; harden the transform "
            "(Data module: right-click > Harden transform) before using it."
        )
    import vtk

    matrix = vtk.vtkMatrix4x4()
    slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(parent, None, matrix)
    return _numpy_matrix(matrix)


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(n).GetID() for n in range(scene.GetNumberOfNodes())}


def _with_dependents(node) -> set[str]:
    """IDs of ``node``, its display nodes and its storage node."""
    ids = {node.GetID()}
    if node.IsA("vtkMRMLDisplayableNode"):
        ids |= {node.GetNthDisplayNodeID(n) for n in range(node.GetNumberOfDisplayNodes())}
    if node.IsA("vtkMRMLStorableNode") and node.GetStorageNodeID():
        ids.add(node.GetStorageNodeID())
    return {i for i in ids if i}


@contextmanager
def scratch_nodes(scene=None) -> Iterator[list]:
    """Remove every node added to the scene inside the block, except those appended to the list.

    A kept node keeps its display and storage nodes. Catches what Slicer adds behind the scenes
    too (display nodes of temporary volumes, the ``<segmentation>_ColorTable`` node of a
    label-map export), so a conversion leaves the scene as it found it plus its result.
    """
    scene = mrml_scene(scene)
    before = _node_ids(scene)
    keep: list = []
    try:
        yield keep
    finally:
        kept = set().union(*(_with_dependents(node) for node in keep if node is not None))
        for node_id in sorted(_node_ids(scene) - before - kept):
            node = scene.GetNodeByID(node_id)
            if node is not None and not any(node.IsA(c) for c in _SCENE_SINGLETONS):
                scene.RemoveNode(node)


def result_node(class_name: str, key: str, name: str, *, scene=None):
    """The node of ``class_name`` holding result ``key`` (e.g. ``"CC-Metrics summary|<reference id>"``).

    Reused when present, so repeating an action replaces its previous result instead of adding
    another node; created with ``name`` (made unique) otherwise.
    """
    scene = mrml_scene(scene)
    nodes = scene.GetNodesByClass(class_name)
    for n in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(n)
        if node.GetAttribute(RESULT_KEY_ATTRIBUTE) == key:
            return node
    node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    node.SetAttribute(RESULT_KEY_ATTRIBUTE, key)
    return node


# ---------------------------------------------------------------------------- volumes
def volume_to_node(volume: Volume, name: str, *, scene=None, labelmap: bool = False, node=None):
    """Create (or fill ``node``) a scalar or label-map volume node from ``volume``."""
    slicer = _slicer()
    scene = mrml_scene(scene)
    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    array = volume.array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    node.SetIJKToRASMatrix(_vtk_matrix(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


class VolumeSnapshot:
    """A volume node's voxels and world geometry, taken on the main thread without copying voxels.

    Holds the node's vtk scalar array (it stays alive even if the node gets another image) and its
    world geometry; :meth:`to_volume` makes the copy on any thread (the job runner's), so a GUI
    reads a whole-body CT without a pause. Edits made in place meanwhile are seen by the copy.
    """

    def __init__(self, node) -> None:
        import vtk

        ijk_to_ras = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(ijk_to_ras)
        self.ijk_to_ras = _node_to_world(node) @ _numpy_matrix(ijk_to_ras)
        self.name = node.GetName()
        image = node.GetImageData()
        if image is None or image.GetPointData().GetScalars() is None:
            raise ValueError(f"{self.name} holds no image data; load or compute the volume first.")
        self._scalars = image.GetPointData().GetScalars()
        i, j, k = image.GetDimensions()
        components = self._scalars.GetNumberOfComponents()
        self.shape = (k, j, i) if components == 1 else (k, j, i, components)

    def grid(self) -> Volume:
        """An all-zero Volume on the snapshot's grid (a read-only broadcast: no memory, no copy)."""
        return Volume(
            np.broadcast_to(np.uint8(0), self.shape[:3]), self.ijk_to_ras.copy(), {"node_name": self.name}
        )

    def to_volume(self) -> Volume:
        """The voxels copied into a :class:`Volume` (any thread)."""
        from vtk.util import numpy_support

        array = np.array(numpy_support.vtk_to_numpy(self._scalars).reshape(self.shape), copy=True)
        return Volume(array=array, ijk_to_ras=self.ijk_to_ras, metadata={"node_name": self.name})


def volume_snapshot(node) -> VolumeSnapshot:
    """Main thread: what :func:`node_to_volume` copies, without copying it (see :class:`VolumeSnapshot`)."""
    return VolumeSnapshot(node)


def node_to_volume(node) -> Volume:
    """Copy a volume node's voxels and world geometry (linear parent transforms applied)."""
    return VolumeSnapshot(node).to_volume()


class PreparedVolume:
    """A volume's voxels already copied into a ``vtkImageData`` (no scene involved) and its IJK->RAS.

    Built by :func:`prepare_volume` in a job, shown by :func:`attach_prepared_volume` on the main
    thread, which hands the node this very image instead of copying the voxels there.
    """

    def __init__(self, image, ijk_to_ras: np.ndarray) -> None:
        self.image = image
        self.ijk_to_ras = np.array(ijk_to_ras, dtype=float)


def prepare_volume(volume: Volume) -> PreparedVolume:
    """Any thread: ``volume``'s voxels (bool as uint8) in a new vtkImageData, ready to attach."""
    import vtk
    from vtk.util import numpy_support

    array = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    if array.ndim != 3:
        raise ValueError(f"prepare_volume takes a 3D scalar volume, got shape {array.shape}.")
    k, j, i = array.shape
    image = vtk.vtkImageData()
    image.SetDimensions(i, j, k)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).reshape(-1), deep=True)
    image.GetPointData().SetScalars(scalars)
    return PreparedVolume(image, volume.ijk_to_ras)


def attach_prepared_volume(
    prepared: PreparedVolume, name: str, *, scene=None, labelmap: bool = False, node=None
):
    """Main thread: a (new, or the given) volume node showing ``prepared.image`` itself (no voxel copy)."""
    scene = mrml_scene(scene)
    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    node.SetIJKToRASMatrix(_vtk_matrix(prepared.ijk_to_ras))
    node.SetAndObserveImageData(prepared.image)
    node.StorableModified()  # a scene save writes the new voxels
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


# ---------------------------------------------------------------------------- colours
def color_table_node(descriptions: Sequence[LabelDescription], name: str, *, scene=None):
    """A user colour table with one named entry per label value (unused values stay unnamed)."""
    scene = mrml_scene(scene)
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", scene.GenerateUniqueName(name))
    table.SetTypeToUser()
    max_value = max((d.value for d in descriptions), default=0)
    table.SetNumberOfColors(max_value + 1)
    table.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for description in descriptions:
        r, g, b = description.color_rgb
        table.SetColor(int(description.value), description.name, r, g, b, 1.0)
    return table


# ---------------------------------------------------------------------------- segmentations
class PreparedSegments:
    """Segments built from a label map without touching a scene, for :func:`attach_segments`.

    Built by :func:`prepare_segments` on any thread (the job runner's): one shared
    ``vtkOrientedImageData`` layer holding every label value, as Slicer's own shared-labelmap
    representation stores an imported label map, and one ``vtkSegment`` per label value with its
    name, colour, label value and tags. Attaching them to a segmentation node is then a cheap
    main-thread step. A prepared set can be attached once (the segments then belong to that node).
    """

    def __init__(self, segments, layer, geometry: str, ijk_to_ras: np.ndarray) -> None:
        self.segments = segments  #: [(segment id, vtkSegment)] in display order
        self.layer = layer  #: the shared vtkOrientedImageData (label values as voxels)
        self.geometry = geometry  #: the layer's serialized image geometry (reference geometry)
        self.ijk_to_ras = ijk_to_ras
        self.attached = False

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def segment_names(self) -> list[str]:
        return [segment.GetName() for _, segment in self.segments]


def present_label_values(array: np.ndarray) -> list[int]:
    """The non-zero values of a label map in increasing order (a bincount, not a sort, for <= 16 bits)."""
    array = np.asarray(array)
    if array.size == 0:
        return []
    if array.dtype.kind not in "iub":
        raise ValueError(f"A label map needs integer values, got {array.dtype}.")
    low, high = int(array.min()), int(array.max())
    if low < 0:
        raise ValueError(f"A label map needs values >= 0, found {low}.")
    if high < 2**16:
        counts = np.bincount(array.ravel(), minlength=high + 1)
        return [int(v) for v in np.flatnonzero(counts) if v != 0]
    return [int(v) for v in np.unique(array) if v != 0]


def prepare_segments(
    labels: Volume,
    descriptions: Iterable[LabelDescription] = (),
    *,
    order: Callable[[int], object] | None = None,
    tags: Callable[[int], Mapping[str, str]] | None = None,
) -> PreparedSegments:
    """Segments of a label map ready to attach: no scene is read or changed (run it off the main thread).

    One segment per label value present (values without a description become "Label N"), in
    increasing value order or sorted by ``order(value)``. Each carries its label value in the
    ``LABEL_VALUE_TAG`` tag, its terminology entry when described and the tags ``tags(value)``.
    """
    slicer = _slicer()
    import vtk
    from vtk.util import numpy_support

    by_value = {int(d.value): d for d in descriptions}
    values = present_label_values(labels.array)
    if order is not None:
        values = sorted(values, key=order)
    array = np.asarray(labels.array)
    scalar_type = vtk.VTK_UNSIGNED_CHAR if not values or max(values) < 256 else vtk.VTK_UNSIGNED_SHORT
    dtype = np.uint8 if scalar_type == vtk.VTK_UNSIGNED_CHAR else np.uint16
    nk, nj, ni = array.shape
    layer = slicer.vtkOrientedImageData()
    layer.SetExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
    layer.AllocateScalars(scalar_type, 1)
    numpy_support.vtk_to_numpy(layer.GetPointData().GetScalars()).reshape(array.shape)[:] = array.astype(
        dtype, copy=False
    )
    layer.SetImageToWorldMatrix(_vtk_matrix(labels.ijk_to_ras))
    geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(layer)
    representation = _binary_labelmap_name()
    segments, used_ids = [], set()
    for value in values:
        description = by_value.get(value, LabelDescription(value, f"Label {value}"))
        segment = slicer.vtkSegment()
        segment.SetName(description.name)
        segment.SetNameAutoGenerated(False)
        segment.SetColor(*description.color_rgb)
        segment.SetColorAutoGenerated(False)
        segment.SetLabelValue(value)
        segment.AddRepresentation(representation, layer)  # the same layer object for every segment
        segment.SetTag(LABEL_VALUE_TAG, str(value))
        if description.terminology is not None:
            segment.SetTag(segment.GetTerminologyEntryTagName(), description.terminology.to_slicer_string())
        for tag, tag_value in (tags(value) if tags is not None else {}).items():
            segment.SetTag(tag, str(tag_value))
        segment_id = description.name
        if segment_id in used_ids:
            segment_id = f"{description.name}_{value}"
        used_ids.add(segment_id)
        segments.append((segment_id, segment))
    return PreparedSegments(segments, layer, geometry, np.asarray(labels.ijk_to_ras, dtype=float))


def remove_all_segments(segmentation) -> None:
    """Remove every segment of a ``vtkSegmentation`` without a pass over its voxels.

    Removing a segment that still holds its binary labelmap makes Slicer erase that segment's
    label from the shared layer, one scan of the whole layer per segment (about 40 s for the 120
    DAP segments on the 27 M-voxel medium phantom). Dropping the representations first makes the
    removal a bookkeeping step; the old layer is released with its last segment.
    """
    for index in range(segmentation.GetNumberOfSegments()):
        segmentation.GetNthSegment(index).RemoveAllRepresentations()
    segmentation.RemoveAllSegments()


def attach_segments(
    segmentation_node,
    prepared: PreparedSegments,
    *,
    replace_segments: bool = False,
    reference_volume_node=None,
) -> list[str]:
    """Main thread: add prepared segments to a segmentation node; returns their segment ids.

    Only attaches objects :func:`prepare_segments` built (no voxel is copied or scanned here),
    inside one StartModify/EndModify so observers see one modification. ``replace_segments`` first
    removes the node's segments. The reference geometry is the volume's when given, else the
    label map's when the node has none yet.
    """
    if prepared.attached:
        raise RuntimeError(
            "These prepared segments were already added to a segmentation; prepare them again."
        )
    slicer = _slicer()
    segmentation = segmentation_node.GetSegmentation()
    was_modifying = segmentation_node.StartModify()
    try:
        if replace_segments:
            remove_all_segments(segmentation)
        parameter = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
        if reference_volume_node is not None:
            segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
        elif parameter not in segmentation.SerializeAllConversionParameters():
            segmentation.SetConversionParameter(parameter, prepared.geometry)
        ids = []
        for segment_id, segment in prepared.segments:
            segment_id = segmentation.GenerateUniqueSegmentID(segment_id)
            if not segmentation.AddSegment(segment, segment_id):
                raise RuntimeError(
                    f"Slicer could not add segment {segment_id!r} to {segmentation_node.GetName()}."
                )
            ids.append(segment_id)
        prepared.attached = True
    finally:
        segmentation_node.EndModify(was_modifying)
    if segmentation_node.GetDisplayNode() is None:
        segmentation_node.CreateDefaultDisplayNodes()
    return ids


def labelmap_to_segmentation_node(
    labels: Volume,
    descriptions: Iterable[LabelDescription] = (),
    name: str = "Segmentation",
    *,
    scene=None,
    reference_volume_node=None,
    segmentation_node=None,
    replace_segments: bool = False,
):
    """Import a label map as segments named, coloured and tagged from ``descriptions``.

    One segment per label value present in ``labels`` (values without a description become
    "Label N"), all in one shared labelmap layer. Each segment carries its label value in the
    ``LABEL_VALUE_TAG`` tag and, when given, its terminology entry, so
    :func:`segmentation_node_to_labelmap` restores the same values. No node besides the
    segmentation is added. ``replace_segments`` first empties a passed-in ``segmentation_node``
    (a refreshed result replaces the previous one instead of adding to it). This is
    :func:`prepare_segments` then :func:`attach_segments` on the calling thread; a GUI runs the
    first in its job runner.
    """
    prepared = prepare_segments(labels, descriptions)
    return attach_prepared_segments(
        prepared,
        name,
        scene=scene,
        reference_volume_node=reference_volume_node,
        segmentation_node=segmentation_node,
        replace_segments=replace_segments,
    )


def attach_prepared_segments(
    prepared: PreparedSegments,
    name: str = "Segmentation",
    *,
    scene=None,
    reference_volume_node=None,
    segmentation_node=None,
    replace_segments: bool = False,
):
    """Main thread: a new segmentation node ``name`` (or ``segmentation_node``) holding ``prepared``."""
    scene = mrml_scene(scene)
    if segmentation_node is None:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
        segmentation_node.CreateDefaultDisplayNodes()
    attach_segments(
        segmentation_node,
        prepared,
        replace_segments=replace_segments,
        reference_volume_node=reference_volume_node,
    )
    return segmentation_node


def _segment_ids(segmentation_node, segment_ids: Sequence[str] | None) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    all_ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    if segment_ids is None:
        return all_ids
    missing = [s for s in segment_ids if s not in all_ids]
    if missing:
        raise KeyError(f"{segmentation_node.GetName()} has no segment(s) {missing}; it has {all_ids}.")
    return list(segment_ids)


class LabelmapRead:
    """A segmentation export planned on the main thread; :meth:`read` (any thread) gives the label map.

    From :func:`segmentation_labelmap_reader`. When every segment lies in one shared layer on the
    reference grid the plan holds that layer's voxel array and a lookup table, and :meth:`read` does
    the voxel work; otherwise Slicer's export ran while planning and :meth:`read` returns its result.
    """

    def __init__(self, names: dict[int, str], compute) -> None:
        self.names = names  #: {value: segment name}
        self._compute = compute

    def read(self) -> tuple[Volume, dict[int, str]]:
        """(label map Volume, {value: segment name})."""
        return self._compute(), self.names


def segmentation_labelmap_reader(
    segmentation_node,
    reference,
    *,
    segment_ids: Sequence[str] | None = None,
    scene=None,
) -> LabelmapRead:
    """Main thread: plan :func:`segmentation_node_to_labelmap` (MRML reads only, on the common path)."""
    slicer = _slicer()
    import vtk

    scene = mrml_scene(scene)
    ids = _segment_ids(segmentation_node, segment_ids)
    segmentation = segmentation_node.GetSegmentation()
    values: dict[str, int] = {}
    for segment_id in ids:
        tag = vtk.mutable("")
        if segmentation.GetSegment(segment_id).GetTag(LABEL_VALUE_TAG, tag) and str(tag).isdigit():
            values[segment_id] = int(str(tag))
    next_value = max(values.values(), default=0) + 1
    for segment_id in ids:
        if segment_id not in values:
            values[segment_id] = next_value
            next_value += 1

    dtype = np.uint16 if next_value > 255 else np.uint8
    names = {values[s]: segmentation.GetSegment(s).GetName() for s in ids}
    if isinstance(reference, Volume):
        grid_shape, grid_matrix, metadata = reference.shape, reference.ijk_to_ras, dict(reference.metadata)
    else:
        snapshot = VolumeSnapshot(reference)
        grid_shape, grid_matrix, metadata = (
            snapshot.shape[:3],
            snapshot.ijk_to_ras,
            {"node_name": snapshot.name},
        )
    fast = _shared_layer_plan(segmentation_node, ids, values, grid_shape, grid_matrix, reference, dtype)
    if fast is not None:
        metadata["segment_names"] = names
        return LabelmapRead(names, lambda: Volume(fast(), grid_matrix.copy(), metadata))

    reference_volume = reference if isinstance(reference, Volume) else node_to_volume(reference)
    # scratch_nodes also removes what the export adds itself (display nodes, "<name>_ColorTable")
    with scratch_nodes(scene):
        if isinstance(reference, Volume):
            reference_node = volume_to_node(reference, "reference_grid", scene=scene)
        else:
            reference_node = reference
        output = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export_labelmap")
        id_array = vtk.vtkStringArray()
        for segment_id in ids:
            id_array.InsertNextValue(segment_id)
        # Without a colour table Slicer writes 1..N in the order of id_array; remap afterwards
        # (a colour table would match segments by name, which need not be unique).
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node,
            id_array,
            output,
            reference_node,
            slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
        ):
            raise RuntimeError(f"Slicer could not export {segmentation_node.GetName()} to a label map.")
        exported = node_to_volume(output)
    lookup = np.zeros(len(ids) + 1, dtype=dtype)
    for position, segment_id in enumerate(ids, start=1):
        lookup[position] = values[segment_id]
    if not exported.same_grid_as(reference_volume):
        raise GeometryMismatchError("The exported label map does not lie on the reference grid.")
    result = exported.with_array(lookup[exported.array], segment_names=names)
    return LabelmapRead(names, lambda: result)


def segmentation_node_to_labelmap(
    segmentation_node,
    reference,
    *,
    segment_ids: Sequence[str] | None = None,
    scene=None,
) -> tuple[Volume, dict[int, str]]:
    """Export segments as one label map on the reference grid.

    ``reference`` is a volume node or a :class:`Volume` (the grid of the result). Segments keep
    the value in their ``LABEL_VALUE_TAG`` tag; untagged ones get the next free values in
    segment order. Returns the label map and ``{value: segment name}``. Overlapping segments:
    the later segment wins, as in Slicer's own export. (:func:`segmentation_labelmap_reader`
    then ``read()``; a GUI reads in its job runner.)
    """
    return segmentation_labelmap_reader(
        segmentation_node, reference, segment_ids=segment_ids, scene=scene
    ).read()


def _shared_layer_plan(segmentation_node, ids, values, grid_shape, grid_matrix, reference, dtype):
    """A function reading the label map straight from one shared binary-labelmap layer, or None.

    The common case (a segmentation imported from a label map, then exported on the same grid)
    holds every segment in one layer on the reference grid: one table lookup over that layer gives
    the result in a fraction of the time of Slicer's per-segment export (0.1 s instead of 2.2 s for
    the 123 DAP segments of the 5 M-voxel phantom). Anything else (several layers, i.e. overlapping
    segments; another grid; a parent transform; a non-labelmap source) returns None. The MRML reads
    happen here; the returned function only does numpy work on the layer it holds (any thread).
    """
    import vtk
    from vtk.util import numpy_support

    segmentation = segmentation_node.GetSegmentation()
    name = _binary_labelmap_name()
    source = (
        segmentation.GetSourceRepresentationName()
        if hasattr(segmentation, "GetSourceRepresentationName")
        else segmentation.GetMasterRepresentationName()
    )
    if source != name or not ids or segmentation_node.GetParentTransformNode() is not None:
        return None
    if not isinstance(reference, Volume) and reference.GetParentTransformNode() is not None:
        return None
    layers = {segmentation.GetLayerIndex(segment_id) for segment_id in ids}
    if len(layers) != 1:
        return None
    image = segmentation.GetSegment(ids[0]).GetRepresentation(name)
    if image is None or image.GetScalarType() not in (vtk.VTK_UNSIGNED_CHAR, vtk.VTK_UNSIGNED_SHORT):
        return None
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    if not np.allclose(_numpy_matrix(matrix), grid_matrix, atol=1e-4):
        return None
    grid_shape = tuple(int(n) for n in grid_shape)
    extent = image.GetExtent()
    if extent[1] < extent[0] or extent[3] < extent[2] or extent[5] < extent[4]:
        return lambda: np.zeros(grid_shape, dtype=dtype)  # every segment is empty
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    scalars = image.GetPointData().GetScalars()  # held: stays valid if the segment is edited meanwhile
    label_values = {int(segmentation.GetSegment(s).GetLabelValue()): values[s] for s in ids}
    lo = np.array([extent[4], extent[2], extent[0]])

    def read() -> np.ndarray:
        out = np.zeros(grid_shape, dtype=dtype)
        layer = numpy_support.vtk_to_numpy(scalars).reshape(shape)
        lookup = np.zeros(int(layer.max()) + 1, dtype=dtype)
        for label_value, value in label_values.items():
            if label_value < lookup.size:
                lookup[label_value] = value
        src_lo = np.maximum(lo, 0)
        src_hi = np.minimum(lo + np.array(shape), np.array(grid_shape))
        if np.any(src_hi <= src_lo):
            return out
        target = tuple(slice(a, b) for a, b in zip(src_lo, src_hi, strict=True))
        source_block = tuple(slice(a - o, b - o) for a, b, o in zip(src_lo, src_hi, lo, strict=True))
        out[target] = lookup[layer[source_block]]
        return out

    return read


def segment_to_mask(segmentation_node, segment_id: str, reference, *, scene=None) -> Volume:
    """One segment as a binary uint8 mask on the reference grid; EmptyMaskError if empty."""
    labels, _ = segmentation_node_to_labelmap(
        segmentation_node, reference, segment_ids=[segment_id], scene=scene
    )
    mask = (labels.array > 0).astype(np.uint8)
    if not mask.any():
        name = segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()
        raise EmptyMaskError(
            f"Segment {name!r} is empty on the reference grid; paint it or pick another one."
        )
    return labels.with_array(mask)


def segmentation_reference_grid(segmentation_node) -> Volume:
    """The voxel grid of a segmentation's reference image geometry, as an all-zero uint8 Volume.

    This is the grid Slicer's Segment Editor paints on (set from the source volume). Raises
    GeometryMismatchError when the segmentation has none (choose a reference volume instead).
    A linear parent transform of the segmentation is applied.
    """
    slicer = _slicer()
    import vtk

    segmentation = segmentation_node.GetSegmentation()
    parameter = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    # asking for a parameter that was never set logs an error in Slicer: look first
    present = parameter in segmentation.SerializeAllConversionParameters()
    geometry = segmentation.GetConversionParameter(parameter) if present else ""
    image = slicer.vtkOrientedImageData()
    if not geometry or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image, False):
        raise GeometryMismatchError(
            f"{segmentation_node.GetName()} has no reference geometry; pick a reference volume for the grid "
            "(or set the segmentation's geometry in the Segment Editor)."
        )
    image_to_world = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(image_to_world)
    extent = image.GetExtent()
    offset = np.eye(4)
    offset[:3, 3] = [extent[0], extent[2], extent[4]]
    matrix = _node_to_world(segmentation_node) @ _numpy_matrix(image_to_world) @ offset
    dims = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    return Volume(np.zeros(dims, dtype=np.uint8), matrix, {"node_name": segmentation_node.GetName()})


def _binary_labelmap_name() -> str:
    return _slicer().vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()


def _oriented_image(block_kji: np.ndarray, offset_kji: Sequence[int], ijk_to_ras: np.ndarray):
    """A uint8 vtkOrientedImageData holding ``block_kji`` at ``offset_kji`` of a grid with ``ijk_to_ras``."""
    import vtk
    from vtk.util import numpy_support

    block = np.asarray(block_kji)
    nk, nj, ni = block.shape
    k0, j0, i0 = (int(v) for v in offset_kji)
    image = _slicer().vtkOrientedImageData()
    image.SetExtent(i0, i0 + ni - 1, j0, j0 + nj - 1, k0, k0 + nk - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nk, nj, ni)[:] = block > 0
    image.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras))
    return image


def _node_ijk_to_ras(volume_node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


def ensure_segment(segmentation_node, description: LabelDescription, reference_volume_node) -> str:
    """The id of the segment named ``description.name`` (created empty on the reference grid if missing).

    Name, colour, label-value tag and terminology are (re)applied from ``description``.
    """
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName(description.name)
    if not segment_id:
        slicer = _slicer()
        segment = slicer.vtkSegment()
        segment.SetName(description.name)
        empty = _oriented_image(
            np.zeros((1, 1, 1), np.uint8), (0, 0, 0), _node_ijk_to_ras(reference_volume_node)
        )
        segment.AddRepresentation(_binary_labelmap_name(), empty)
        segment_id = segmentation.GenerateUniqueSegmentID(description.name)
        segmentation.AddSegment(segment, segment_id)
        if segmentation_node.GetDisplayNode() is None:
            segmentation_node.CreateDefaultDisplayNodes()
    segment = segmentation.GetSegment(segment_id)
    segment.SetNameAutoGenerated(False)
    segment.SetColor(*description.color_rgb)
    segment.SetColorAutoGenerated(False)
    segment.SetTag(LABEL_VALUE_TAG, str(int(description.value)))
    if description.terminology is not None:
        segment.SetTag(segment.GetTerminologyEntryTagName(), description.terminology.to_slicer_string())
    return segment_id


def write_segment_block(
    segmentation_node,
    segment_id: str,
    block_kji: np.ndarray,
    offset_kji: Sequence[int],
    reference_volume_node,
) -> None:
    """Replace one segment's voxels inside a block of the reference volume's grid; keep all others.

    ``block_kji`` (non-zero = inside) covers array indices ``offset_kji .. offset_kji + shape`` of
    the reference volume (e.g. one axial slice). Cost is proportional to the segment's bounding
    box plus the block, not to the volume. If the segment's stored labelmap lies on another grid,
    it is first exported onto the reference grid.
    """
    slicer = _slicer()
    from vtk.util import numpy_support

    logic = slicer.vtkSlicerSegmentationsModuleLogic
    reference_matrix = _node_ijk_to_ras(reference_volume_node)
    block = np.asarray(block_kji) > 0
    k0, j0, i0 = (int(v) for v in offset_kji)
    block_lo = np.array([k0, j0, i0])
    block_hi = block_lo + np.array(block.shape) - 1

    current = slicer.vtkOrientedImageData()
    has_current = bool(
        logic.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id, current, False)
    )
    current_array, current_lo = None, None
    if has_current:
        extent = current.GetExtent()
        if extent[1] >= extent[0] and extent[3] >= extent[2] and extent[5] >= extent[4]:
            import vtk

            matrix = vtk.vtkMatrix4x4()
            current.GetImageToWorldMatrix(matrix)
            if np.allclose(_numpy_matrix(matrix), reference_matrix, atol=1e-4):
                shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
                scalars = current.GetPointData().GetScalars()
                current_array = numpy_support.vtk_to_numpy(scalars).reshape(shape) > 0
                current_lo = np.array([extent[4], extent[2], extent[0]])
            else:
                exported = segment_to_mask_or_empty(segmentation_node, segment_id, reference_volume_node)
                current_array, current_lo = exported > 0, np.zeros(3, dtype=int)
    if current_array is not None and current_array.any():
        nonzero = np.argwhere(current_array)
        lo = np.minimum(block_lo, current_lo + nonzero.min(axis=0))
        hi = np.maximum(block_hi, current_lo + nonzero.max(axis=0))
    else:
        lo, hi = block_lo, block_hi
    merged = np.zeros(tuple(hi - lo + 1), dtype=np.uint8)
    if current_array is not None and current_array.any():
        src_lo = np.maximum(lo, current_lo)
        src_hi = np.minimum(hi, current_lo + np.array(current_array.shape) - 1)
        dst = tuple(slice(a - l, b - l + 1) for a, b, l in zip(src_lo, src_hi, lo, strict=True))
        src = tuple(slice(a - c, b - c + 1) for a, b, c in zip(src_lo, src_hi, current_lo, strict=True))
        merged[dst] = current_array[src]
    target = tuple(slice(a - l, a - l + n) for a, l, n in zip(block_lo, lo, block.shape, strict=True))
    merged[target] = block
    image = _oriented_image(merged, lo, reference_matrix)
    if not logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_REPLACE):
        raise RuntimeError(
            f"Slicer could not update segment {segment_id!r} of {segmentation_node.GetName()}."
        )


def segment_to_mask_or_empty(segmentation_node, segment_id: str, reference_volume_node) -> np.ndarray:
    """One segment as a uint8 array on the reference volume's grid (zeros if the segment is empty)."""
    labels, _ = segmentation_node_to_labelmap(
        segmentation_node, reference_volume_node, segment_ids=[segment_id]
    )
    return (labels.array > 0).astype(np.uint8)


# ---------------------------------------------------------------------------- tables
def rows_to_table_node(rows: Sequence[Mapping], name: str, *, scene=None, node=None):
    """A table node with one column per key of the rows (numbers as double, others as text)."""
    import vtk

    scene = mrml_scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    table = node.GetTable()
    table.Initialize()
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    for column in columns:
        cells = [row.get(column) for row in rows]
        numeric = all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in cells
            if v is not None
        )
        if numeric:
            array = vtk.vtkDoubleArray()
            for value in cells:
                array.InsertNextValue(float("nan") if value is None else float(value))
        else:
            array = vtk.vtkStringArray()
            for value in cells:
                array.InsertNextValue("" if value is None else str(value))
        array.SetName(column)
        table.AddColumn(array)
    node.Modified()
    return node


def table_node_to_rows(node) -> list[dict]:
    """Rows of a table node as dicts (numeric columns as float, text columns as str)."""
    table = node.GetTable()
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c in range(table.GetNumberOfColumns()):
            column = table.GetColumn(c)
            value = column.GetValue(r)
            row[column.GetName()] = value if isinstance(value, str) else float(value)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- markups
def box_to_roi_node(
    center_ras: Sequence[float],
    size_mm: Sequence[float],
    name: str = "Box",
    *,
    axes_ras: np.ndarray | None = None,
    scene=None,
    node=None,
):
    """An ROI markup centred at ``center_ras`` with edge lengths ``size_mm`` along ``axes_ras``.

    ``axes_ras`` (3x3, columns = ROI axes in RAS) lets a box follow an oblique volume's voxel
    axes; the default is RAS-aligned.
    """
    scene = mrml_scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", scene.GenerateUniqueName(name))
    axes = np.eye(3) if axes_ras is None else np.asarray(axes_ras, dtype=float)
    object_to_node = np.eye(4)
    object_to_node[:3, :3] = axes
    object_to_node[:3, 3] = np.asarray(center_ras, dtype=float)
    node.SetAndObserveObjectToNodeMatrix(_vtk_matrix(object_to_node))
    node.SetCenter(*[float(v) for v in center_ras])
    node.SetSize(*[float(v) for v in size_mm])
    return node


def roi_node_to_box(node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre in world RAS, size in mm, axes 3x3 in world RAS) of an ROI markup."""
    center = [0.0, 0.0, 0.0]
    node.GetCenterWorld(center)
    axes = _numpy_matrix(node.GetObjectToWorldMatrix())[:3, :3]
    scales = np.linalg.norm(axes, axis=0)
    return np.asarray(center), np.asarray(node.GetSize()) * scales, axes / scales[None, :]


def points_to_fiducial_node(
    points_ras: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    name: str = "Points",
    *,
    scene=None,
    node=None,
):
    """A point-list markup with one control point per RAS point (replaces ``node``'s points)."""
    scene = mrml_scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(name))
    node.RemoveAllControlPoints()
    for index, point in enumerate(points_ras):
        label = labels[index] if labels is not None else f"{name}-{index + 1}"
        node.AddControlPoint(*[float(v) for v in point], label)
    return node


def fiducial_node_to_points(node) -> list[tuple[np.ndarray, str]]:
    """(world RAS position, label) of every control point of a point-list markup."""
    points = []
    for index in range(node.GetNumberOfControlPoints()):
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(index, position)
        points.append((np.asarray(position), node.GetNthControlPointLabel(index)))
    return points


def require_nonempty(mask: Volume, name: str) -> Volume:
    """Raise EmptyMaskError unless the mask has at least one foreground voxel."""
    if not np.any(mask.array):
        raise EmptyMaskError(f"{name} is empty; it needs at least one foreground voxel.")
    return mask
