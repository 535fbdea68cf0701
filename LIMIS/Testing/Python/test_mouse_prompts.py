"""Mouse prompts (issue 12, item 2): curve -> scribble pixels, placed points, "positive click here"."""

from __future__ import annotations

import numpy as np
import pytest
from limis_session_fixtures import organ_session

from LIMISLib.exceptions import InvalidPromptError
from LIMISLib.pointer_prompts import PlacedPoint, here_command
from LIMISLib.scribble_raster import rasterise_polyline


# ----------------------------------------------------------------------------- rasterising
def test_a_horizontal_line_marks_the_pixels_it_crosses():
    mask = rasterise_polyline([(2.5, 3.5), (7.5, 3.5)], (6, 10))
    expected = np.zeros((6, 10), bool)
    expected[3, 2:8] = True
    assert np.array_equal(mask, expected)


def test_a_diagonal_through_pixel_centres_marks_the_diagonal():
    mask = rasterise_polyline([(0.5, 0.5), (4.5, 4.5)], (5, 5))
    assert np.array_equal(mask, np.eye(5, dtype=bool))


def test_a_closed_triangle_includes_the_closing_edge_and_an_open_one_does_not():
    corners = [(1.5, 1.5), (6.5, 1.5), (1.5, 6.5)]
    closed = rasterise_polyline(corners, (8, 8), closed=True)
    opened = rasterise_polyline(corners, (8, 8), closed=False)
    column = np.zeros((8, 8), bool)
    column[1:7, 1] = True  # the closing edge from (1.5, 6.5) back to (1.5, 1.5)
    assert closed[column].all() and not opened[2:6, 1].any()
    assert np.array_equal(closed & ~column, opened & ~column)


def test_a_thick_line_is_a_band_and_parts_outside_the_slice_are_dropped():
    mask = rasterise_polyline([(-5.0, 4.5), (5.5, 4.5)], (9, 8), width_px=3.0)
    expected = np.zeros((9, 8), bool)
    expected[3:6, 0:6] = True  # rows 3-5 (centre row 4 +- 1), columns 0-5 plus the rounded end
    expected[3, 5] = expected[5, 5] = True
    expected[4, 6] = True
    assert np.array_equal(mask, expected)
    with pytest.raises(InvalidPromptError, match="outside"):
        rasterise_polyline([(-5, -5), (-1, -2)], (9, 8))


# ----------------------------------------------------------------------------- "click here"
@pytest.mark.parametrize(
    ("text", "positive"),
    [
        ("positive click here", True),
        ("Negative click here!", False),
        ("add a point here", True),
        ("not here", False),
        ("click here", False),  # the sign of the list the point was placed in
        ("click at the last point", False),
    ],
)
def test_here_phrases_click_at_the_last_placed_point(text, positive):
    command = here_command(text, PlacedPoint(12.5, 20.5, 7, positive=False))
    assert command.kind == "point_click"
    assert (command.args["x"], command.args["y"], command.args["slice"]) == (12.5, 20.5, 7)
    assert command.args["positive"] is positive


@pytest.mark.parametrize(
    "text", ["segment the liver", "positive click in cell 6", "where is it", "here we go"]
)
def test_other_sentences_are_not_here_commands(text):
    assert here_command(text, PlacedPoint(1.0, 1.0, 0, positive=True)) is None


def test_typed_positive_click_here_uses_the_last_placed_point(tiny_phantom):
    session, truth, k = organ_session(tiny_phantom, "spleen")
    rows, columns = np.nonzero(truth)
    x, y = float(columns[-1]) + 0.5, float(rows[-1]) + 0.5
    session.place_point(x, y, k, positive=True)
    steps = len(session.active.steps)
    reply = session.handle("positive click here", semantic=False)
    assert reply.ok, reply.message
    assert len(session.active.steps) == steps + 1
    assert session.active.current.state.clicks[-1] == (x, y, True)


def test_click_here_without_a_point_or_on_another_slice_is_refused_and_changes_nothing(tiny_phantom):
    session, _, k = organ_session(tiny_phantom, "spleen")
    steps = len(session.active.steps)
    reply = session.handle("positive click here", semantic=False)
    assert not reply.ok and "No point placed" in reply.message
    session.place_point(10.5, 10.5, k + 1, positive=True)
    reply = session.handle("positive click here", semantic=False)
    assert not reply.ok and f"slice {k + 1}" in reply.message
    assert len(session.active.steps) == steps
    with pytest.raises(InvalidPromptError, match="outside"):
        session.place_point(-1.0, 3.0, k, positive=True)
