"""The ``ensemble`` command: its vocabulary and parse rules."""

from __future__ import annotations

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


SPEC = CommandSpec(
    "ensemble",
    "mean of bigger box, centre click and another window",
    "{}",
    ("ensemble",),
    rules=((14, _rule_ensemble),),
)
