"""The ``segment`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext

_SEGMENT_VERBS = (
    r"segment|segmentation of|outline|contour|delineate|find|locate|detect|show|show me|select|label|mark"
    r"|get|do|draw|annotate|highlight"
    r"|identify|where is|go to|next|now|start with|begin with|let us do|let us segment|i want|i need|give me"
    r"|target|look for|search for"
    r"|let us look at|look at|let us see|view|check"
    r"|switch to|change to|new structure|new target|track"
)


def _sided_structures(candidate: str) -> list[str]:
    """Left and right structures a side-less name could mean ("kidney" -> kidney left, kidney right)."""
    from ..organ_vocabulary import vocabulary

    words = set(candidate.split())
    if not words or words & {"left", "right"}:
        return []
    names = {
        name
        for phrase, name in vocabulary().items()
        if words <= set(phrase.split()) and ({"left", "right"} & set(name.split()))
    }
    return sorted(names)[:3] if 0 < len(names) <= 4 else []


def _names_organ(words: list[str]) -> bool:
    """Whether any word is a structure word (typos were corrected towards them by ``normalise``)."""
    from .lexicon import organ_words

    generic = {"and", "to", "part", "left", "right"}
    return any(w in organ_words() and w not in generic and not w.isdigit() for w in words)


def rule_segment(text: str, context: ParseContext | None) -> Command | None:
    from ..organ_vocabulary import resolve_structure

    stripped = re.sub(rf"^(?:{_SEGMENT_VERBS})\b\s*", "", text).strip()
    stripped = re.sub(
        r"\b(the|a|an|please|organ|structure|now|instead|next|one|for|on|of|in|is)\b", " ", stripped
    )
    stripped = re.sub(r"\bside\b", " ", stripped)
    candidate = " ".join(stripped.split())
    # fuzzy look-ups cost milliseconds each: only for texts that name a structure word at all
    if not candidate or not _names_organ(candidate.split()):
        return None
    if len(candidate.split()) <= 5:
        try:
            return Command("segment", {"target": resolve_structure(candidate, cutoff=0.85)})
        except KeyError:
            sided = _sided_structures(candidate)
            if sided:
                return Command("unknown", {"suggestions": [f"segment the {name}" for name in sided]})
    if not re.match(rf"(?:{_SEGMENT_VERBS})\b", text):
        return None
    words = candidate.split()
    best: tuple[int, str] | None = None
    for length in range(min(4, len(words)), 0, -1):
        for start in range(len(words) - length + 1):
            if not _names_organ(words[start : start + length]):
                continue
            span = " ".join(words[start : start + length])
            try:
                name = resolve_structure(span, cutoff=0.9)
            except KeyError:
                continue
            if best is None or length > best[0]:
                best = (length, name)
        if best:
            break
    return Command("segment", {"target": best[1]}) if best else None


def _segment_volume(session, command: Command, **_: Any):
    """A new structure is segmented first and switched to only when that worked."""
    return session._segment(command, box_xyxy=command.args.get("box"))


SPEC = CommandSpec(
    "segment",
    "segment a structure",
    '{target}: canonical DAP name ("kidney left")',
    ("segment the liver", "seg lft kidney"),
    rules=((24, rule_segment),),
    volume_handler=_segment_volume,
)
