"""The ``move_box`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import (
    BOX_RE,
    DEFAULT_MOVE_PX,
    LARGE_MOVE_PX,
    MOVE_VERBS,
    NUMBER_RE,
    SMALL_MOVE_PX,
    amount_in,
    direction_in,
    has,
    int_or_float,
    mentions_organ,
)


def _instructed_direction(text: str) -> str | None:
    """The direction after a move verb ("the box is too far left, move it right": right), else the
    first one named: a description of where the box is does not say where it should go."""
    for verb in re.finditer(rf"\b(?:{MOVE_VERBS})\b", text):
        direction = direction_in(text[verb.start() :])
        if direction is not None:
            return direction
    return direction_in(text)


def _rule_move_box(text: str, context: ParseContext | None) -> Command | None:
    direction = _instructed_direction(text)
    if direction is None:
        return None
    box_word = has(text, BOX_RE)
    verb = has(text, MOVE_VERBS) or has(text, r"more to the|further|farther|a bit to the|towards the")
    if not (
        box_word
        or verb
        or re.fullmatch(rf"(to the )?(left|right|up|down)( {NUMBER_RE})?( px| pixels?)?", text)
    ):
        return None
    if not box_word and (
        has(text, r"threshold|window|slices?|propagat\w*|cell|grid|step") or mentions_organ(text)
    ):
        return None
    pixels, mm = amount_in(text, DEFAULT_MOVE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
    args: dict[str, Any] = {"direction": direction, "pixels": pixels}
    if mm is not None:
        args["mm"] = int_or_float(mm)
    return Command("move_box", args)


SPEC = CommandSpec(
    "move_box",
    "move the box (screen directions; pixels or mm)",
    "{direction: left|right|up|down, pixels} or {direction, mm}",
    ("move the box up 5 pixels", "move the box to the patient's left"),
    rules=((22, _rule_move_box),),
)
