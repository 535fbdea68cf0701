"""Mouse points anywhere on the slice (issue 12, item 2): positive/negative clicks as new steps."""

from __future__ import annotations

import numpy as np
from limis_session_fixtures import SMALL, organ_session, started_on_big

from LIMISLib.commands import api_command


def test_a_positive_point_outside_the_box_grows_the_box_and_is_in_the_mask():
    session, _, small = started_on_big()
    x, y = SMALL[0], SMALL[1]  # the small disc's centre, outside the box around the big ellipse
    x0, y0, x1, y1 = session.current.box_xyxy
    assert not (x0 <= x < x1 and y0 <= y < y1)
    reply = session.apply(api_command("point_click", "click", x=x, y=y, positive=True))
    assert reply.ok and session.current_index == 1
    nx0, ny0, nx1, ny1 = session.current.box_xyxy
    assert nx0 <= x - 5 and nx1 >= x + 5 and ny0 <= y0 and ny1 >= y1  # grown by the 5 px margin, not shrunk
    assert session.current.mask[int(y), int(x)]
    # the model saw the point (the box grew): more of the disc than the one enforced pixel
    assert session.current.mask[small].sum() > 1


def test_a_negative_point_removes_its_pixel_and_keeps_the_box():
    session, big, _ = started_on_big()
    box = session.current.box_xyxy
    rows, columns = np.nonzero(session.current.mask & big)
    y, x = int(rows[len(rows) // 2]), int(columns[len(rows) // 2])
    assert session.current.mask[y, x]
    assert session.apply(api_command("point_click", "click", x=x + 0.5, y=y + 0.5, positive=False)).ok
    assert not session.current.mask[y, x]
    assert session.current.box_xyxy == box


def test_a_point_off_the_image_is_refused_and_changes_nothing():
    session, _, _ = started_on_big()
    reply = session.apply(api_command("point_click", "click", x=500.0, y=3.0, positive=True))
    assert not reply.ok and "outside" in reply.message and session.current_index == 0


def test_volume_session_click_adds_a_step_on_the_active_slice_and_undo_removes_it(tiny_phantom):
    session, truth, k = organ_session(tiny_phantom, "spleen")
    rows, columns = np.nonzero(truth)  # LPS: display = array slice
    x, y = float(columns[0]) + 0.5, float(rows[0]) + 0.5
    reply = session.click(x, y, positive=True)
    assert reply.ok and reply.changed_slices == (k,)
    assert session.slice_mask(k)[int(y), int(x)]
    assert session.handle("undo", semantic=False).ok
    assert session.active.current_index == 0
