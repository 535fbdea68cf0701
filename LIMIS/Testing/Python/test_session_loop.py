"""The LIMIS interaction loop on one slice: history, branching, and what each action changes."""

from __future__ import annotations

import numpy as np
import pytest
from limis_session_fixtures import (
    BIG,
    SMALL,
    GradientBBox2Mask,
    RecordingBBox2Mask,
    StubbornBBox2Mask,
    two_organ_slice,
)

from LIMISLib.click_grid import cell_center, cell_of_point, cell_row_column, grid_lines
from LIMISLib.command_grammar import api_command
from LIMISLib.ct_windows import PRESETS, window_for_structure
from LIMISLib.exceptions import ImageDimensionError, InvalidPromptError
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import InteractionSession, SessionConfig, components_by_size

BIG_BOX = (BIG[0] - BIG[2] - 2, BIG[1] - BIG[3] - 2, BIG[0] + BIG[2] + 2, BIG[1] + BIG[3] + 2)


def session(model=None, *, image=None, propose_default=False, **config) -> InteractionSession:
    image = two_organ_slice()[0] if image is None else image
    return InteractionSession(
        image,
        model or IntensityBBox2Mask(),
        target="liver",
        config=SessionConfig(propose_default_adaptation=propose_default, **config),
    )


def run(s: InteractionSession, *commands: str):
    replies = [s.handle(text, semantic=False) for text in commands]
    for reply in replies:
        assert reply.ok, reply.message
    return replies[-1]


def dice(a, b) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


# ---------------------------------------------------------------------------- history
def test_the_first_segmentation_is_step_0_and_the_default_adaptation_is_only_a_proposal():
    image, big, _ = two_organ_slice()
    s = session(image=image, propose_default=True)
    reply = s.start(BIG_BOX)
    assert [step.index for step in s.steps] == [0] and s.pending == "proposal"
    candidate = reply.preview
    assert candidate.index == -1 and candidate.window == window_for_structure("liver")
    assert candidate.box_xyxy == pytest.approx(
        tuple(v + d for v, d in zip(BIG_BOX, (-10, -10, 10, 10), strict=True))
    )
    assert dice(s.steps[0].mask, big) > 0.75

    kept = run(s, "accept")
    assert kept.step is candidate and candidate.index == 1 and candidate.parent == 0
    assert s.current_index == 1 and s.pending is None


def test_rejecting_the_default_adaptation_adds_no_step():
    s = session(propose_default=True)
    s.start(BIG_BOX)
    run(s, "reject")
    assert len(s.steps) == 1 and s.current_index == 0 and s.pending is None


def test_a_new_command_instead_of_an_answer_drops_the_proposal_and_says_so():
    s = session(propose_default=True)
    s.start(BIG_BOX)
    reply = run(s, "raise the threshold")
    assert "Did not keep the proposal" in reply.message
    assert [step.parent for step in s.steps] == [None, 0]


def test_reverting_then_acting_branches_from_the_old_step_and_keeps_every_step():
    s = session()
    s.start(BIG_BOX)
    run(s, "raise the threshold", "raise the threshold", "revert to step 1", "move the box left 2")
    assert [step.parent for step in s.steps] == [None, 0, 1, 1]
    assert [step.index for step in s.branch()] == [0, 1, 3]
    assert s.steps[2].threshold == pytest.approx(0.7)
    assert s.current.threshold == pytest.approx(0.6)
    run(s, "revert to step 2")
    assert s.current_index == 2 and len(s.steps) == 4


def test_undo_goes_to_the_parent_step_not_to_the_previous_index():
    s = session()
    s.start(BIG_BOX)
    run(s, "raise the threshold", "raise the threshold", "revert to step 1", "lower the threshold", "undo")
    assert s.current_index == 1


def test_any_step_can_be_the_final_one_and_the_result_is_its_mask():
    s = session()
    s.start(BIG_BOX)
    run(s, "raise the threshold", "raise the threshold")
    reply = run(s, "finish with step 1")
    assert s.final_index == 1 and s.chosen is s.steps[1]
    assert "step 1" in reply.message
    run(s, "finish")
    assert s.final_index == 2


def test_every_model_run_gets_the_parent_prediction_as_previous_except_the_first():
    model = RecordingBBox2Mask()
    s = session(model)
    s.start(BIG_BOX)
    run(s, "move the box up 2", "center click")
    assert model.calls[0]["previous"] is None
    assert model.calls[1]["previous"] is s.steps[0].prediction
    assert model.calls[2]["previous"] is s.steps[1].prediction


# ---------------------------------------------------------------------------- what each action changes
def test_a_higher_threshold_never_grows_the_mask_and_reuses_the_probability_map():
    model = RecordingBBox2Mask(GradientBBox2Mask())
    s = session(model)
    s.start(BIG_BOX)
    calls = len(model.calls)
    for text in ("raise the threshold", "threshold 0.75", "raise the threshold by 0.05", "threshold 0.95"):
        before = s.current
        run(s, text)
        after = s.current
        assert after.threshold > before.threshold
        assert not np.any(after.mask & ~before.mask)
        assert after.prediction is before.prediction
    assert len(model.calls) == calls


