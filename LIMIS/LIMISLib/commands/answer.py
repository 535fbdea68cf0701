"""The ``answer`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import words_of

_YES_TEXT = (
    r"(yes|yeah|yea|yep|yup|ya|aye|y|affirmative|correct|true|indeed|of course|absolutely|definitely"
    r"|certainly|exactly|that is right"
    r"|it is|it does|it belongs|belongs|foreground|part of it|it is part of it|that is part of it"
    r"|that is part of the (organ|structure|\w+)"
    r"|yes it is|yes it does|yes it belongs|yes that is part of it|yes include it|include it|include"
    r"|include that|yes definitely"
    r"|that belongs (to it|to the (organ|structure|\w+))|it belongs to (it|the (organ|structure|\w+))"
    r"|yes it is part of (it|the (organ|structure|\w+))"
    r"|yes (that|this|it) is (the )?(organ|structure|\w+)|that is (the )?(organ|\w+) tissue"
    r"|it is (the )?(organ|\w+) tissue|inside|in|positive)"
)


_NO_TEXT = (
    r"(no|nope|nah|n|negative|false|incorrect|not really|not at all|definitely not|absolutely not|no way"
    r"|it is not|it does not|does not belong"
    r"|it does not belong|not part of it|it is not part of it|that is not part of it|background"
    r"|that is background|it is background"
    r"|no it is not|no it does not|no that is background|exclude|exclude it|exclude that|no exclude it"
    r"|outside|out|no that is (fat|bowel|vessel|bone|muscle|air)"
    r"|that is (fat|bowel|a vessel|bone|muscle|air|something else)|it is (fat|bowel|a vessel|bone|muscle|air"
    r"|something else)"
    r"|no that is not part of (it|the (organ|structure|\w+))|not part of the (organ|structure|\w+)"
    r"|it is not (the )?(organ|\w+)"
    r"|no it is not part of (it|the (organ|structure|\w+))|no it is (fat|bowel|a vessel|bone|muscle|air))"
)


def rule_answer(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(_YES_TEXT, text):
        return Command("answer", {"value": True})
    if re.fullmatch(_NO_TEXT, text):
        return Command("answer", {"value": False})
    return None


ANSWER_MARKERS = words_of("yes yeah yep yup part belongs belong inside included correct foreground")


ANSWER_NEGATIONS = words_of("no nope not outside background exclude excluded")


ANSWER_VOCAB = (
    ANSWER_MARKERS
    | ANSWER_NEGATIONS
    | words_of(
        "that it this is part of the to organ structure region area one in does definitely tissue fat"
        " bowel vessel a spot also bit piece zone really both those these they are too just only"
    )
)


SPEC = CommandSpec(
    "answer",
    "answer the open yes/no question",
    "{value: bool}",
    ("yes", "no", "nah not part of it"),
    rules=((7, rule_answer),),
)
