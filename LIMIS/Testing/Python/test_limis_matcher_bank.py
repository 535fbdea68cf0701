"""The semantic matcher's exemplar bank (built from the labelled phrasing sets at development time)
and its safety on negated sentences when the rules are bypassed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LIMISLib import command_grammar
from LIMISLib.command_grammar import ParseContext, parse_command
from LIMISLib.semantic_matcher import (
    EXEMPLARS_FILE,
    SemanticMatcher,
    command_for_label,
    exemplar_label,
    exemplars_from_files,
    exemplars_from_phrasings,
    load_calibration,
    load_exemplars,
    phrasing_files,
)

DATA = Path(__file__).parent / "data"


# ---------------------------------------------------------------------------- labels from kind + args
@pytest.mark.parametrize(
    ("kind", "args", "subset", "label"),
    [
        ("threshold", {"delta": 0.1}, "long", "threshold:up"),
        ("threshold", {"delta": -0.05}, "terse", "threshold:down"),
        ("threshold", {"value": 0.4}, "terse", None),  # an absolute value the matcher cannot produce
        ("resize_box", {"pixels": -6}, None, "resize_box:shrink"),
        ("resize_box", {"pixels": 12}, None, "resize_box:grow"),
        ("resize_box", {}, None, None),
        ("guided", {"problem": "low_contrast"}, "long", "guided:low_contrast"),
        ("answer", {"value": False}, "context", "answer:no"),
        ("answer", {"value": True}, "context", "answer:yes"),
        ("window", {"preset": "bone"}, "terse", "window"),
        ("window", {"width": 350, "level": 50}, "terse", None),
        ("move_box", {"direction": "left", "pixels": 3}, "long", "move_box"),
        ("move_box", {"direction": "left", "mm": 5}, "long", None),
        ("remove_component", {"keep_largest": True}, None, "remove_component"),
        ("remove_component", {"index": 2}, None, None),
        ("grid_click", {"cell": 4, "positive": True}, None, None),
        ("accept", {}, "terse", "accept"),
        ("accept", {"choice": 2}, "context", None),  # an answer to an ask-back, not an accept phrasing
        ("unknown", {}, "offtopic", "none"),
        ("unknown", {"ambiguous": True}, None, None),
        ("unknown", {}, "impossible", None),
        ("reject", {}, "negation", None),  # negated phrasings are never exemplars
        ("propagate", {"direction": "up", "slices": 4}, "negation", None),
        ("revert", {"step": 2}, "long", "revert"),
    ],
)
def test_a_labelled_phrasing_maps_to_the_label_its_kind_and_args_imply(kind, args, subset, label):
    assert exemplar_label(kind, args, subset) == label


@pytest.mark.parametrize(
    ("label", "text", "kind", "args"),
    [
        ("threshold:down", "be a bit less strict please", "threshold", {"delta": -0.1}),
        ("resize_box:shrink", "make that frame tighter by 6", "resize_box", {"pixels": -6}),
        ("resize_box:grow", "the frame should be roomier", "resize_box", {"pixels": 10}),
        ("window", "make the bony structures visible", "window", {"preset": "bone"}),
        ("window", "I can barely see anything", "window", {"preset": "organ"}),
        ("undo", "take back the last 3 things", "undo", {"count": 3}),
        ("undo", "ctrl+z twice", "undo", {"count": 2}),  # batch 8: the count was dropped
        ("undo", "hit ctrl z thrice", "undo", {"count": 3}),
        ("guided:wrong_part", "that is some other structure", "guided", {"problem": "wrong_part"}),
        ("answer:no", "it does not belong", "answer", {"value": False}),
    ],
)
def test_a_label_becomes_its_command_with_the_values_of_the_sentence(label, text, kind, args):
    command = command_for_label(label, text)
    assert command is not None and (command.kind, command.args) == (kind, args)


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("move_box", "not up, move the box down 3"),
        ("revert", "not step 2, revert to step 3"),
        ("answer:yes", "no, it's not part of it"),
        ("propagate", "not down, propagate up 4 slices"),
        ("undo", "undo -2 times"),
    ],
)
def test_a_label_with_a_negated_or_impossible_value_abstains(label, text):
    assert command_for_label(label, text) is None


def test_the_bank_builder_keeps_hand_labelled_cases_and_skips_the_unmappable():
    phrasings = [
        {"text": "a tad lower on the cutoff", "kind": "threshold", "args": {"delta": -0.1}},
        {"text": "cutoff 0.4", "kind": "threshold", "args": {"value": 0.4}},
        {"text": "don't go lower", "kind": "reject", "args": {}, "subset": "negation"},
        {"text": "box smaller by 4", "kind": "resize_box", "args": {"pixels": -4}},
        {"text": "box smaller by 4", "kind": "resize_box", "args": {"pixels": -4}},
    ]
    assert exemplars_from_phrasings(phrasings) == {
        "threshold:down": ["a tad lower on the cutoff"],
        "resize_box:shrink": ["box smaller by 4"],
    }


# ---------------------------------------------------------------------------- sealed sets
def test_sealed_sets_are_skipped_by_name_and_never_opened(tmp_path, monkeypatch):
    good = {"phrasings": [{"text": "tighten the frame", "kind": "resize_box", "args": {"pixels": -10}}]}
    (tmp_path / "limis_phrasings_dev.json").write_text(json.dumps(good))
    (tmp_path / "limis_phrasings_issue11_batch8.json").write_text("not even json")
    opened: list[str] = []
    read_text = Path.read_text

    def spying_read_text(self, *args, **kwargs):
        opened.append(self.name)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", spying_read_text)
    files = phrasing_files(tmp_path)
    assert [f.name for f in files] == ["limis_phrasings_dev.json"]
    assert exemplars_from_files(files) == {"resize_box:shrink": ["tighten the frame"]}
    assert opened == ["limis_phrasings_dev.json"]
    with pytest.raises(ValueError, match="sealed"):
        exemplars_from_files([tmp_path / "limis_phrasings_issue11_batch8.json"])
    assert "limis_phrasings_issue11_batch8.json" not in opened


def test_the_committed_bank_comes_only_from_readable_sets_with_the_derived_labels():
    stored = json.loads(EXEMPLARS_FILE.read_text(encoding="utf-8"))
    assert not [name for name in stored["sources"] if "batch8" in name]
    rebuilt = exemplars_from_files([DATA / name for name in stored["sources"] if (DATA / name).exists()])
    for label, texts in stored["from_phrasing_sets"].items():
        assert set(texts) <= set(rebuilt.get(label, [])), (
            label,
            "rerun bench/calibrate_limis_matcher.py --write",
        )
    merged = load_exemplars()
    assert set(stored["labels"]) <= set(merged)
    assert all(set(stored["labels"][label]) <= set(merged[label]) for label in stored["labels"])
    calibration = load_calibration()
    assert calibration["min_similarity"] > 0 and calibration["min_margin"] >= 0 and calibration["top_k"] >= 1


# ---------------------------------------------------------------------------- negation on the matcher path
def _negated_phrasings() -> list[dict]:
    return [
        p
        for path in phrasing_files(DATA)
        for p in json.loads(path.read_text(encoding="utf-8"))["phrasings"]
        if p.get("subset") == "negation"
    ]


@pytest.mark.slow
@pytest.mark.semantic
def test_through_the_matcher_path_a_negated_sentence_never_becomes_an_action(monkeypatch):
    from LIMISLib.semantic_matcher import default_matcher

    calibrated = default_matcher(required=True).warm_up()
    eager = SemanticMatcher(calibrated.model, calibrated.exemplars, min_similarity=0, min_margin=0, top_k=1)
    monkeypatch.setattr(command_grammar, "parse_with_rules", lambda text, context=None: None)  # rules off
    for matcher in (calibrated, eager.warm_up()):
        monkeypatch.setattr("LIMISLib.semantic_matcher.default_matcher", lambda required=False, m=matcher: m)
        for p in _negated_phrasings():
            context = ParseContext(pending=p.get("context"), choices=tuple(p.get("choices") or ()))
            command = parse_command(p["text"], context, semantic=True)
            right = command.kind == p["kind"] and all(command.args.get(k) == v for k, v in p["args"].items())
            # wrong at worst as a refusal or a question, never as an action
            assert right or command.kind in {"reject", "unknown"}, (p["text"], command.kind, command.args)
    assert parse_command("not up, move the box down 3", semantic=True).args.get("direction") != "up"