def test_a_negative_click_never_adds_its_pixel_even_if_the_model_insists():
    s = session(StubbornBBox2Mask())
    s.start(BIG_BOX)
    for cell in (1, 6, 16):
        run(s, f"negative click in cell {cell}")
        x, y = cell_center(s.current.box_xyxy, cell)
        assert not s.current.mask[int(y), int(x)]
    run(s, "move the box right 1", "raise the threshold")  # later steps keep the rule
    for click in s.current.state.negative_clicks:
        assert not s.current.mask[int(click[1]), int(click[0])]


def test_a_positive_click_always_puts_its_pixel_in_the_mask():
    image, _, _ = two_organ_slice()
    image[:] = -100.0  # nothing looks like an organ: the model gives an (almost) empty mask
    s = session(image=image)
    s.start(BIG_BOX)
    run(s, "positive click in cell 11", "threshold 0.99")
    x, y = cell_center(s.current.box_xyxy, 11)
    assert s.current.mask[int(y), int(x)]


def test_remove_component_removes_exactly_that_component_and_keeps_it_removed():
    image, big, small = two_organ_slice()
    s = session(IntensityBBox2Mask(connected_to_seeds=False, smoothing_px=0), image=image)
    box = (BIG_BOX[0], BIG_BOX[1], SMALL[0] + SMALL[2] + 3, BIG_BOX[3])
    s.start(box, window=PRESETS["liver"])
    components = components_by_size(s.current.mask)
    assert len(components) >= 2
    assert (components[0] & big).sum() > 0.7 * big.sum() and not (components[0] & small).any()
    assert (components[1] & small).sum() > 0.5 * small.sum() and not (components[1] & big).any()
    before = s.current.mask
    run(s, "remove component 2")
    assert np.array_equal(s.current.mask, before & ~components[1])
    run(s, "move the box up 1")  # a new model run: the removed component stays removed
    assert not np.any(s.current.mask & components[1])


def test_keep_largest_removes_every_other_component():
    image, _, _ = two_organ_slice()
    s = session(IntensityBBox2Mask(connected_to_seeds=False, smoothing_px=0), image=image)
    s.start((BIG_BOX[0], BIG_BOX[1], SMALL[0] + SMALL[2] + 3, BIG_BOX[3]), window=PRESETS["liver"])
    largest = components_by_size(s.current.mask)[0]
    run(s, "keep the largest component")
    assert np.array_equal(s.current.mask, largest)


def test_moving_the_box_uses_screen_directions_and_resizing_grows_every_side():
    s = session()
    s.start(BIG_BOX)
    x0, y0, x1, y1 = BIG_BOX
    run(s, "move the box up 3")
    assert s.current.box_xyxy == pytest.approx((x0, y0 - 3, x1, y1 - 3))
    run(s, "move the box right by 4 pixels")
    assert s.current.box_xyxy == pytest.approx((x0 + 4, y0 - 3, x1 + 4, y1 - 3))
    run(s, "enlarge the box by 2 pixels")
    assert s.current.box_xyxy == pytest.approx((x0 + 2, y0 - 5, x1 + 6, y1 - 1))
    run(s, "shrink the box by 1 pixel")
    assert s.current.box_xyxy == pytest.approx((x0 + 3, y0 - 4, x1 + 5, y1 - 2))


def test_box_moves_in_millimetres_use_the_pixel_spacing():
    s = InteractionSession(
        two_organ_slice()[0],
        IntensityBBox2Mask(),
        target="liver",
        pixel_spacing_mm=(2.0, 2.0),
        config=SessionConfig(propose_default_adaptation=False),
    )
    s.start(BIG_BOX)
    run(s, "move the box left by 6 mm")
    assert s.current.box_xyxy[0] == pytest.approx(BIG_BOX[0] - 3)


def test_grid_cells_are_numbered_row_by_row_from_the_top_left_and_clicks_land_on_cell_centres():
    box = (10.0, 20.0, 50.0, 60.0)
    assert [cell_row_column(c) for c in (1, 4, 5, 16)] == [(0, 0), (0, 3), (1, 0), (3, 3)]
    assert cell_center(box, 1) == (15.0, 25.0) and cell_center(box, 16) == (45.0, 55.0)
    assert all(cell_of_point(box, cell_center(box, c)) == c for c in range(1, 17))
    assert len(grid_lines(box)) == 6
    with pytest.raises(ValueError, match="1 to 16"):
        cell_row_column(17)
    model = RecordingBBox2Mask()
    s = session(model)
    s.start(BIG_BOX)
    run(s, "positive click in cell 6", "negative click in cell 16")
    assert model.calls[-1]["positive"] == [cell_center(BIG_BOX, 6)]
    assert model.calls[-1]["negative"] == [cell_center(BIG_BOX, 16)]


