"""The ``center_click`` command: its vocabulary and parse rules."""

from __future__ import annotations

from .base import Command, CommandSpec, ParseContext
from .lexicon import has


def _rule_center_click(text: str, context: ParseContext | None) -> Command | None:
    if not has(text, r"center|centre|middle|central|centered|centred|midpoint"):
        return None
    if has(text, r"click|clicks|point|dot|tap|seed|mark|marker|press|prompt"):
        if has(text, r"negative|background|minus"):
            return None
        return Command("center_click")
    return None


SPEC = CommandSpec(
    "center_click",
    "positive click in the box centre",
    "{}",
    ("center click",),
    rules=((17, _rule_center_click),),
)
