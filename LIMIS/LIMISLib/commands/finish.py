"""The ``finish`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import has, numbers_in, step_reference_in


def _rule_finish(text: str, context: ParseContext | None) -> Command | None:
    if (
        context is not None
        and context.pending == "grid"
        and re.fullmatch(
            r"(i am |we are )?(done|finished|that is (it|all|enough))( with (the )?(clicks|grid))?"
            r"|enough( clicks)?|no more( clicks)?",
            text,
        )
    ):
        return None  # handled by the context rule as "accept" (end of the grid stage)
    finish_words = (
        r"finish|finished|finalise|finalize|final|done|complete|completed|submit|save|export|wrap up"
        r"|wrap it up"
        r"|call it a day|that is it|that will do|good enough|we are done|i am done|end the session|stop here"
        r"|store it|commit"
    )
    if not has(text, finish_words):
        return None
    if has(text, r"not done|not finished|not final|not complete|not good enough"):
        return None
    if has(text, r"propagate|propagation|slices"):
        return None
    step = step_reference_in(text)
    if step is None:
        numbers = [v for v in numbers_in(text) if v >= 0 and float(v).is_integer()]
        if numbers and has(
            text, r"with|use|take|choose|pick|from|at|is the final|as final|as the final|final"
        ):
            step = int(numbers[0])
    return Command("finish", {"step": step})


SPEC = CommandSpec(
    "finish",
    "choose the final step (the one written as the result)",
    "{step} (None = the current step)",
    ("finish", "finish with step 3"),
    rules=((10, _rule_finish),),
)
