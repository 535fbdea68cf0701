"""The ``remove_component`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import ORDINALS, has, numbers_in

_COMPONENT = (
    r"components?|blobs?|islands?|pieces?|parts?|regions?|fragments?|spots?|specks?|clusters?|objects?"
    r"|bits?|chunks?|areas?|segments?|patches?"
)


_REMOVE = (
    r"remove|delete|drop|erase|get rid of|discard|eliminate|kill|throw away|cut|exclude|clear|take out"
    r"|take away|lose|ditch"
    r"|dump|strip|clean up|clean|tidy up|tidy"
)


def _rule_remove_component(text: str, context: ParseContext | None) -> Command | None:
    if re.search(
        r"\b(keep|retain|leave|only|isolate|preserve|extract)\b.*"
        r"\b(largest|biggest|main|big|largest connected|major|dominant|primary)\b"
        r"|\b(largest|biggest|main) (one|component|part|piece|blob|region|island|object) only\b"
        r"|\bonly the (largest|biggest|main)\b|^(the )?(largest|biggest) only$"
        r"|\b(except|but|other than|apart from|besides) (for )?the (largest|biggest|main)\b",
        text,
    ):
        return Command("remove_component", {"keep_largest": True})
    if not has(text, _REMOVE) or not has(text, _COMPONENT):
        return None
    # a component named by number or ordinal wins over the words for strays ("the second blob is spurious")
    match = re.search(rf"\b(?:{_COMPONENT})\s*(?:number\s*|no\s*)?(\d+)\b", text) or re.search(
        r"\bnumber\s*(\d+)\b", text
    )
    if match:
        return Command("remove_component", {"index": int(match.group(1))})
    ordinal = re.search(r"\b(" + "|".join(ORDINALS) + r")\b", text)
    if ordinal:
        return Command("remove_component", {"index": ORDINALS[ordinal.group(1)]})
    if re.search(
        r"\b(small|smaller|tiny|little|stray|extra|other|isolated|floating|loose|disconnected|scattered"
        r"|spurious|satellite|minor)\b",
        text,
    ) and not re.search(r"\d", text):
        return Command("remove_component", {"keep_largest": True})
    numbers = [int(v) for v in numbers_in(text) if v > 0 and float(v).is_integer()]
    if numbers:
        return Command("remove_component", {"index": numbers[0]})
    return None


SPEC = CommandSpec(
    "remove_component",
    "remove a connected component (1 = largest) or keep the largest",
    "{index} or {keep_largest: True}",
    ("keep the largest component", "remove component 2"),
    rules=((16, _rule_remove_component),),
)
