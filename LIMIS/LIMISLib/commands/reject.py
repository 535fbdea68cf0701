"""The ``reject`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext

_REJECT_TEXT = (
    r"(reject|rejected|reject (it|this|that|the change|the proposal|the suggestion)|discard|discard (it|this"
    r"|that|the change)|no thanks|no thank you"
    r"|do not keep( it| this| that)?|throw (it|that|this) away|throw away|worse|(that|this|it) is worse"
    r"|(that|this|it) is not better|not better"
    r"|(that|this|it) (made|makes) (it )?worse|made it worse|much worse|way worse|skip|skip (it|this|that"
    r"|this one|that one)|cancel|dismiss|drop it|never mind|nevermind|forget it"
    r"|keep the (old|previous|original) (one|mask|version)|no keep the (old|previous) (one|mask)|not good"
    r"|bad|ignore|ignore (it|this|that)"
    r"|i do not like (it|this|that)|do not like (it|this|that)|no change|no do not|reject and continue"
    r"|leave it|leave it as it was"
    r"|((that|this|it) is )?not (an improvement|better|good|helpful|right)|no improvement|(no )?(do not"
    r"|never) (take|keep|use|apply|accept) (it|this|that)|(that|this|it) did not help|(that|this"
    r"|it) does not help|worse than before|that is wrong keep the old one)"
)


def _rule_reject(text: str, context: ParseContext | None) -> Command | None:
    return Command("reject") if re.fullmatch(_REJECT_TEXT, text) else None


SPEC = CommandSpec(
    "reject",
    "drop what is pending; stop / cancel / don't X decline X",
    "{}",
    ("reject", "stop propagating"),
    rules=((6.5, _rule_reject),),
)
