"""The ``help`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has


def _rule_help(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"help|help me|\?+|what can i (say|do|type)|what (can|do) you (do|understand)|(list|show)( me)?( the"
        r"| all)?( available)? commands"
        r"|commands|what are the commands|how does (this|it) work|instructions|how do i use (this|it)|usage"
        r"|what are my commands"
        r"|i am lost|i need help",
        text,
    ):
        return Command("help")
    return None


def _rule_help_loose(text: str, context: ParseContext | None) -> Command | None:
    if has(text, r"help|commands|instructions|what can i say|what can i do|how does (this|it) work"):
        return Command("help")
    return None


SPEC = CommandSpec(
    "help",
    "what can I say",
    "{}",
    ("help",),
    rules=((3, _rule_help), (26, _rule_help_loose)),
)
