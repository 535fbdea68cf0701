"""The ``answer`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import words_of

#: Words that say "yes, it belongs" / "no, it does not" (a reply made of answer vocabulary only).
ANSWER_MARKERS = words_of(
    "yes yeah yea yep yup ya aye y affirmative correct true indeed absolutely definitely certainly exactly"
    " belongs belong part include included inside positive foreground course"
)
ANSWER_NEGATIONS = words_of(
    "no nope nah n negative false incorrect not outside background exclude excluded"
    # tissue that is not the structure: "no, that's fat", "it is bowel", "something else"
    " fat bowel vessel bone muscle air else"
)
ANSWER_VOCAB = (
    ANSWER_MARKERS
    | ANSWER_NEGATIONS
    | words_of(
        "that it this is part of the to organ structure region area one in does do definitely tissue"
        " a spot also bit piece zone really both those these they are too just only it at all way of"
        " something belong tissue just"
        # the conversational frame around an answer ("I believe this region is included, yes")
        " i we believe think guess would say am pretty fairly quite so well honestly actually sure"
    )
)
_IDIOMS = (
    (r"\bleave (?:(?:it|that|this) )?out\b", "exclude"),
    (r"^(?:it|that) (?:is|does)$|^(?:(?:it|that) is )?in$|^that is right$", "yes"),
    (r"^(?:(?:it|that) is )?out$", "no"),
)


def rule_answer(text: str, context: ParseContext | None) -> Command | None:
    """A yes/no answer: only answer words and organ names, with a yes or a no marker in them."""
    from .guided import WRONG_PART
    from .lexicon import organ_words

    if re.search(rf"\b(?:{WRONG_PART})\b", text):
        return None
    for pattern, replacement in _IDIOMS:
        text = re.sub(pattern, replacement, text)
    words = set(text.split())
    if not words or len(words) > 10 or re.search(r"\d", text) or not words <= ANSWER_VOCAB | organ_words():
        return None
    value = False if words & ANSWER_NEGATIONS else True if words & ANSWER_MARKERS else None
    if value is None:
        return None
    if context is not None and context.pending == "proposal":
        return Command("accept" if value else "reject")  # "yup" / "nope" to a proposal
    return Command("answer", {"value": value})


SPEC = CommandSpec(
    "answer",
    "answer the open yes/no question",
    "{value: bool}",
    ("yes", "no", "nah not part of it"),
    rules=((7, rule_answer),),
)
