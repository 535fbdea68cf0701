"""The ``undo`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext


def _rule_undo(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"(undo|undo (that|it|this|the last (step|change|one|action)|last( step| change)?)|go back"
        r"|go back (one|1)( step)?|step back|back"
        r"|take (that|it|this) back|oops|whoops|oops undo( that)?|revert( that| it| this| the last (step"
        r"|change))?|previous( step)?"
        r"|(one|1) step back|back (one|1) step|cancel that|scratch that|undo the last thing|roll back"
        r"|rollback|roll it back"
        r"|(undo|reverse|revert|cancel|take back) what you (just )?did|(undo|reverse|revert|cancel) (your"
        r"|the) last (action|command|edit|change|step)"
        r"|go to the previous step|back to the previous (step|one|mask|version)|the previous one"
        r"|return to the previous (step|one|mask)"
        r"|that was a mistake|reverse that|unwind that)",
        text,
    ):
        return Command("undo")
    return None


def _rule_undo_count(text: str, context: ParseContext | None) -> Command | None:
    """ "undo 3 times", "undo twice", "go back 2 steps", "2 steps back", "undo the last 3 steps"."""
    multiples = {"twice": 2, "thrice": 3}
    verbs = r"undo|go back|step back|back|roll back|revert|take back|jump back|move back"
    patterns = (
        rf"(?:{verbs})\s+(-?\d+|twice|thrice)(?:\s*(?:times|x|steps?|changes?|edits?|actions?))?",
        rf"(?:{verbs})\s+(?:the\s+)?(?:last|previous)\s+(-?\d+)\s+(?:steps?|changes?|edits?|actions?)",
        r"(-?\d+)\s+steps?\s+back",
        r"undo\s+(?:it|that|this)\s+(-?\d+|twice|thrice)(?:\s+times)?",
    )
    for pattern in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            value = match.group(1)
            count = multiples[value] if value in multiples else int(value)
            return Command("undo", {} if count == 1 else {"count": count})
    return None


def _undo_volume(session, command: Command, *, last_was_propagation: bool = False, **_: Any):
    """Undo the last propagation, a propagated slice's step 0, or steps of the active slice."""
    return session.undo(command, last_was_propagation=last_was_propagation)


SPEC = CommandSpec(
    "undo",
    "go back count steps (a pending proposal counts as one)",
    "{} or {count: n}",
    ("undo", "undo 3 times", "go back 2 steps", "ctrl z"),
    rules=((4, _rule_undo_count), (5, _rule_undo)),
    volume_handler=_undo_volume,
)
