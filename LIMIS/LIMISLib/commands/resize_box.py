"""The ``resize_box`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import (
    BOX_RE,
    DEFAULT_RESIZE_PX,
    LARGE_MOVE_PX,
    SMALL_MOVE_PX,
    amount_in,
    has,
    int_or_float,
)


def _rule_resize_box(text: str, context: ParseContext | None) -> Command | None:
    box_word = has(text, BOX_RE)
    grow = (
        r"enlarge|enlarged|expand|expanded|grow|widen|bigger|larger|inflate|extend|wider|taller|increase"
        r"|increased|pad|loosen|open up|broaden|more room"
    )
    shrink = (
        r"shrink|shrunk|reduce|reduced|smaller|tighter|tighten|narrow|narrower|decrease|decreased|contract"
        r"|crop|trim|less room|deflate"
    )
    too_small = re.search(
        rf"\b(?:{BOX_RE}) (?:is |was )?(?:too|a bit too|way too|much too) (?:small|tight|narrow|short)\b",
        text,
    )
    too_big = re.search(
        rf"\b(?:{BOX_RE}) (?:is |was )?(?:too|a bit too|way too|much too) "
        r"(?:big|large|wide|loose|generous)\b",
        text,
    )
    if not box_word:
        return None
    if has(text, r"threshold|window|slices?|propagat\w*"):
        return None
    if too_small:
        sign = 1
    elif too_big or has(text, shrink):
        sign = -1
    elif has(text, grow):
        sign = 1
    else:
        return None
    pixels, mm = amount_in(text, DEFAULT_RESIZE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
    args: dict[str, Any] = {"pixels": None if pixels is None else sign * pixels}
    if mm is not None:
        args["mm"] = int_or_float(sign * mm)
    return Command("resize_box", args)


SPEC = CommandSpec(
    "resize_box",
    "grow (+) or shrink (-) the box on each side",
    "{pixels}",
    ("enlarge the box by 10 pixels", "shrink the box"),
    rules=((21, _rule_resize_box),),
)
