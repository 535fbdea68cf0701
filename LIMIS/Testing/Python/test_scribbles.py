"""Scribbles (issue 12, item 2): through BBox2Mask.predict, the baseline, the session and undo."""

from __future__ import annotations

import numpy as np
import pytest
from limis_session_fixtures import BIG, SMALL, ellipse, organ_session, started_on_big, two_organ_slice

from LIMISLib.commands import api_command
from LIMISLib.exceptions import InvalidPromptError
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.slice_geometry import box_around_mask


def line_mask(shape, row: int, c0: int, c1: int, thickness: int = 1) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[row : row + thickness, c0:c1] = True
    return mask


def test_scribbleprompt_predict_crops_the_scribbles_with_the_image_and_widens_the_crop():
    torch = pytest.importorskip("torch")
    from LIMISLib import ScribblePromptBBox2Mask

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros_like(x[:, :1])

    image = np.linspace(-500, 500, 100 * 120, dtype=np.float32).reshape(100, 120)
    scribbles = np.zeros((2, 100, 120), np.float32)
    scribbles[0, 40:42, 30:50] = 1  # inside the box
    scribbles[1, 90:92, 100:118] = 1  # far outside box + margin: the crop must grow to hold it
    model = ScribblePromptBBox2Mask(Probe(), crop_margin_px=5)
    prediction = model.predict(image, (25, 30, 60, 60), scribbles=scribbles)
    x0, y0, x1, y1 = (int(v) for v in prediction.crop_xyxy)
    assert (x0, y0, x1, y1) == (20, 25, 118, 92)
    # the network's scribble channels are the cropped maps resized to 128 (bilinear, align_corners=False)
    crop = torch.from_numpy(scribbles[:, y0:y1, x0:x1].copy())[None]
    expected = torch.nn.functional.interpolate(crop, size=(128, 128), mode="bilinear", align_corners=False)
    assert torch.equal(seen[-1][:, 2:4], torch.clamp(expected, 0, 1))
    assert seen[-1][0, 3].sum() > 0 and seen[-1][0, 2].sum() > 0


def test_predict_refuses_scribbles_of_the_wrong_shape_or_range():
    model = IntensityBBox2Mask()
    image, big, _ = two_organ_slice()
    with pytest.raises(InvalidPromptError, match=r"\(2, 64, 80\)"):
        model.predict(image, box_around_mask(big, 2.0), scribbles=np.zeros((64, 80)))
    with pytest.raises(InvalidPromptError, match=r"\[0, 1\]"):
        model.predict(image, box_around_mask(big, 2.0), scribbles=np.full((2, 64, 80), 3.0))


def test_the_baseline_takes_a_positive_scribble_as_seed_and_a_negative_one_as_a_local_veto():
    image, big, small = two_organ_slice()
    model = IntensityBBox2Mask()
    box = (10.0, 10.0, 75.0, 55.0)  # holds both structures
    # a positive scribble on the small disc makes it a seed region: it is then kept
    scribbles = np.zeros((2, *image.shape), np.float32)
    scribbles[0][small & ellipse(image.shape, SMALL[0], SMALL[1], 2.0, 2.0)] = 1
    without = model.predict(image, box).mask()
    with_positive = model.predict(image, box, scribbles=scribbles).mask()
    assert with_positive[small].mean() >= without[small].mean() + 0.4
    # a negative scribble on the big ellipse's left end lowers the probability there only
    box = box_around_mask(big, 2.0)
    scribbles = np.zeros((2, *image.shape), np.float32)
    scribbles[1, 31:34, 28:31] = 1
    before = model.predict(image, box).probabilities
    after = model.predict(image, box, scribbles=scribbles).probabilities
    near = scribbles[1] > 0
    assert after[near].mean() < before[near].mean() - 0.3
    far = big & ~ellipse(image.shape, 29.5, 32.5, 10.0, 10.0)
    assert np.abs(after[far] - before[far]).mean() < 0.05  # a local veto, not a global one


def test_a_positive_scribble_on_a_missed_part_grows_the_box_and_the_mask():
    session, _, small = started_on_big()
    drawn = line_mask(small.shape, int(SMALL[1]), int(SMALL[0]) - 2, int(SMALL[0]) + 2)
    assert not session.current.mask[small].any()
    reply = session.apply(api_command("scribble", "scribble", mask=drawn, positive=True))
    assert reply.ok and session.current_index == 1 and "positive scribble (4 px)" in reply.message
    assert session.current.mask[drawn].all()  # enforced like clicks
    assert session.current.mask[small].sum() > drawn.sum()  # and the model saw it (the box grew)
    assert session.current.state.scribbles[0][drawn].all()


def test_a_negative_scribble_removes_its_pixels_and_a_later_scribble_wins_a_pixel_drawn_twice():
    session, big, _ = started_on_big()
    drawn = line_mask(big.shape, int(BIG[1]), int(BIG[0]) - 3, int(BIG[0]) + 3)
    assert session.current.mask[drawn].all()
    assert session.apply(api_command("scribble", "s", mask=drawn, positive=False)).ok
    assert not session.current.mask[drawn].any()
    assert session.apply(api_command("scribble", "s", mask=drawn, positive=True)).ok
    state = session.current.state
    assert state.scribbles[0][drawn].all() and not state.scribbles[1][drawn].any()
    assert session.current.mask[drawn].all()


def test_an_empty_or_misshaped_scribble_is_refused_and_changes_nothing():
    session, big, _ = started_on_big()
    for mask in (np.zeros(big.shape, bool), np.ones((3, 3), bool)):
        reply = session.apply(api_command("scribble", "s", mask=mask, positive=True))
        assert not reply.ok and session.current_index == 0


def test_volume_session_scribble_is_a_step_with_history_and_undo(tiny_phantom):
    session, truth, k = organ_session(tiny_phantom, "liver")
    before = session.active.current.mask.copy()
    missed = truth & ~before
    drawn = np.zeros_like(truth)
    rows, columns = np.nonzero(missed if missed.any() else truth)
    drawn[rows[:3], columns[:3]] = True
    reply = session.scribble(drawn, positive=True)
    assert reply.ok and reply.changed_slices == (k,)
    assert session.slice_mask(k)[drawn].all()
    assert "scribble" in session.log[-1][0]
    steps = session.active.current_index
    assert session.handle("undo", semantic=False).ok
    assert session.active.current_index == steps - 1
    assert np.array_equal(session.active.current.mask, before)
    assert session.active.current.state.scribbles is None
