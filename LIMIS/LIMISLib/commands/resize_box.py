"""The ``resize_box`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import _BOX, DEFAULT_RESIZE_PX, LARGE_MOVE_PX, SMALL_MOVE_PX, _amount, _has, _int_or_float


def _rule_resize_box(text: str, context: ParseContext | None) -> Command | None:
    box_word = _has(text, _BOX)
    grow = (
        r"enlarge|enlarged|expand|expanded|grow|widen|bigger|larger|inflate|extend|wider|taller|increase"
        r"|increased|pad|loosen|open up|broaden|more room"
    )
    shrink = (
        r"shrink|shrunk|reduce|reduced|smaller|tighter|tighten|narrow|narrower|decrease|decreased|contract"
        r"|crop|trim|less room|deflate"
    )
    too_small = re.search(
        rf"\b(?:{_BOX}) (?:is |was )?(?:too|a bit too|way too|much too) (?:small|tight|narrow|short)\b", text
    )
    too_big = re.search(
        rf"\b(?:{_BOX}) (?:is |was )?(?:too|a bit too|way too|much too) (?:big|large|wide|loose|generous)\b",
        text,
    )
    if not box_word:
        return None
    if _has(text, r"threshold|window|slices?|propagat\w*"):
        return None
    if too_small:
        sign = 1
    elif too_big or _has(text, shrink):
        sign = -1
    elif _has(text, grow):
        sign = 1
    else:
        return None
    pixels, mm = _amount(text, DEFAULT_RESIZE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
    args: dict[str, Any] = {"pixels": None if pixels is None else sign * pixels}
    if mm is not None:
        args["mm"] = _int_or_float(sign * mm)
    return Command("resize_box", args)


SPEC = CommandSpec(
    "resize_box",
    "grow (+) or shrink (-) the box on each side",
    "{pixels}",
    ("enlarge the box by 10 pixels", "shrink the box"),
    rules=((21, _rule_resize_box),),
)
