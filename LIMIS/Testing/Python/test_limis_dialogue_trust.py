"""Issue 11: the symptoms a clinician met in the typed loop, one test each (written before the fix)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from limis_session_fixtures import BIG, GradientBBox2Mask, two_organ_slice

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.image_io import write_volume
from LIMISLib.command_grammar import ParseContext, parse_command
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import InteractionSession, SessionConfig
from LIMISLib.slice_geometry import box_around_mask
from LIMISLib.volume_session import VolumeSession

ROOT = Path(__file__).resolve().parents[3]
BIG_BOX = (BIG[0] - BIG[2] - 2, BIG[1] - BIG[3] - 2, BIG[0] + BIG[2] + 2, BIG[1] + BIG[3] + 2)


def rules(text: str, pending: str | None = None):
    return parse_command(text, ParseContext(pending=pending), semantic=False)


def slice_session(model=None, *, propose_default=False) -> InteractionSession:
    s = InteractionSession(
        two_organ_slice()[0],
        model or IntensityBBox2Mask(),
        target="liver",
        config=SessionConfig(propose_default_adaptation=propose_default),
    )
    s.start(BIG_BOX)
    return s


def with_steps(n: int) -> InteractionSession:
    """A session with steps 0..n on one branch (each step a threshold change)."""
    s = slice_session()
    for k in range(n):
        assert s.handle(f"set the threshold to {0.3 + 0.05 * k:.2f}", semantic=False).ok
    assert s.current_index == n
    return s


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=0, sex="M", orientation="LPS", n_lesions=0)


def liver_session(phantom) -> VolumeSession:
    truth = phantom.labels.array == label_id("liver")
    session = VolumeSession(phantom.ct, IntensityBBox2Mask())
    present = [k for k in range(session.geometry.n_slices) if session.geometry.extract(truth, k).any()]
    session.set_active_slice(present[len(present) // 2])
    session.segment("liver", box_xyxy=box_around_mask(session.geometry.extract(truth, session.active_slice)))
    assert session.handle("accept", semantic=False).ok
    return session


def fingerprint(session: VolumeSession) -> str:
    """Everything a failed command must leave unchanged: target, slices, steps, pending, mask volume."""
    digest = hashlib.sha256()
    digest.update(repr((session.target, session.active_slice, sorted(session.sessions))).encode())
    for index in sorted(session.sessions):
        s = session.sessions[index]
        digest.update(repr((index, s.current_index, s.final_index, s.pending, len(s.steps))).encode())
        for step in s.steps:
            digest.update(step.mask.tobytes())
    digest.update(session.mask_volume().array.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- negation and scope
@pytest.mark.parametrize(
    "text", ["stop propagating", "don't propagate", "no more propagation", "stop", "do not undo"]
)
def test_negated_or_stop_commands_never_trigger_the_action(text):
    command = rules(text)
    assert command.kind not in {"propagate", "undo"}, command
    assert command.kind != "unknown", f"{text!r} should be understood as stop/cancel"


def test_stop_propagating_adds_no_slice(phantom):
    session = liver_session(phantom)
    before = session.segmented_slices()
    session.handle("stop propagating", semantic=False)
    assert session.segmented_slices() == before


# ---------------------------------------------------------------------------- impossible values
def test_go_back_to_step_minus_one_says_which_steps_exist_and_changes_nothing():
    s = with_steps(2)
    reply = s.handle("go back to step -1", semantic=False)
    assert not reply.ok and s.current_index == 2
    assert "0 to 2" in reply.message


def test_propagate_zero_slices_says_what_is_possible_and_propagates_nothing(phantom):
    session = liver_session(phantom)
    assert rules("propagate up 0 slices").args.get("slices") == 0
    before = fingerprint(session)
    reply = session.handle("propagate up 0 slices", semantic=False)
    assert not reply.ok and "at least one slice" in reply.message
    assert fingerprint(session) == before


def test_an_unknown_window_name_lists_the_windows_instead_of_applying_another():
    s = slice_session()
    before = s.current.window
    reply = s.handle("spine window", semantic=False)
    assert not reply.ok, reply.message
    assert s.current.window == before and len(s.steps) == 1
    for name in ("bone", "liver", "lung"):
        assert name in reply.message


@pytest.mark.parametrize("cell", [0, 17, 40])
def test_a_grid_cell_outside_1_to_16_says_what_is_possible(cell):
    s = slice_session()
    reply = s.handle(f"positive click in cell {cell}", semantic=False)
    assert not reply.ok and "1" in reply.message and "16" in reply.message
    assert len(s.steps) == 1


# ---------------------------------------------------------------------------- counts and ordinals
def test_undo_three_times_undoes_three_steps():
    assert (rules("undo 3 times").kind, rules("undo 3 times").args) == ("undo", {"count": 3})
    s = with_steps(4)
    assert s.handle("undo 3 times", semantic=False).ok
    assert s.current_index == 1


def test_go_back_two_steps_is_undo_twice_not_revert_to_step_two():
    command = rules("go back 2 steps")
    assert (command.kind, command.args) == ("undo", {"count": 2})
    s = with_steps(5)
    s.handle("revert to step 4", semantic=False)  # current = 4 on a branch 0-1-2-3-4
    assert s.handle("go back 2 steps", semantic=False).ok
    assert s.current_index == 2


def test_undo_more_steps_than_exist_says_how_many_and_changes_nothing():
    s = with_steps(2)
    reply = s.handle("undo 5 times", semantic=False)
    assert not reply.ok and "2" in reply.message and s.current_index == 2


def test_revert_to_the_fourth_step_reverts_to_step_4():
    command = rules("revert to the fourth step")
    assert (command.kind, command.args) == ("revert", {"step": 4})


# ---------------------------------------------------------------------------- terse replies
@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("lgtm", "proposal", "accept", {}),
        ("seg liver", None, "segment", {"target": "liver"}),
        ("ctrl z", None, "undo", {}),
        ("nah not part of it", "question", "answer", {"value": False}),
        ("bone wndw", None, "window", {"preset": "bone"}),
        ("stop", "proposal", "reject", {}),
        ("thr up", None, "threshold", {"delta": 0.1}),
        ("seg lft kidney", None, "segment", {"target": "kidney left"}),
    ],
)
def test_terse_replies_are_understood(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind, command
    assert {k: command.args.get(k) for k in args} == args


# ---------------------------------------------------------------------------- pending dialogue
def test_a_reply_not_understood_keeps_the_pending_proposal_and_asks_again():
    s = InteractionSession(two_organ_slice()[0], IntensityBBox2Mask(), target="liver", config=SessionConfig())
    s.start(BIG_BOX)
    assert s.pending == "proposal"
    candidate = s.displayed
    reply = s.handle("hmm", semantic=False)
    assert s.pending == "proposal" and s.displayed is candidate
    assert "Did not keep" not in reply.message and "accept" in reply.message.lower()
    assert s.handle("accept", semantic=False).ok and len(s.steps) == 2


def test_a_typo_during_the_critical_region_questions_keeps_the_answers_given():
    s = slice_session(GradientBBox2Mask())
    reply = s.handle("critical regions", semantic=False)
    assert s.pending == "question", reply.message
    regions = list(s._pending.regions)
    answers = [True] if len(regions) > 1 else []
    for _ in answers:
        assert s.handle("yes", semantic=False).ok
    question = s.pending_message
    again = s.handle("flibbertigibbet", semantic=False)
    assert s.pending == "question" and s._pending.answers == answers and s.pending_message == question
    assert again.question == question
    for _ in regions[len(answers) :]:
        reply = s.handle("no", semantic=False)
    expected = answers + [False] * (len(regions) - len(answers))
    assert reply.step.command.args["answers"] == expected


# ---------------------------------------------------------------------------- atomic commands
def test_a_failed_switch_to_another_organ_changes_nothing(phantom):
    session = liver_session(phantom)  # no Lang2BBox: 'segment the spleen' cannot find a box
    before = fingerprint(session)
    reply = session.handle("segment the spleen", semantic=False)
    assert not reply.ok
    assert session.target == "liver" and fingerprint(session) == before


def test_finish_with_an_earlier_step_writes_that_step_not_the_displayed_one(phantom):
    session = liver_session(phantom)
    assert session.handle("raise the threshold", semantic=False).ok
    active = session.active
    assert active.current_index == 2
    reply = session.handle("finish with step 1", semantic=False)
    written = session.masks_to_write(reply)
    assert set(written) == {session.active_slice}
    np.testing.assert_array_equal(written[session.active_slice], active.steps[1].mask)
    assert not np.array_equal(active.steps[1].mask, active.steps[2].mask)


# ---------------------------------------------------------------------------- command line
def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(
        str(ROOT / d) for d in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")
    )
    env = {**os.environ, "SLICER_ANATOMY_WEIGHTS_DIR": str(tmp_path / "weights"), "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "LIMISLib", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_replay_exits_non_zero_and_prints_every_failure_with_its_reason(phantom, tmp_path):
    write_volume(phantom.ct, tmp_path / "ct.nii.gz")
    (tmp_path / "s.txt").write_text("segment the liver\nraise the threshold\n")
    out = str(tmp_path / "o")
    arguments = ["replay", str(tmp_path / "s.txt"), "--ct", str(tmp_path / "ct.nii.gz"), "--out", out]
    result = _cli([*arguments, "--model", "baseline", "--rules-only"], tmp_path)
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "draw the box" in output  # line 1: no detector and no labels
    assert "not segmented yet" in output  # line 2: nothing to raise the threshold of
    assert "2 of 2 lines failed" in output


def test_models_verify_says_what_is_installed_and_what_is_missing(tmp_path):
    result = _cli(["models", "verify"], tmp_path)
    assert result.returncode != 0
    for name in ("grounding-dino-tiny", "scribbleprompt-unet"):
        assert name in result.stdout and "not installed" in result.stdout


def test_parse_whose_rules_match_does_not_load_the_sentence_model(tmp_path):
    code = (
        "import sys, json; from LIMISLib.__main__ import main; main(['parse', 'bone', 'window']);"
        "print(json.dumps('sentence_transformers' in sys.modules))"
    )
    path = os.pathsep.join(
        str(ROOT / d) for d in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) is False


# ---------------------------------------------------------------------------- the command registry
def test_every_registered_example_parses_to_its_kind_by_the_rules_alone():
    from LIMISLib.commands import COMMANDS

    for kind, spec in COMMANDS.items():
        for example in spec.examples:
            assert rules(example).kind == kind, (kind, example, rules(example))


def test_every_kind_has_a_handler_and_a_help_line():
    from LIMISLib.command_grammar import help_text
    from LIMISLib.commands import COMMANDS
    from LIMISLib.commands.base import route_to_active

    text = help_text()
    for kind, spec in COMMANDS.items():
        handled = spec.volume_handler is not route_to_active or hasattr(InteractionSession, f"_do_{kind}")
        assert handled, kind
        if spec.examples:
            assert spec.summary in text and spec.examples[0] in text


def test_the_slicer_module_never_branches_on_a_command_kind():
    source = (ROOT / "LIMIS" / "LIMIS.py").read_text()
    assert ".kind" not in source and "propagate(" not in source


# ---------------------------------------------------------------------------- ambiguity asks back
@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("smaller", {"resize_box", "threshold"}),
        ("make it bigger", {"resize_box", "threshold"}),
        ("more", {"resize_box", "threshold"}),
        ("fill the hole", {"threshold", "critical_regions"}),
    ],
)
def test_a_reply_that_fits_several_commands_asks_back_with_two_or_three_candidates(text, fits):
    command = rules(text)
    assert command.kind == "unknown"
    candidates = command.args["suggestions"]
    assert 2 <= len(candidates) <= 3
    assert fits <= {rules(c).kind for c in candidates}


def test_a_bare_number_answers_the_ask_back():
    s = slice_session()
    before = s.current.threshold
    reply = s.handle("smaller", semantic=False)
    assert not reply.ok and "1 " in reply.message and "2 " in reply.message and len(s.steps) == 1
    number = 1 + [rules(c).kind for c in reply.choices].index("threshold")
    assert s.handle(str(number), semantic=False).ok
    assert len(s.steps) == 2 and s.current.threshold > before  # "smaller": a raised threshold


def test_nope_with_nothing_pending_asks_and_one_undoes(phantom):
    session = liver_session(phantom)
    assert session.handle("raise the threshold", semantic=False).ok
    reply = session.handle("nope", semantic=False)
    assert not reply.ok and "undo" in reply.message and session.active.current_index == 2
    assert session.handle("1", semantic=False).ok
    assert session.active.current_index == 1


def test_a_number_after_an_ask_back_during_a_proposal_keeps_the_proposal_until_then():
    s = InteractionSession(two_organ_slice()[0], IntensityBBox2Mask(), target="liver", config=SessionConfig())
    s.start(BIG_BOX)
    reply = s.handle("smaller", semantic=False)
    assert s.pending == "proposal" and len(reply.choices) >= 2


# ---------------------------------------------------------------------------- properties (seeded random)
_PIECES = [
    "segment the liver",
    "segment the spleen",
    "accept",
    "reject",
    "undo",
    "undo 3 times",
    "go back 2 steps",
    "revert to step 1",
    "revert to step -1",
    "revert to step 9",
    "finish with step 7",
    "finish",
    "move the box left 400 pixels",
    "move the box up",
    "shrink the box by 300 pixels",
    "enlarge the box",
    "raise the threshold",
    "set the threshold to 0.99",
    "lower the threshold by 0.9",
    "positive click in cell 6",
    "negative click in cell 17",
    "center click",
    "critical regions",
    "yes",
    "no",
    "spine window",
    "bone window",
    "window 0 40",
    "show examples",
    "take option 9",
    "remove component 5",
    "keep the largest component",
    "ensemble",
    "you over-segmented",
    "wrong part segmented",
    "propagate up 0 slices",
    "propagate down 2 slices",
    "stop propagating",
    "hmm",
    "smaller",
    "1",
    "2",
    "flibber",
    "help",
]


def test_a_failed_command_leaves_the_volume_session_bit_identical(phantom):
    rng = np.random.default_rng(11)
    session = liver_session(phantom)
    failures = 0
    for _ in range(120):
        text = _PIECES[rng.integers(len(_PIECES))]
        before = fingerprint(session)
        reply = session.handle(text, semantic=False)
        if not reply.ok:
            failures += 1
            assert fingerprint(session) == before, (text, reply.message)
    assert failures >= 20  # the loop did exercise failing commands


def test_any_string_up_to_10k_characters_parses_to_a_registered_kind():
    from LIMISLib.commands import KINDS

    rng = np.random.default_rng(5)
    alphabet = [*list("abcdefghijklmnopqrstuvwxyz0123456789 -.,'%/+?!"), "é", "\n", "\t", "ß"]
    words = " ".join(_PIECES).split()
    for trial in range(40):
        length = int(rng.choice([0, 1, 5, 40, 300, 2000, 10_000]))
        if trial % 2:
            text = "".join(rng.choice(alphabet, size=length))
        else:
            text = " ".join(rng.choice(words, size=max(length // 6, 1)))[:length]
        command = rules(text)
        assert command.kind in KINDS, (text[:80], command.kind)


# ---------------------------------------------------------------------------- held-out evaluation
DATA = Path(__file__).parent / "data"
ISSUE11 = json.loads((DATA / "limis_phrasings_issue11.json").read_text())["phrasings"]
ISSUE11_FRESH = json.loads((DATA / "limis_phrasings_issue11_fresh.json").read_text())["phrasings"]


def _score(phrasings, semantic: bool):
    right, confidently_wrong = 0, []
    for p in phrasings:
        command = parse_command(p["text"], ParseContext(pending=p.get("context")), semantic=semantic)
        if command.kind == p["kind"] and all(command.args.get(k) == v for k, v in p["args"].items()):
            right += 1
        elif command.kind != "unknown":
            confidently_wrong.append((p["text"], p.get("subset"), command.kind, command.args))
    return right / len(phrasings), confidently_wrong


def test_the_issue11_held_out_sets_cover_terse_long_and_negation():
    assert len(ISSUE11) >= 80
    subsets = {p["subset"] for p in ISSUE11}
    assert {"terse", "long", "negation"} <= subsets
    assert sum(p["subset"] == "negation" for p in ISSUE11 + ISSUE11_FRESH) >= 30


def test_rules_alone_reach_95_percent_and_are_never_wrong_on_negation():
    for phrasings in (ISSUE11, ISSUE11_FRESH):
        rate, wrong = _score(phrasings, semantic=False)
        print(f"\nrules only: {rate:.1%} of {len(phrasings)}")
        assert rate >= 0.95, wrong
        assert not [w for w in wrong if w[1] == "negation"], wrong


@pytest.mark.slow
@pytest.mark.semantic
def test_the_matcher_never_turns_a_negated_sentence_into_the_action():
    from LIMISLib.semantic_matcher import default_matcher

    matcher = default_matcher(required=True).warm_up()
    negated = {"propagate", "undo", "revert", "move_box", "threshold", "window", "segment", "examples"}
    for p in ISSUE11 + ISSUE11_FRESH:
        if p["subset"] == "negation":
            command = matcher.match(p["text"], ParseContext(pending=p.get("context")))
            assert command.kind not in negated, (p["text"], command)
    assert matcher.match("put a foreground click into the seventh cell").kind == "unknown"  # no cell label
    undo = matcher.match("undo x2")  # the count is kept or the matcher abstains, never undo once
    assert undo.kind == "unknown" or undo.args == {"count": 2}
    rate, wrong = _score(ISSUE11 + ISSUE11_FRESH, semantic=True)
    assert rate >= 0.95 and not wrong, wrong


# ---------------------------------------------------------------------------- the compositional grammar
@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("scoot the rectangle leftwards 4", "move_box", {"direction": "left", "pixels": 4}),
        ("trim the bbox by 6", "resize_box", {"pixels": -6}),
        ("pad the frame by 4", "resize_box", {"pixels": 4}),
        ("bump the cutoff", "threshold", {"delta": 0.1}),
        ("kill the third blob", "remove_component", {"index": 3}),
        ("copy it onto 3 slices downward", "propagate", {"direction": "down", "slices": 3}),
        ("rewind 2 steps", "undo", {"count": 2}),
        ("tap the background in square 9", "grid_click", {"cell": 9, "positive": False}),
        ("use the lung contrast", "window", {"preset": "lung"}),
    ],
)
def test_verb_object_and_modifiers_compose_without_a_listed_sentence(text, kind, args):
    from LIMISLib.commands.frames import rule_frames
    from LIMISLib.commands.lexicon import normalise

    command = rule_frames(normalise(text), None)
    assert command is not None and (command.kind, command.args) == (kind, args)
    assert rules(text).kind == kind


@pytest.mark.parametrize("text", ["the box is fine", "what a nice threshold", "box", "slices"])
def test_an_object_without_a_fitting_verb_is_not_guessed(text):
    from LIMISLib.commands.frames import rule_frames
    from LIMISLib.commands.lexicon import normalise

    assert rule_frames(normalise(text), None) is None


def test_negation_scopes_over_composed_commands_too():
    for text in ("don't scoot the rectangle leftwards", "stop trimming the bbox", "never mind the cutoff"):
        assert rules(text).kind == "reject", text


def test_without_a_detector_a_new_structure_gets_the_middle_third_box_and_nothing_else_does(phantom):
    session = liver_session(phantom)
    rows, columns = session.geometry.image_shape
    spleen = session.with_default_box(rules("segment the spleen"))
    assert spleen.args["box"] == (columns / 3, rows / 3, 2 * columns / 3, 2 * rows / 3)
    for text in ("segment the liver", "raise the threshold"):  # same structure, active slice: no box
        assert "box" not in session.with_default_box(rules(text)).args
    drawn = session.with_box(rules("segment the spleen"), (1, 2, 30, 40))
    assert drawn.args["box"] == (1, 2, 30, 40)
    assert session.with_box(rules("undo"), (1, 2, 30, 40)).args == {}
