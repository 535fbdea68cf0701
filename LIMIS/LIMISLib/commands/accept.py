"""The ``accept`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import ORDINALS, has


def _rule_accept_choice(text: str, context: ParseContext | None) -> Command | None:
    match = re.search(
        r"\b(?:example|option|alternative|variant|choice|preview|suggestion|version|candidate|number"
        r"|no)\s*(?:number\s*)?(\d+)\b",
        text,
    )
    verbs = (
        r"take|choose|pick|select|use|go with|want|apply|accept|keep|prefer|like|i will take|let us take"
        r"|give me"
    )
    if match and (
        has(text, verbs)
        or re.fullmatch(
            r"(the )?(example|option|alternative|variant|choice|preview|suggestion|candidate|number"
            r"|no)\s*(number\s*)?\d+",
            text,
        )
    ):
        if has(text, r"step") and not has(
            text, r"example|option|alternative|variant|choice|preview|suggestion|candidate"
        ):
            return None
        return Command("accept", {"choice": int(match.group(1))})
    ordinal = re.search(
        r"\b("
        + "|".join(ORDINALS)
        + r")\s+(?:one\s+|of\s+(?:the|those|these|them)\s+)?(?:one|example|option|alternative|variant|choice"
        r"|preview|suggestion)s?\b",
        text,
    )
    if ordinal and (has(text, verbs) or text.startswith(("the ", ordinal.group(1)))):
        return Command("accept", {"choice": ORDINALS[ordinal.group(1)]})
    return None


SPEC = CommandSpec(
    "accept",
    "keep a proposal, end a grid stage, or take example n",
    "{} or {choice: n}",
    ("accept", "lgtm", "take option 2"),
    rules=((9, _rule_accept_choice),),  # keep/drop replies: verdict.rule_verdict
)