def test_center_click_is_a_positive_click_in_the_middle_of_the_box():
    model = RecordingBBox2Mask()
    s = session(model)
    s.start(BIG_BOX)
    run(s, "center click")
    assert model.calls[-1]["positive"] == [((BIG_BOX[0] + BIG_BOX[2]) / 2, (BIG_BOX[1] + BIG_BOX[3]) / 2)]


def test_window_commands_change_only_the_window():
    model = RecordingBBox2Mask()
    s = session(model)
    s.start(BIG_BOX)
    run(s, "bone window")
    assert s.current.window == PRESETS["bone"] and s.current.box_xyxy == BIG_BOX
    run(s, "window 400 40")
    assert (s.current.window.width_hu, s.current.window.level_hu) == (400, 40)
    assert model.calls[-1]["window"] is s.current.window


def test_critical_region_questions_become_clicks_in_the_regions():
    model = RecordingBBox2Mask(GradientBBox2Mask())
    s = session(model)
    s.start(BIG_BOX)
    reply = run(s, "critical regions")
    assert s.pending == "question" and "yes/no" in reply.question
    regions = list(s._pending.regions)
    assert 1 <= len(regions) <= 3
    for region in regions:
        x, y = region.point
        assert abs(s.current.prediction.probabilities[int(y), int(x)] - s.current.threshold) < 0.45
    answers = [True, False, True][: len(regions)]
    for answer in answers:
        reply = s.handle("yes" if answer else "no", semantic=False)
    step = reply.step
    assert step is s.current and step.command.args["answers"] == answers
    expected_clicks = [(r.point[0], r.point[1], a) for r, a in zip(regions, answers, strict=True)]
    assert [tuple(c) for c in step.state.clicks] == expected_clicks


def test_examples_are_previews_until_one_is_chosen():
    s = session()
    s.start(BIG_BOX)
    reply = run(s, "show examples")
    assert len(s.steps) == 1 and s.pending == "examples" and len(reply.options) >= 5
    chosen = reply.options[2]
    run(s, "take option 3")
    assert s.current is chosen and chosen.parent == 0 and len(s.steps) == 2


def test_ensemble_averages_the_box_centre_click_and_window_variants():
    s = session()
    s.start(BIG_BOX)
    base = s.current
    members = [
        s._candidate(api_command("resize_box", pixels=10), base),
        s._candidate(api_command("center_click"), base),
        s._candidate(api_command("window", preset="alternative"), base),
    ]
    run(s, "ensemble")
    expected = np.mean([m.prediction.probabilities for m in members], axis=0)
    assert np.allclose(s.current.prediction.probabilities, expected, atol=1e-6)
    assert np.array_equal(s.current.mask, expected >= s.current.threshold)


# ---------------------------------------------------------------------------- forgiving
def test_user_errors_are_replies_that_change_nothing():
    s = session()
    s.start(BIG_BOX)
    for text in ("revert to step 9", "remove component 5", "reject", "yes", "what is the weather like"):
        reply = s.handle(text, semantic=False)
        assert not reply.ok or "Nothing" in reply.message, text
        assert len(s.steps) == 1 and s.current_index == 0


def test_unknown_commands_come_back_with_suggestions():
    s = session()
    s.start(BIG_BOX)
    reply = s.handle("flibber the gnarf", semantic=False)
    assert not reply.ok and "Did you mean" in reply.message


def test_undo_first_cancels_what_is_pending():
    s = session(propose_default=True)
    s.start(BIG_BOX)
    run(s, "undo")
    assert s.pending is None and len(s.steps) == 1 and s.current_index == 0


def test_sessions_need_a_2d_slice_and_a_box_or_a_detector():
    with pytest.raises(ImageDimensionError):
        InteractionSession(np.zeros((4, 5, 6)), IntensityBBox2Mask(), target="liver")
    with pytest.raises(InvalidPromptError, match="draw a box"):
        session().start()


class _BoxDetector:
    name = "stub detector"

    def __init__(self, box):
        self.box = box
        self.calls = 0

    def detect(self, image_hu, target, *, candidates=None, score_threshold=0.3):
        from LIMISLib.exceptions import StructureNotFoundError
        from LIMISLib.model_interfaces import Detection

        self.calls += 1
        if self.box is None:
            raise StructureNotFoundError(f"No {target} above the score threshold on this slice.")
        return Detection(target, self.box, 0.9)


def test_segment_asks_the_lang2bbox_for_the_box_and_a_miss_is_a_reply_not_a_crash():
    detector = _BoxDetector(BIG_BOX)
    s = InteractionSession(two_organ_slice()[0], IntensityBBox2Mask(), target="liver", lang2bbox=detector)
    reply = s.handle("segment the liver", semantic=False)
    assert reply.ok and detector.calls == 1 and s.steps[0].box_xyxy == BIG_BOX
    assert "stub detector" in s.steps[0].action and s.pending == "proposal"
    detector.box = None
    reply = s.handle("segment the liver", semantic=False)
    assert not reply.ok and "No liver" in reply.message and len(s.steps) == 1
