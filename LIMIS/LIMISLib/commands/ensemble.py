"""The ``ensemble`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has


def _rule_ensemble(text: str, context: ParseContext | None) -> Command | None:
    if has(
        text,
        r"ensemble|ensembles|ensembling|combine|combined|combination|merge|fuse|fusion|average|averaging"
        r"|vote|voting|majority|consensus|mix",
    ):
        return Command("ensemble")
    return None


def _rule_ensemble_of_variants(text: str, context: ParseContext | None) -> Command | None:
    """An averaging verb over a list of variants ("average a bigger box, a centre click and another
    window"): the ensemble's own description, before the variants' own rules read one of them."""
    if re.search(r"\b(?:average|averaging|mean|combine|merge|fuse|blend)\b(?: \w+){1,8} and \w", text):
        return Command("ensemble")
    return None


SPEC = CommandSpec(
    "ensemble",
    "mean of bigger box, centre click and another window",
    "{}",
    ("ensemble",),
    rules=((3.5, _rule_ensemble_of_variants), (14, _rule_ensemble)),
)
