"""The 16-cell click grid over the box ("positive click in cell 6").

The dissertation offers "a foreground/background click in one of 16 locations organized as a
regular grid" without publishing the grid. Our design, documented for the user on screen:

* the box is divided into a 4 x 4 grid of equal cells;
* cells are numbered 1-16 **row by row as seen in the slice view**: 1-4 is the top row (left to
  right), 13-16 the bottom row;
* a grid click lands on the **centre of its cell** (continuous pixel coordinates, see
  :mod:`LIMISLib.slice_geometry`), so a click always lies inside the box and two cells never share
  a click position.
"""

from __future__ import annotations

from .model_interfaces import Box, Point

GRID_SIZE = 4
N_CELLS = GRID_SIZE * GRID_SIZE


def require_cell(cell: int) -> int:
    """``cell`` as an int in 1..16, or ``ValueError`` saying how cells are numbered."""
    try:
        number = int(cell)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= N_CELLS or number != cell:
        raise ValueError(
            f"Grid cells are numbered 1 to {N_CELLS} row by row (1-4 top row, 13-16 bottom row); "
            f"got {cell!r}."
        )
    return number


def cell_row_column(cell: int) -> tuple[int, int]:
    """(row, column), both 0..3 from the top-left, of a cell number 1..16."""
    index = require_cell(cell) - 1
    return index // GRID_SIZE, index % GRID_SIZE


def cell_bounds(box: Box, cell: int) -> Box:
    """The cell's own rectangle ``(x0, y0, x1, y1)`` inside the box."""
    row, column = cell_row_column(cell)
    x0, y0, x1, y1 = box
    width, height = (x1 - x0) / GRID_SIZE, (y1 - y0) / GRID_SIZE
    return (x0 + column * width, y0 + row * height, x0 + (column + 1) * width, y0 + (row + 1) * height)


def cell_center(box: Box, cell: int) -> Point:
    """Where a click in ``cell`` lands: the centre of the cell."""
    cx0, cy0, cx1, cy1 = cell_bounds(box, cell)
    return ((cx0 + cx1) / 2.0, (cy0 + cy1) / 2.0)


def cell_of_point(box: Box, point: Point) -> int | None:
    """The cell number containing ``point`` (x, y), or None outside the box."""
    x0, y0, x1, y1 = box
    x, y = point
    if not (x0 <= x < x1 and y0 <= y < y1):
        return None
    column = min(GRID_SIZE - 1, int((x - x0) / (x1 - x0) * GRID_SIZE))
    row = min(GRID_SIZE - 1, int((y - y0) / (y1 - y0) * GRID_SIZE))
    return row * GRID_SIZE + column + 1


def grid_lines(box: Box) -> list[tuple[Point, Point]]:
    """The 3 inner vertical and 3 inner horizontal lines of the grid as (start, end) points."""
    x0, y0, x1, y1 = box
    lines = []
    for n in range(1, GRID_SIZE):
        x = x0 + (x1 - x0) * n / GRID_SIZE
        lines.append(((x, y0), (x, y1)))
    for n in range(1, GRID_SIZE):
        y = y0 + (y1 - y0) * n / GRID_SIZE
        lines.append(((x0, y), (x1, y)))
    return lines


def cell_label_positions(box: Box) -> dict[int, Point]:
    """Where to draw each cell's number (its centre), for the on-screen grid."""
    return {cell: cell_center(box, cell) for cell in range(1, N_CELLS + 1)}
