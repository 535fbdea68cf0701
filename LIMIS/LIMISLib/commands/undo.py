"""The ``undo`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import has, words_of

#: Words that say "take the last action back" (with "back": go/step/take/roll/move back).
_UNDO_MARKERS = words_of(
    "undo undid back revert reverse rewind unwind rollback oops whoops scratch previous mistake"
)
#: Words an undo may also contain ("undo the last change", "take that back", "oops wrong one").
_UNDO_WORDS = _UNDO_MARKERS | words_of(
    "go step take roll move that it this the last one change action edit command thing what you just did your"
    " a was to mask version again wrong sorry my bad please now quickly put way as proposal suggestion"
)
_UNDO_VERBS = r"undo|go back|step back|back|roll back|revert|take back|jump back|move back|reverse|rewind"
_COUNT_UNITS = r"times?|steps?|changes?|edits?|actions?|things?|ones?|moves?|clicks?"
_MULTIPLES = {"twice": 2, "thrice": 3, "a": 1, "one": 1, "once": 1}


def _rule_undo(text: str, context: ParseContext | None) -> Command | None:
    """An undo said with the undo vocabulary only ("undo that", "take it back", "oops wrong one").

    A number, a step reference ("to step 2", "the original") or any other word leaves it to the
    counted undo, revert and the other rules.
    """
    words = set(text.split())
    if not words <= _UNDO_WORDS or not words & _UNDO_MARKERS:
        return None
    if (
        words == {"back"}
        or "back" not in words
        or words & (_UNDO_MARKERS - {"back"})
        or re.search(r"\b(go|step|take|roll|move|it|that|this) back\b|\bback (a|one)\b|^back\b", text)
    ):
        # a count said out loud ("go back one step", "a step back") is kept, even when it is one
        said_one = re.search(rf"\b(a|one|1) ({_COUNT_UNITS})\b", text)
        return Command("undo", {"count": 1} if said_one else {})
    return None


def _rule_undo_count(text: str, context: ParseContext | None) -> Command | None:
    """ "undo 3 times", "undo twice", "go back 2 steps", "2 steps back", "revert the last 3 changes".

    An undo verb, then (it/that, the last/previous) a count, then a unit or nothing; a step named
    with "to" or "step N" is a revert, a box/slice/threshold word is another command.
    """
    ago = re.search(rf"\b(-?\d+|a|one) ({_COUNT_UNITS}|versions?) ago\b", text)
    if ago and has(text, rf"{_UNDO_VERBS}|return|restore|go|use"):
        count = 1 if ago.group(1) in {"a", "one"} else int(ago.group(1))
        return Command("undo", {"count": count})  # "the version of 2 steps ago"
    if has(text, r"to|box|pixels?|px|mm|slices?|threshold|window|cell|component|level|width"):
        return None
    match = re.fullmatch(
        rf"(?:make |do )?(?:{_UNDO_VERBS})(?:\s+(?:it|that|this))?(?:\s+the)?(?:\s+(?:last|previous))?"
        rf"\s+(-?\d+|twice|thrice|once|a|one)(?:\s+({_COUNT_UNITS}))?(?:\s+(?:back|you did|you made|ago))?",
        text,
    ) or re.fullmatch(rf"(-?\d+|a|one)\s+({_COUNT_UNITS})\s+back", text)
    if not match:
        return None
    value = match.group(1)
    if value in {"a", "one"} and not match.group(2):
        return None
    if text.startswith("revert") and not match.group(2) and not has(text, r"last|previous"):
        return None  # "revert 2" names step 2
    count = _MULTIPLES[value] if value in _MULTIPLES else int(value)
    return Command("undo", {"count": count})


def _undo_volume(session, command: Command, *, last_was_propagation: bool = False, **_: Any):
    """Undo the last propagation, a propagated slice's step 0, or steps of the active slice."""
    return session.undo(command, last_was_propagation=last_was_propagation)


SPEC = CommandSpec(
    "undo",
    "go back count steps (a pending proposal counts as one)",
    "{} or {count: n}",
    ("undo", "undo 3 times", "go back 2 steps", "ctrl z"),
    rules=((4, _rule_undo_count), (5, _rule_undo)),
    volume_handler=_undo_volume,
)
