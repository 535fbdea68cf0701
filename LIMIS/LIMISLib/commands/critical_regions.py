"""The ``critical_regions`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has


def _rule_critical(text: str, context: ParseContext | None) -> Command | None:
    if has(text, r"critical|critical regions?|critical points?|critical areas?"):
        return Command("critical_regions")
    if re.search(
        r"\b(uncertain|unsure|unclear|ambiguous|doubtful|borderline|questionable|not sure|not certain"
        r"|less confident|least confident|unconfident|least sure|less sure|least certain|less certain"
        r"|not confident|in doubt|guessing)\b",
        text,
    ) and has(
        text,
        r"regions?|areas?|points?|parts?|pixels?|spots?|where|what|which|show|ask|tell|find|list|bits?"
        r"|zones?",
    ):
        return Command("critical_regions")
    if re.fullmatch(
        r"(ask me|ask me (some |a few )?questions|ask me about (it|the (mask|edges|borders))|quiz me"
        r"|ask questions|any questions)",
        text,
    ):
        return Command("critical_regions")
    if re.search(
        r"\bwhere (are|were) you (unsure|uncertain|not sure|in doubt)\b|\bwhat are you unsure about\b", text
    ):
        return Command("critical_regions")
    return None


SPEC = CommandSpec(
    "critical_regions",
    "ask yes/no about the uncertain regions",
    "{}",
    ("critical regions",),
    rules=((13, _rule_critical),),
)
