"""The ``examples`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has


def _rule_examples(text: str, context: ParseContext | None) -> Command | None:
    if has(text, r"(?:different|other|several|some|a few|alternative) (?:ways|corrections|versions|fixes)"):
        return Command("examples")
    if has(text, r"examples?|alternatives?|previews?|variants?|variations?|possibilities|choices|what if"):
        if re.search(r"\b(?:example|option|alternative|variant|choice|preview)\s*(?:number\s*)?\d+\b", text):
            return None
        return Command("examples")
    if has(
        text,
        r"options|suggestions|suggest|what can i try|what could i try|what should i try|what would help"
        r"|give me ideas|show me what you can do",
    ):
        if re.search(r"\b(?:option|suggestion)\s*(?:number\s*)?\d+\b", text):
            return None
        return Command("examples")
    return None


SPEC = CommandSpec(
    "examples",
    "preview example corrections, then take one",
    "{}",
    ("show examples",),
    rules=((15, _rule_examples),),
)
