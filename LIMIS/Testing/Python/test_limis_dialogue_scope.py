"""Issue 11, second round: what held-out batch 3 (written before tuning) found, one test each.

Negation scope across clauses, "cancel that" decided by the dialogue state, typos by swapped
letters, ".5", impossible threshold values, ordinals answering an ask-back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from limis_session_fixtures import BIG, two_organ_slice

from LIMISLib.command_grammar import ParseContext, parse_command
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import InteractionSession, SessionConfig

BIG_BOX = (BIG[0] - BIG[2] - 2, BIG[1] - BIG[3] - 2, BIG[0] + BIG[2] + 2, BIG[1] + BIG[3] + 2)
DATA = Path(__file__).parent / "data"


def rules(text: str, pending: str | None = None, choices: tuple[str, ...] = ()):
    return parse_command(text, ParseContext(pending=pending, choices=choices), semantic=False)


def slice_session(*, propose_default=False) -> InteractionSession:
    s = InteractionSession(
        two_organ_slice()[0],
        IntensityBBox2Mask(),
        target="liver",
        config=SessionConfig(propose_default_adaptation=propose_default),
    )
    s.start(BIG_BOX)
    return s


def state(s: InteractionSession):
    return (len(s.steps), s.current_index, s.pending, s.current.threshold, s.current.box_xyxy)


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("don't shrink the box, enlarge it by 4", "resize_box", {"pixels": 4}),
        ("not up, move the box down 3", "move_box", {"direction": "down", "pixels": 3}),
        ("don't undo, revert to step 1", "revert", {"step": 1}),
        ("don't propagate up, propagate down 5 slices", "propagate", {"direction": "down", "slices": 5}),
        ("not the left kidney, the right one", "segment", {"target": "kidney right"}),
        ("no, lower the threshold, not raise it", "threshold", {"delta": -0.1}),
        ("without propagating, finish with step 3", "finish", {"step": 3}),
    ],
)
def test_a_negation_covers_its_own_clause_and_the_other_clause_is_the_command(text, kind, args):
    command = rules(text)
    assert command.kind == kind and all(command.args.get(k) == v for k, v in args.items()), command


@pytest.mark.parametrize(
    "text", ["no, don't finish yet", "no need to propagate", "no positive clicks", "i do not want to undo"]
)
def test_a_negated_command_of_any_kind_declines_it(text):
    assert rules(text).kind == "reject"


def test_cancel_that_with_a_proposal_pending_drops_it_and_nothing_else():
    s = slice_session(propose_default=True)  # the default adaptation is proposed at the start
    assert s.pending == "proposal"
    steps, current = len(s.steps), s.current_index
    reply = s.handle("cancel that", semantic=False)
    assert reply.ok and s.pending is None
    assert (len(s.steps), s.current_index) == (steps, current)


def test_cancel_that_with_nothing_pending_asks_undo_or_nothing_and_a_number_answers():
    s = slice_session()
    assert s.handle("raise the threshold", semantic=False).ok
    before = state(s)
    reply = s.handle("cancel that", semantic=False)
    assert not reply.ok and state(s) == before
    assert [rules(c).kind for c in reply.choices] == ["undo", "reject"]
    assert "1 'undo'" in reply.message and "2 'never mind'" in reply.message
    assert s.handle("2", semantic=False) is not None and state(s) == before  # nothing
    assert not s.handle("cancel that", semantic=False).ok
    assert s.handle("1", semantic=False).ok and s.current_index == 0  # undo


@pytest.mark.parametrize(
    ("text", "range_text"),
    [
        ("threshold 1.5", "0.01 to 0.99"),
        ("set the threshold to 2", "0.01 to 0.99"),
        ("threshold 0", "0.01 to 0.99"),
        ("threshold 150%", "0.01 to 0.99"),
        ("positive click in cell 20", "1 to 16"),
        ("negative click in cell 17", "1 to 16"),
        ("click cell 0", "1 to 16"),
    ],
)
def test_an_impossible_threshold_or_cell_is_refused_by_the_parser_with_the_range(text, range_text):
    command = parse_command(text, semantic=False)
    assert command.kind == "unknown" and range_text in command.args["reason"]
    s = slice_session()
    before = state(s)
    reply = s.handle(text, semantic=False)
    assert not reply.ok and range_text in reply.message and state(s) == before


def test_threshold_and_cell_at_the_ends_of_their_ranges_are_commands():
    assert parse_command("threshold 0.99", semantic=False).args == {"value": 0.99}
    assert parse_command("set the threshold to 0.01", semantic=False).args == {"value": 0.01}
    assert parse_command("threshold 70", semantic=False).args == {"value": 0.7}
    assert parse_command("negative click in cell 16", semantic=False).args == {"cell": 16, "positive": False}


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("thr .5", "threshold", {"value": 0.5}),
        ("udno", "undo", {}),
        ("hlep", "help", {}),
        ("moev the box down 4", "move_box", {"direction": "down", "pixels": 4}),
        ("brian window", "window", {"preset": "brain"}),
        ("make the threshold less strict", "threshold", {"delta": -0.1}),
        ("revert the last two changes", "undo", {"count": 2}),
        ("go back a step", "undo", {"count": 1}),
        ("rev 1", "revert", {"step": 1}),
        ("could you shrimk the box", "resize_box", {"pixels": -10}),
        ("put it back the way it was", "undo", {}),
        ("remove everything except the largest blob", "remove_component", {"keep_largest": True}),
    ],
)
def test_typos_clipped_numbers_and_comparatives(text, kind, args):
    command = rules(text)
    assert command.kind == kind and command.args == {**command.args, **args}, command


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("you cut off the lower pole", "guided", {"problem": "undersegmented"}),
        ("lower the cut-off", "threshold", {"delta": -0.1}),
        ("let's go back to the version we had two steps ago", "undo", {"count": 2}),
        ("I would prefer a stricter threshold, maybe 0.7", "threshold", {"value": 0.7}),
        ("lower threshold 0.05", "threshold", {"delta": -0.05}),
        ("no examples", "reject", {}),
        ("hold on, don't propagate", "reject", {}),
        ("please make the box more big", "resize_box", {"pixels": 10}),
        ("set W to 1500 and L to -600", "window", {"width": 1500, "level": -600}),
        ("back to square one", "revert", {"step": 0}),
        ("positive click in square one", "grid_click", {"cell": 1, "positive": True}),
        ("make undo two time", "undo", {"count": 2}),
        ("that's the stomach, not the spleen", "guided", {"problem": "wrong_part"}),
    ],
)
def test_what_batch4_found(text, kind, args):
    command = rules(text)
    assert command.kind == kind and command.args == {**command.args, **args}, command


@pytest.mark.parametrize(
    ("text", "pending", "choices", "kind", "args"),
    [
        ("can you lower the threshold a tiny bit", None, (), "threshold", {"delta": -0.05}),
        ("negative click in the twelfth cell", None, (), "grid_click", {"cell": 12, "positive": False}),
        (
            "the last one",
            None,
            ("shrink the box", "you over-segmented"),
            "guided",
            {"problem": "oversegmented"},
        ),
        ("yup", "proposal", (), "accept", {}),
        ("nope", "proposal", (), "reject", {}),
        ("how do I use this thing", None, (), "help", {}),
        ("udo", None, (), "undo", {}),
        ("i said no propagation", None, (), "reject", {}),
        ("never mind, keep it", "proposal", (), "accept", {}),
    ],
)
def test_what_batch5_found(text, pending, choices, kind, args):
    command = rules(text, pending, choices)
    assert command.kind == kind and command.args == {**command.args, **args}, command


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("ctrl+z twice", None, "undo", {"count": 2}),
        ("cmd z 3 times", None, "undo", {"count": 3}),
        ("wat can i say", None, "help", {}),
        ("segment panc", None, "segment", {"target": "pancreas"}),
        ("could you average a bigger box, a centre click and another window for me", None, "ensemble", {}),
        (
            "I'd like the right lower lobe of the lung segmented.",
            None,
            "segment",
            {"target": "lung lower lobe right"},
        ),
        ("The proposed step includes part of the colon. Please reject it.", "proposal", "reject", {}),
        ("outline the duod", None, "segment", {"target": "duodenum"}),
        ("propagate up by 2 cm", None, "propagate", {"direction": "up", "mm": 20}),
        ("propagate caudally 15 millimetres", None, "propagate", {"direction": "down", "mm": 15}),
        ("propagate up 5 slices", None, "propagate", {"direction": "up", "slices": 5}),
        ("kinda wanna undo the last two things tbh", None, "undo", {"count": 2}),
        ("honestly the mask kinda looks fine, let's keep it", "proposal", "accept", {}),
        (
            "tbh the box is kinda too far left, move it right like 6 pixels",
            None,
            "move_box",
            {"direction": "right", "pixels": 6},
        ),
    ],
)
def test_what_batch8_found(text, pending, kind, args):
    """Sealed batch 8's rule misses, generalised: shortcut + count, slang fillers, typo'd question words."""
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}, command


def test_a_leading_no_before_a_keep_word_keeps_and_without_one_asks_back():
    assert rules("no that's fine, keep it", pending="proposal").kind == "accept"
    assert rules("that is not better", pending="proposal").kind == "reject"
    command = rules("no that's fine", pending="proposal")
    assert command.kind == "unknown" and command.args["ambiguous"]
    assert [rules(c).kind for c in command.args["suggestions"]] == ["accept", "reject"]


def test_an_ordinal_picks_an_ask_back_candidate_or_an_example():
    choices = ("shrink the box", "raise the threshold")
    assert rules("the first one", choices=choices).kind == "resize_box"
    assert rules("2", choices=choices).kind == "threshold"
    assert rules("i pick the 3rd", pending="examples").args == {"choice": 3}


def _score(name: str) -> tuple[float, list]:
    phrasings = json.loads((DATA / name).read_text())["phrasings"]
    right, wrong = 0, []
    for p in phrasings:
        command = rules(p["text"], p.get("context"), tuple(p.get("choices") or ()))
        if command.kind == p["kind"] and all(command.args.get(k) == v for k, v in p["args"].items()):
            right += 1
        elif command.kind != "unknown":
            wrong.append((p["text"], p.get("subset"), command.kind, command.args))
    return right / len(phrasings), wrong


@pytest.mark.parametrize(
    "name", ["limis_phrasings_issue11_batch3.json", "limis_phrasings_issue11_batch4.json"]
)
def test_batches_3_and_4_rules_alone_reach_95_percent_and_are_never_wrong_on_negation(name):
    """Each batch was held out until it was measured once (README); they are regression sets since."""
    rate, wrong = _score(name)
    assert rate >= 0.95, wrong
    assert not [w for w in wrong if w[1] == "negation"], wrong


def test_a_paragraph_is_not_a_command_and_the_reply_says_why():
    text = "move the box up 5 pixels and then " * 20  # 680 characters
    assert rules(text).kind == "unknown"
    s = slice_session()
    before = state(s)
    reply = s.handle(text, semantic=False)
    assert not reply.ok and "680 characters" in reply.message and state(s) == before


@pytest.mark.parametrize(
    ("text", "members"),
    [
        ("segment the left lung", {"lung upper lobe left", "lung lower lobe left"}),
        ("seg R lung", {"lung upper lobe right", "lung middle lobe right", "lung lower lobe right"}),
        (
            "Initiate segmentation of the right lung.",
            {f"lung {x} lobe right" for x in ("upper", "middle", "lower")},
        ),
        ("segment the kidneys", {"kidney left", "kidney right"}),
    ],
)
def test_a_whole_lung_or_an_organ_group_asks_back_with_its_members(text, members):
    command = rules(text)
    assert command.kind == "unknown" and command.args["ambiguous"] is True
    assert {s.removeprefix("segment the ") for s in command.args["suggestions"]} == members
    assert all(rules(s).kind == "segment" for s in command.args["suggestions"])


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("I'd like the aorta delineated", "aorta"),
        ("Begin segmenting the spleen please", "spleen"),
        ("Please produce a segmentation for the stomach", "stomach"),
        ("we need the bladder outlined before the meeting", "bladder"),
        ("right middle lobe of the lung please, segment it", "lung middle lobe right"),
        ("I want to work on the L1 vertebra now", "vertebra L1"),
    ],
)
def test_a_segmentation_verb_anywhere_in_the_sentence_names_the_target(text, target):
    assert rules(text).kind == "segment" and rules(text).args == {"target": target}


def test_a_reported_segmentation_is_not_a_request():
    assert rules("it segmented the stomach too").kind != "segment"


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("I think the second connected component is spurious, could you remove it?", {"index": 2}),
        ("remove the third blob, it's a stray one", {"index": 3}),
        ("remove the small bits", {"keep_largest": True}),
    ],
)
def test_a_component_named_by_ordinal_wins_over_the_words_for_strays(text, args):
    command = rules(text)
    assert command.kind == "remove_component" and command.args == args


@pytest.mark.parametrize(
    ("text", "args"), [("go back one step", {"count": 1}), ("a step back", {"count": 1}), ("undo", {})]
)
def test_a_count_said_out_loud_is_kept_even_when_it_is_one(text, args):
    command = rules(text)
    assert command.kind == "undo" and command.args == args


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("it's not leaking, it's missing part of the organ", "undersegmented"),
        ("it's not too big, it's too small", "undersegmented"),
        ("it is not too small, it spills into the fat", "oversegmented"),
        ("it creeps into the bowel", "oversegmented"),
        ("it chopped off the tip", "undersegmented"),
        ("it fails to cover the top", "undersegmented"),
        ("the contrast here is terrible", "low_contrast"),
        ("I can barely tell it apart from the fat", "low_contrast"),
        ("not enough contrast", "low_contrast"),
    ],
)
def test_problem_cues_are_word_classes_and_a_negated_cue_drops_its_problem(text, problem):
    command = rules(text)
    assert command.kind == "guided" and command.args == {"problem": problem}


def test_a_problem_that_is_only_denied_is_no_guided_strategy():
    assert rules("it is not leaking").kind != "guided"
    assert rules("please segment the kidney of the left side").args == {"target": "kidney left"}


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("okay so um don't shrink it grow it by twelve pixels", "resize_box", {"pixels": 12}),
        ("don't move it left move it right", "move_box", {"direction": "right"}),
        ("don't move the box left by 5 move it right by 3", "move_box", {"direction": "right", "pixels": 3}),
        ("What if we don't propagate and do a center click instead?", "center_click", {}),
        ("stop, don't segment the pancreas, segment the spleen", "segment", {"target": "spleen"}),
        (
            "no, keep only the biggest component instead of removing number 2",
            "remove_component",
            {"keep_largest": True},
        ),
    ],
)
def test_a_new_clause_after_a_negation_is_the_command_even_without_a_comma(text, kind, args):
    command = rules(text)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    "text",
    [
        "don't move the box up and left",
        "don't propagate and don't move the box",
        "don't move the box and shrink it",
    ],
)
def test_a_negation_over_one_clause_with_and_still_declines(text):
    assert rules(text).kind == "reject"


@pytest.mark.parametrize(
    "text",
    [
        "I'm not sure what I'm allowed to type, could you list the commands?",
        "Can you tell me what I'm able to type in this box?",
        "which things am I supposed to say",
    ],
)
def test_a_question_about_what_may_be_typed_is_help_anywhere_in_the_sentence(text):
    assert rules(text).kind == "help"


@pytest.mark.parametrize(
    "text",
    [
        "Sorry to bother you, but I think that result is actually fine, so I'd like to accept it.",
        "Yes, I am agree with this one, please accept.",
        "good enough, accept",
        "honestly I believe this is acceptable",
    ],
)
def test_a_verdict_inside_a_conversational_frame_is_still_a_verdict(text):
    assert rules(text, "proposal").kind == "accept"


def test_a_negated_verdict_in_a_conversational_frame_rejects():
    assert rules("sorry, but I think it is not fine", "proposal").kind == "reject"


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("none of these examples, please discard them", "examples", "reject", {}),
        ("don't take any of them", "examples", "reject", {}),
        ("I believe this region is included, yes", "question", "answer", {"value": True}),
        ("I am pretty sure it is not part of it", "question", "answer", {"value": False}),
        ("Show me the uncertain regions and ask me yes/no questions", None, "critical_regions", {}),
    ],
)
def test_replies_framed_in_conversation_keep_their_meaning(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("increase it", {"resize_box", "threshold"}),
        ("decrease it a bit", {"resize_box", "threshold"}),
        ("loosen it", {"resize_box", "threshold"}),
    ],
)
def test_a_verb_that_fits_two_objects_without_one_named_asks_which(text, kinds):
    command = rules(text)
    assert command.kind == "unknown" and command.args["ambiguous"] is True
    assert {rules(s).kind for s in command.args["suggestions"]} == kinds


def test_the_same_verb_with_its_object_is_the_command():
    assert rules("increase the threshold").args == {"delta": 0.1}


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("um move the box write ten pixels", "move_box", {"direction": "right", "pixels": 10}),
        ("propagate up for slices", "propagate", {"direction": "up", "slices": 4}),
        ("undo to times", "undo", {"count": 2}),
        ("what can I write", "help", {}),
        ("go back to step 2", "revert", {"step": 2}),
        ("propagate for 10 slices", "propagate", {"slices": 10}),
    ],
)
def test_dictation_homophones_only_where_unambiguous(text, kind, args):
    command = rules(text)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("carry the mask over to the adjacent slices", "both"),
        ("copy this up", "up"),
        ("push the contour through the whole stack", "both"),
        ("bring the segmentation down", "down"),
        ("extend the segmentation caudally", "down"),
    ],
)
def test_propagation_from_word_classes(text, direction):
    command = rules(text)
    assert command.kind == "propagate" and command.args["direction"] == direction


@pytest.mark.parametrize(
    "text", ["move the box up", "apply the bone window", "the box extends over the organ"]
)
def test_spreading_verbs_on_other_objects_are_not_propagation(text):
    assert rules(text).kind != "propagate"


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("I don't think it's part of the organ", "question", "answer", {"value": False}),
        ("I don't believe it belongs", "question", "answer", {"value": False}),
        ("I prefer what we had before", "proposal", "reject", {}),
        ("none of them look right", "examples", "reject", {}),
        ("you got the stomach, I wanted the spleen", None, "guided", {"problem": "wrong_part"}),
        ("delineate the whole right lung", None, "unknown", {"ambiguous": True}),
    ],
)
def test_dev_set_7b_generalisations(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("no not the spleen the pancreas", None, "segment", {"target": "pancreas"}),
        ("no, don't include it", "question", "answer", {"value": False}),
    ],
)
def test_a_negated_answer_or_contrast_after_an_interjection(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize("text", ["what should I do next", "what now", "what do I do now"])
def test_a_question_about_the_next_step_is_help_not_a_verdict(text):
    assert rules(text, "proposal").kind == "help"


def test_an_exclamation_is_still_a_verdict():
    assert rules("what a great result", "proposal").kind == "accept"


@pytest.mark.parametrize(
    ("text", "pending"),
    [
        ("the segmentation of the liver looks good", "proposal"),
        ("the liver segmentation is worse now", "proposal"),
        ("why did you segment the stomach", None),
        ("is the liver segmented?", None),
    ],
)
def test_a_report_or_question_about_a_segmentation_is_no_request(text, pending):
    assert rules(text, pending).kind != "segment"


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("looks about right to me", "proposal", "accept", {}),
        ("number three looks best", "examples", "accept", {"choice": 3}),
        ("the 2nd one is good", "examples", "accept", {"choice": 2}),
        ("shift box 2cm left", None, "move_box", {"direction": "left", "mm": 20}),
    ],
)
def test_picks_with_a_verdict_loose_idioms_and_centimetres(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("I'd rather keep the previous one", "proposal", "reject", {}),
        ("Honestly it's about the same", "proposal", "reject", {}),
        ("undo that proposal", "proposal", "undo", {}),
        ("uhh I think yes", "question", "answer", {"value": True}),
        ("ummm move the box down 2mm", None, "move_box", {"direction": "down", "mm": 2}),
        ("Isolate the largest connected component", None, "remove_component", {"keep_largest": True}),
    ],
)
def test_hesitation_sounds_sameness_and_keep_verbs(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


def test_an_impossible_window_width_is_kept_as_said_and_refused_by_the_session():
    assert rules("window 0 40").args == {"width": 0, "level": 40}
    s = slice_session()
    before = state(s)
    reply = s.handle("window 0 40", semantic=False)
    assert not reply.ok and "positive width" in reply.message and state(s) == before


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("not kidney left, right", None, "segment", {"target": "kidney right"}),
        ("don't shrink the box by 5, shrink by 10", None, "resize_box", {"pixels": -10}),
        ("don't go back 2 steps, just 1", None, "undo", {"count": 1}),
        ("don't propagate 10 slices, only 4", None, "propagate", {"slices": 4}),
        ("don't propagate up, propagate down", None, "propagate", {"direction": "down"}),
        ("not bad at all", "proposal", "accept", {}),
        ("neither of them", "examples", "reject", {}),
    ],
)
def test_ellipsis_and_gapping_after_a_negated_clause(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("Honestly I think the spleen is what we should do next", None, "segment", {"target": "spleen"}),
        ("the next organ is the pancreas", None, "segment", {"target": "pancreas"}),
        ("From my side it looks fine, so please accept", "proposal", "accept", {}),
        ("in my opinion it's worse", "proposal", "reject", {}),
    ],
)
def test_next_target_and_a_point_of_view_around_a_verdict(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("accept it full stop", "proposal", "accept", {}),
        ("yes comma that's part of it", "question", "answer", {"value": True}),
        ("don't shrink it comma grow it by four", None, "resize_box", {"pixels": 4}),
        ("move the box to the rite", None, "move_box", {"direction": "right"}),
        ("where is the colon", None, "segment", {"target": "colon"}),
    ],
)
def test_dictated_punctuation_is_punctuation(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}
    assert command.text == text


@pytest.mark.parametrize(
    ("text", "kind"), [("the threshold one", "threshold"), ("the box one", "resize_box")]
)
def test_a_candidate_named_by_a_word_only_it_holds(text, kind):
    choices = ("shrink the box by 10 pixels", "raise the threshold", "you over-segmented")
    assert rules(text, choices=choices).kind == kind


@pytest.mark.parametrize(
    ("text", "pending", "kind", "args"),
    [
        ("no, go back two steps", "proposal", "undo", {"count": 2}),
        ("no, segment the spleen", "proposal", "segment", {"target": "spleen"}),
        ("no, it's the aorta", "question", "answer", {"value": False}),
        ("no, not the lung window, the mediastinum window", None, "window", {"preset": "mediastinum"}),
        ("no thanks, I'm good", "proposal", "unknown", {"ambiguous": True}),
    ],
)
def test_a_leading_no_before_a_command_and_mixed_verdicts(text, pending, kind, args):
    command = rules(text, pending)
    assert command.kind == kind and command.args == {**command.args, **args}


def test_a_signed_threshold_number_is_a_step_and_a_set_negative_value_is_refused():
    assert rules("threshold -0.05").args == {"delta": -0.05}
    assert rules("threshold +0.1").args == {"delta": 0.1}
    refused = rules("set the threshold to -0.2")
    assert refused.kind == "unknown" and "0.01 to 0.99" in refused.args["reason"]


@pytest.mark.parametrize("text", ["17", "0", "number 20"])
def test_a_bare_cell_outside_the_grid_is_refused_with_the_range(text):
    command = rules(text, "grid")
    assert command.kind == "unknown" and "1 to 16" in command.args["reason"]


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("bring it up 5 slices", "propagate", {"direction": "up", "slices": 5}),
        ("push the mask down", "propagate", {"direction": "down"}),
    ],
)
def test_bring_push_take_propagate_only_the_mask(text, kind, args):
    command = parse_command(text, semantic=False)
    assert command.kind == kind and all(command.args.get(k) == v for k, v in args.items())


@pytest.mark.parametrize("text", ["bring up a fresh mask for the spleen", "bring up the liver"])
def test_bring_up_an_organ_is_not_propagation(text):
    # found while choosing a matcher paraphrase: "bring up" read as "propagate up"
    assert parse_command(text, semantic=False).kind != "propagate"
