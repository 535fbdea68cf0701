"""The ``revert`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has, step_reference_in


def _rule_revert(text: str, context: ParseContext | None) -> Command | None:
    verbs = (
        r"go back|back|revert|return|restore|jump|switch|reset|roll back|rollback|use|continue|start again"
        r"|start over"
        r"|restart|resume|take|load|reload|bring back|show|see|view|look at|reopen|branch|pick up|redo from"
        r"|go to"
    )
    bare = re.fullmatch(r"(?:the )?(?:step|version) (-?\d+)", text)
    if bare:
        return Command("revert", {"step": int(bare.group(1))})
    if not has(text, verbs):
        return None
    step = step_reference_in(text)
    if step is None:
        match = re.search(r"\b(?:to|from)\s+(-?\d+)\b", text) or re.fullmatch(
            r"(?:revert|restore|reload|load|jump)\s+(-?\d+)", text
        )
        if match and not has(text, r"pixels?|px|slices?|mm|threshold|window|level|width|cell|box"):
            step = int(match.group(1))
    if step is None:
        if re.fullmatch(r"(start over|start again|restart|reset|reset everything|start from scratch)", text):
            return Command("revert", {"step": 0})
        return None
    if has(text, r"cell|grid|square|pixels?|px|slices?|threshold|window|component|blob|island"):
        return None
    return Command("revert", {"step": step})


SPEC = CommandSpec(
    "revert",
    "make step n current (later steps stay in the history)",
    "{step} (0 = the initial segmentation)",
    ("revert to step 2", "revert to the fourth step"),
    rules=((20, _rule_revert),),
)
