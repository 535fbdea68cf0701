"""The ``help`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has, words_of

_HELP_MARKERS = words_of("help commands command instructions usage lost")
_HELP_WORDS = _HELP_MARKERS | words_of(
    "what which how can could do does i you me my say type understand know list show the all available are"
    " is there this it work use am need kinds kind of here options thing things tool program app system"
    " tell should"
)
#: Questions about the system itself ("what can I say", "how does this work").
_HELP_QUESTION = (
    r"what (?:can|could|do|should) (?:i|you) (?:say|do|type|understand|know)"
    r"|what (?:i|you) (?:can|could|should) (?:say|do|type|understand)|how (?:does|do) (?:this|it|i)"
)


def _rule_help(text: str, context: ParseContext | None) -> Command | None:
    """ "help", "what can I say", "list the commands", "I'm lost": help words and question words only."""
    words = set(text.split())
    if words <= _HELP_WORDS and (words & _HELP_MARKERS or re.search(_HELP_QUESTION, text)):
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
