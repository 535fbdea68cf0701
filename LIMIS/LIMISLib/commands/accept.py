"""The ``accept`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import ORDINALS, has


def _rule_accept_choice(text: str, context: ParseContext | None) -> Command | None:
    match = re.search(
        r"\b(?:example|option|alternative|variant|choice|preview|suggestion|version|candidate|number"
        r"|no)\s*(?:number\s*)?(\d+)\b",
        text,
    )
    verbs = (
        r"take|choose|pick|select|use|go with|want|apply|accept|keep|prefer|like|i will take|let us take"
        r"|give me"
    )
    if match and (
        has(text, verbs)
        or re.fullmatch(
            r"(the )?(example|option|alternative|variant|choice|preview|suggestion|candidate|number"
            r"|no)\s*(number\s*)?\d+",
            text,
        )
    ):
        if has(text, r"step") and not has(
            text, r"example|option|alternative|variant|choice|preview|suggestion|candidate"
        ):
            return None
        return Command("accept", {"choice": int(match.group(1))})
    ordinal = re.search(
        r"\b("
        + "|".join(ORDINALS)
        + r")\s+(?:one\s+|of\s+(?:the|those|these|them)\s+)?(?:one|example|option|alternative|variant|choice"
        r"|preview|suggestion)s?\b",
        text,
    )
    if ordinal and (has(text, verbs) or text.startswith(("the ", ordinal.group(1)))):
        return Command("accept", {"choice": ORDINALS[ordinal.group(1)]})
    return None


_ACCEPT_TEXT = (
    r"(accept|accepted|accept (it|this|that|the change|the proposal|the suggestion|changes)|keep|keep (it"
    r"|this|that|the change|this one|that one|the new one|the new mask|the default)"
    r"|ok|okay|ok good|okay good|k|good|great|fine|perfect|nice|excellent|lovely|super|cool|awesome"
    r"|brilliant|good job|well done"
    r"|looks (good|better|fine|right|great|ok|okay|nice|correct)|that looks (good|better|fine|right|great|ok"
    r"|okay|correct)|this looks (good|better|fine|right|great)"
    r"|(that|this|it) is (good|better|fine|great|perfect|right|correct|an improvement|much better)|better"
    r"|much better|way better|a lot better"
    r"|apply|apply (it|this|that)|confirm|confirmed|take (it|this|that|this one|that one)|i will take (it"
    r"|this|that)|sure|go ahead|do it|agreed|approve|approved"
    r"|that works|works for me|keep the change|keep the new (one|mask|version)|yes keep (it|this|that)"
    r"|yes please keep (it|this)|i like (it|this|that)"
    r"|i like the new one|improvement|it improved|that improved it|good keep it|okay keep it|ok keep it"
    r"|fine keep it|yes that is better|yes better"
    r"|let us keep (it|this|that)|sounds good|all right|alright|right keep it|that is the one|next|continue"
    r"|proceed|carry on|go on|move on)"
)


def _rule_accept(text: str, context: ParseContext | None) -> Command | None:
    return Command("accept") if re.fullmatch(_ACCEPT_TEXT, text) else None


SPEC = CommandSpec(
    "accept",
    "keep a proposal, end a grid stage, or take example n",
    "{} or {choice: n}",
    ("accept", "lgtm", "take option 2"),
    rules=((6, _rule_accept), (9, _rule_accept_choice)),
)
