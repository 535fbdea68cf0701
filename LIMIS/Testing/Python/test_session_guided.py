"""The four guided strategies: confirmable sequences of real, revertible session steps."""

from __future__ import annotations

import pytest
from limis_session_fixtures import BIG, GradientBBox2Mask, two_organ_slice

from LIMISLib.ct_windows import window_for_structure
from LIMISLib.guided_strategies import STRATEGIES, stage_kinds
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import InteractionSession, SessionConfig

BOX = (BIG[0] - BIG[2] - 2, BIG[1] - BIG[3] - 2, BIG[0] + BIG[2] + 2, BIG[1] + BIG[3] + 2)

EXPECTED_STAGES = {
    "wrong_part": ["center_click", "window", "grid_clicks"],
    "oversegmented": ["threshold", "critical_regions", "grid_clicks"],
    "undersegmented": ["resize_box", "threshold", "critical_regions"],
    "low_contrast": ["window"],
}


def started(model=None) -> InteractionSession:
    s = InteractionSession(
        two_organ_slice()[0],
        model or GradientBBox2Mask(),
        target="liver",
        config=SessionConfig(propose_default_adaptation=False),
    )
    s.start(BOX)
    return s


def say(s: InteractionSession, text: str):
    reply = s.handle(text, semantic=False)
    assert reply.ok, reply.message
    return reply


def complete(s: InteractionSession) -> list[str]:
    """Accept every proposal, answer yes to every question, one grid click then 'done'."""
    seen = []
    for _ in range(20):
        if s.strategy is None and s.pending is None:
            break
        if s.pending == "proposal":
            say(s, "accept")
            seen.append("proposal")
        elif s.pending == "question":
            say(s, "yes")
            seen.append("question")
        elif s.pending == "grid":
            say(s, "negative click in cell 1")
            say(s, "done")
            seen.append("grid")
    return seen


def test_the_strategies_are_the_dissertation_sequences():
    assert {problem: stage_kinds(problem) for problem in STRATEGIES} == EXPECTED_STAGES


@pytest.mark.parametrize("problem", list(EXPECTED_STAGES))
def test_accepting_every_stage_makes_one_real_step_per_stage_in_order(problem):
    s = started()
    phrases = {
        "wrong_part": "wrong part",
        "oversegmented": "you over-segmented",
        "undersegmented": "you under-segmented",
        "low_contrast": "the organ is hypodense",
    }
    reply = say(s, phrases[problem])
    assert reply.command.args == {"problem": problem}
    complete(s)
    made = [step.command.kind for step in s.steps[1:]]
    expected = [kind.replace("grid_clicks", "grid_click") for kind in EXPECTED_STAGES[problem]]
    assert made == expected
    assert [step.parent for step in s.steps] == [None, *range(len(s.steps) - 1)]
    assert s.strategy is None and s.pending is None


def test_oversegmented_raises_the_threshold_by_a_tenth_and_undersegmented_enlarges_then_lowers():
    s = started()
    say(s, "you over-segmented")
    assert s.displayed.threshold == pytest.approx(0.6) and s.current.threshold == pytest.approx(0.5)
    s = started()
    say(s, "you under-segmented")
    x0, y0, x1, y1 = BOX
    assert s.displayed.box_xyxy == pytest.approx((x0 - 10, y0 - 10, x1 + 10, y1 + 10))
    say(s, "accept")
    assert s.displayed.threshold == pytest.approx(0.4)


def test_wrong_part_proposes_the_organ_window_and_low_contrast_a_window_on_the_structure():
    s = started(IntensityBBox2Mask())
    say(s, "wrong part")
    say(s, "accept")  # centre click
    assert s.displayed.window == window_for_structure("liver")
    s = started(IntensityBBox2Mask())
    say(s, "low contrast")
    window = s.displayed.window
    assert window.name == "adapted" and window.width_hu == 150
    assert 40 <= window.level_hu <= 80  # the structure's median HU (60 +- noise), not a preset


def test_rejecting_a_stage_skips_it_without_a_step():
    s = started()
    say(s, "you under-segmented")
    say(s, "reject")  # no bigger box
    assert len(s.steps) == 1 and s.pending == "proposal"
    assert s.displayed.threshold == pytest.approx(0.4) and s.displayed.box_xyxy == BOX


def test_another_command_stops_the_strategy_but_keeps_its_steps():
    s = started()
    say(s, "you over-segmented")
    say(s, "accept")
    reply = say(s, "move the box left 2")
    assert "Stopped the guided strategy" in reply.message
    assert s.strategy is None and [step.command.kind for step in s.steps] == [
        "segment",
        "threshold",
        "move_box",
    ]


def test_steps_of_a_strategy_can_be_reverted_like_any_other():
    s = started()
    say(s, "you over-segmented")
    complete(s)
    say(s, "revert to step 1")
    assert s.current.command.kind == "threshold"
    say(s, "undo")
    assert s.current_index == 0
