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


#: A question about what may be typed, anywhere in a sentence: a question word, the user as
#: subject, a modal of ability or permission, a verb of saying ("what I'm allowed to type",
#: "could you tell me what I am able to enter"), or a request to list the commands.
_MODAL = (
    r"can|could|may|might|should|am able to|are able to|am allowed to|are allowed to|am supposed to|may i"
)
_SAY = r"say|type|write|enter|ask|input|tell you|use|do(?: here| now| next)?$"
_WHAT_TO_SAY = (
    rf"\b(?:what|which|how much) (?:\w+ ){{0,2}}"
    rf"(?:(?:i|we) (?:{_MODAL})|(?:am i|are we) (?:able|allowed|supposed) to"
    rf"|(?:can|could|may|should|do) (?:i|we))"
    rf"(?: \w+)? (?:{_SAY})\b"
    r"|\b(?:list|show|give|tell) (?:me )?(?:the |all |all the |your |available |possible )*"
    r"(?:commands|command list|instructions)\b"
    r"|^what (?:\w+ ){0,3}(?:now|next)$"  # "what now", "what should I do next" (the filler "should i" gone)
)


def _rule_help(text: str, context: ParseContext | None) -> Command | None:
    """ "help", "what can I say", "list the commands", "I'm lost": help words and question words only,
    or a question about what may be typed anywhere in the sentence."""
    words = set(text.split())
    if words <= _HELP_WORDS and (words & _HELP_MARKERS or re.search(_HELP_QUESTION, text)):
        return Command("help")
    if re.search(_WHAT_TO_SAY, text):
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
