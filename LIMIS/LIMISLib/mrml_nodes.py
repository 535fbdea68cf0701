"""The MRML side of a LIMIS session: box <-> ROI markup, clicks <-> point list, grid, mask -> segment.

Everything here converts between the session's display-pixel world (one axial slice, see
:mod:`LIMISLib.slice_geometry`) and Slicer nodes, through :mod:`AnatomyCommonLib.slicer_bridge`.
Functions import ``slicer``/``vtk`` only when called (this module imports without Slicer) and are
tested against real MRML with the PyPI ``slicer-core`` package.

* The **box** is an ROI markup lying on the slice: its axes follow display x, display y and the
  slice normal; its thickness is one slice. Reading an ROI back takes the pixel bounding box of
  its 8 corners (so a rotated or resized ROI still gives a sensible box) and the slice of its centre.
* **Clicks** are control points of one point-list markup, labelled ``+1``, ``-2``, ... (sign =
  positive/negative, number = order); the point's slice is where the user sees it.
* **Mouse prompts**: points the user places in a positive or a negative point list
  (:func:`placed_point`: the last defined control point -> display pixel + slice), and a scribble
  drawn as an open or closed markups curve (:func:`scribble_from_curve`: its interpolated curve
  points -> a pixel mask on the curve's axial slice, :func:`LIMISLib.scribble_raster.rasterise_polyline`).
* The **grid** (shown while a grid command is pending) is a point list with the 16 cell numbers
  at the cell centres plus a linear curve tracing the grid lines.
* The **mask** of a slice is written into a segment named after the structure (DAP display name,
  colour and SNOMED-CT terminology) on exactly that axial slice of the reference volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .click_grid import cell_label_positions, grid_lines
from .model_interfaces import Box
from .session import Click
from .slice_geometry import AxialSliceGeometry, clip_box

__all__ = [
    "box_from_roi",
    "box_to_roi",
    "clicks_from_points",
    "clicks_to_points",
    "grid_to_markups",
    "placed_point",
    "scribble_from_curve",
    "structure_description",
    "write_slice_mask",
]


def box_to_roi(
    geometry: AxialSliceGeometry,
    box_xyxy: Box,
    slice_index: int,
    *,
    name: str = "LIMIS box",
    scene=None,
    node=None,
):
    """An ROI markup covering ``box_xyxy`` on axial slice ``slice_index`` (one slice thick)."""
    from AnatomyCommonLib.slicer_bridge import box_to_roi_node

    x0, y0, x1, y1 = box_xyxy
    center = geometry.pixel_to_ras([((x0 + x1) / 2.0, (y0 + y1) / 2.0)], slice_index)[0]
    column_mm, row_mm = geometry.pixel_spacing_mm
    size = ((x1 - x0) * column_mm, (y1 - y0) * row_mm, geometry.slice_spacing_mm)
    return box_to_roi_node(center, size, name, axes_ras=geometry.display_axes_ras(), scene=scene, node=node)


def box_from_roi(geometry: AxialSliceGeometry, node) -> tuple[Box, int]:
    """(box in display pixels, slice index) of an ROI markup, clipped to the slice."""
    from AnatomyCommonLib.slicer_bridge import roi_node_to_box

    center, size_mm, axes = roi_node_to_box(node)
    half = np.asarray(size_mm, dtype=float) / 2.0
    corners = [
        center + axes @ (np.array([sx, sy, sz]) * half) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)
    ]
    pixels, _ = geometry.ras_to_pixel(np.asarray(corners))
    box = (pixels[:, 0].min(), pixels[:, 1].min(), pixels[:, 0].max(), pixels[:, 1].max())
    return clip_box(box, geometry.image_shape, min_size_px=1.0), geometry.slice_index_of_ras(center)


def clicks_to_points(
    geometry: AxialSliceGeometry,
    clicks: Sequence[Click],
    slice_index: int,
    *,
    name: str = "LIMIS clicks",
    scene=None,
    node=None,
):
    """A point-list markup with one control point per click, labelled "+1", "-2", ..."""
    from AnatomyCommonLib.slicer_bridge import points_to_fiducial_node

    points = geometry.pixel_to_ras([(c.x, c.y) for c in clicks], slice_index) if clicks else []
    labels = [f"{'+' if c.positive else '-'}{n}" for n, c in enumerate(clicks, start=1)]
    return points_to_fiducial_node(points, labels, name, scene=scene, node=node)


def clicks_from_points(geometry: AxialSliceGeometry, node) -> list[tuple[Click, int]]:
    """(click, slice index) of every control point; a label starting with "-" means negative."""
    from AnatomyCommonLib.slicer_bridge import fiducial_node_to_points

    clicks = []
    for position, label in fiducial_node_to_points(node):
        pixels, _ = geometry.ras_to_pixel(position.reshape(1, 3))
        x, y = pixels[0]
        clicks.append(
            (
                Click(float(x), float(y), not label.strip().startswith("-")),
                geometry.slice_index_of_ras(position),
            )
        )
    return clicks


def placed_point(geometry: AxialSliceGeometry, node) -> tuple[float, float, int] | None:
    """(x, y, slice index) of the last control point whose position is defined (placed), or None.

    Points still being placed (preview) or with an undefined position are skipped.
    """
    defined = getattr(node, "PositionDefined", 1)
    for index in range(node.GetNumberOfControlPoints() - 1, -1, -1):
        if node.GetNthControlPointPositionStatus(index) != defined:
            continue
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(index, position)
        pixels, _ = geometry.ras_to_pixel(np.asarray(position).reshape(1, 3))
        return float(pixels[0, 0]), float(pixels[0, 1]), geometry.slice_index_of_ras(position)
    return None


def scribble_from_curve(
    geometry: AxialSliceGeometry, node, *, width_px: float = 1.0
) -> tuple[np.ndarray, int]:
    """(bool (H, W) scribble mask, slice index) of a markups curve drawn on one axial slice.

    Open curves (``vtkMRMLMarkupsCurveNode``) give their line, closed curves
    (``vtkMRMLMarkupsClosedCurveNode``) their outline including the closing segment; spline curves
    are followed through their interpolated points. A curve whose points lie on different axial
    slices is refused (draw it in the axial view).
    """
    from .exceptions import InvalidPromptError
    from .scribble_raster import rasterise_polyline

    count = node.GetNumberOfControlPoints()
    if count == 0:
        raise InvalidPromptError(f"The curve '{node.GetName()}' has no points; draw it on the slice first.")
    curve = node.GetCurvePointsWorld()
    if curve is not None and curve.GetNumberOfPoints() > 0:
        points = np.array([curve.GetPoint(i) for i in range(curve.GetNumberOfPoints())], dtype=float)
    else:
        points = np.array([node.GetNthControlPointPositionWorld(i) for i in range(count)], dtype=float)
    pixels, positions = geometry.ras_to_pixel(points)
    slices = np.clip(np.rint(positions), 0, geometry.n_slices - 1).astype(int)
    if slices.min() != slices.max():
        raise InvalidPromptError(
            f"The curve '{node.GetName()}' spans axial slices {slices.min()}-{slices.max()}; "
            "draw the scribble on one axial slice."
        )
    closed = bool(node.IsA("vtkMRMLMarkupsClosedCurveNode"))
    mask = rasterise_polyline(pixels, geometry.image_shape, closed=closed, width_px=width_px)
    return mask, int(slices[0])


def grid_to_markups(
    geometry: AxialSliceGeometry,
    box_xyxy: Box,
    slice_index: int,
    *,
    name: str = "LIMIS grid",
    scene=None,
    labels_node=None,
    lines_node=None,
):
    """(point list with the cell numbers 1-16, linear curve through the grid lines) for the box."""
    from AnatomyCommonLib.slicer_bridge import mrml_scene, points_to_fiducial_node

    scene = mrml_scene(scene)
    centres = cell_label_positions(box_xyxy)
    labels_node = points_to_fiducial_node(
        geometry.pixel_to_ras([centres[c] for c in sorted(centres)], slice_index),
        [str(c) for c in sorted(centres)],
        f"{name} numbers",
        scene=scene,
        node=labels_node,
    )
    path = []
    for number, (start, end) in enumerate(grid_lines(box_xyxy)):
        path.extend([start, end] if number % 2 == 0 else [end, start])
    if lines_node is None:
        lines_node = scene.AddNewNodeByClass(
            "vtkMRMLMarkupsCurveNode", scene.GenerateUniqueName(f"{name} lines")
        )
    lines_node.SetCurveTypeToLinear()
    lines_node.RemoveAllControlPoints()
    for point in geometry.pixel_to_ras(path, slice_index):
        lines_node.AddControlPoint(*[float(v) for v in point], "")
    return labels_node, lines_node


@lru_cache(maxsize=256)
def structure_description(structure: str):
    """The DAP Atlas segment description (display name, colour, SNOMED-CT terminology) of a structure."""
    from AnatomyCommonLib.anatomy.label_schema import label_id, segment_descriptions
    from AnatomyCommonLib.slicer_bridge import LabelDescription

    value = label_id(structure)
    for description in segment_descriptions():
        if description.value == value:
            return description
    return LabelDescription(value, structure.title())


def write_slice_mask(
    segmentation_node,
    structure: str,
    geometry: AxialSliceGeometry,
    slice_index: int,
    mask_2d: np.ndarray,
    reference_volume_node,
) -> str:
    """Write a display-oriented 2D mask into the structure's segment on one axial slice.

    Returns the segment id.

    The segment is created (DAP name, colour, terminology) if missing; other slices and segments
    are left as they are.
    """
    from AnatomyCommonLib.slicer_bridge import ensure_segment, write_segment_block

    segment_id = ensure_segment(segmentation_node, structure_description(structure), reference_volume_node)
    block = geometry.slice_block(np.asarray(mask_2d, dtype=np.uint8))
    offset = [0, 0, 0]
    offset[geometry.slice_axis] = int(slice_index)
    write_segment_block(segmentation_node, segment_id, block, offset, reference_volume_node)
    return segment_id
