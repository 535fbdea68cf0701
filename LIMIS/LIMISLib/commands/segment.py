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


#: Shapes that ask for a segmentation wherever they stand in the sentence, built from one verb
#: class (segment, outline, contour, delineate, annotate): the bare verb ("..., segment it"), its
#: gerund after an aspect verb ("begin segmenting the spleen"), its participle after a wish ("I'd
#: like the aorta delineated"), its noun after a making verb ("produce a segmentation for the
#: stomach"), or a change of target ("work on", "switch over to", "start with").
_VERB = r"(?:segment|outline|contour|delineate|annotate)"
_STEM = r"(?:segment|outlin|contour|delineat|annotat)"
_SEGMENT_INTENT = (
    rf"\b{_VERB}\b"
    rf"|\b(?:begin|start|continue|keep|commence|try|go on|mind)\w* (?:\w+ )?{_STEM}ing\b"
    rf"|\b(?:like|want|need|see|get|have)\b(?: \w+){{0,7}} {_STEM}ed\b"
    r"|\b(?:make|produce|create|do|perform|start|begin|initiate|run|get|give me|want|need|like|generate)\w*"
    r" (?:a |the |an )?(?:new )?(?:segmentation|mask|contour|outline|delineation|annotation)s? (?:of|for)\b"
    r"|\b(?:work|working|move|moving|go|going|switch|switching|change|changing)(?: over)? (?:on|onto|to)\b"
    r"|\b(?:start|started|starting|begin|began|beginning|continue|continuing) (?:with|on)\b"
    r"|\b(?:do|tackle|handle|take|segment)\b(?: \w+)? next\b|\bnext (?:organ|structure|target)\b"
)
#: A question or report about what was done ("why did you segment the stomach") asks for nothing.
_REPORT = (
    r"\b(?:did|have|has|had|was|were|is|are) (?:you |it |we )?(?:\w+ )?"
    r"(?:segment|outline|contour|delineate|annotate)\w*\b"
    r"|\b(?:you|it|that|this|which|model) (?:\w+ )?(?:segmented|outlined|contoured|delineated|annotated)\b"
)

#: Words that name a group rather than one structure ("both lungs", "the whole left lung").
_GROUP_WORDS = {"both", "whole", "entire", "all", "two", "complete", "full", "and"}

#: A side given as one letter ("seg L lung", "r kidney").
_SIDE_LETTERS = {"l": "left", "r": "right", "lt": "left", "rt": "right"}


def _asks_to_segment(text: str) -> bool:
    """A request for a segmentation anywhere in the sentence, unless it reports what was done."""
    return bool(re.search(_SEGMENT_INTENT, text)) and not re.search(_REPORT, text)


def group_members(candidate: str) -> list[str]:
    """The structures a group name stands for ("left lung" -> its lobes, "kidneys" -> left and right);
    empty when ``candidate`` is one structure or no group."""
    from ..organ_vocabulary import vocabulary
    from .lexicon import organ_words

    words = []
    for word in candidate.split():
        word = _SIDE_LETTERS.get(word, word)
        if word in _GROUP_WORDS:
            continue
        if word not in organ_words() and word.endswith("s") and word[:-1] in organ_words():
            word = word[:-1]  # plural: lungs, kidneys
        words.append(word)
    if not words or not any(w in organ_words() and w not in {"left", "right"} for w in words):
        return []
    names = sorted({name for name in vocabulary().values() if set(words) <= set(name.lower().split())})
    return names if 2 <= len(names) <= 6 else []


def _group_ask_back(members: list[str]) -> Command:
    return Command("unknown", {"suggestions": [f"segment the {name}" for name in members], "ambiguous": True})


def _names_organ(words: list[str]) -> bool:
    """Whether any word is a structure word (typos were corrected towards them by ``normalise``)."""
    from .lexicon import organ_words

    generic = {"and", "to", "part", "left", "right"}
    known = organ_words()
    return any(
        (w in known or (w.endswith("s") and w[:-1] in known)) and w not in generic and not w.isdigit()
        for w in words
    )


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
    sided = " ".join(_SIDE_LETTERS.get(w, w) for w in candidate.split())
    if len(candidate.split()) <= 5:
        members = group_members(sided)
        if members and not set(sided.split()) & {"lobe", "lobes"}:
            return _group_ask_back(members)
        try:
            return Command("segment", {"target": resolve_structure(sided, cutoff=0.85)})
        except KeyError:
            pass
    if not re.match(rf"(?:{_SEGMENT_VERBS})\b", text) and not _asks_to_segment(text):
        return None
    return _named_structure(sided.split())


def _named_structure(words: list[str]) -> Command | None:
    """The one structure (or group: an ask-back) named somewhere in ``words``, longest span first."""
    from ..organ_vocabulary import resolve_structure

    for length in range(min(4, len(words)), 0, -1):
        found: dict[str, int] = {}
        for start in range(len(words) - length + 1):
            if not _names_organ(words[start : start + length]):
                continue
            span = " ".join(words[start : start + length])
            members = group_members(span) if "lobe" not in span else []
            if members:
                return _group_ask_back(members)
            try:
                found.setdefault(resolve_structure(span, cutoff=0.9), start)
            except KeyError:
                continue
        if len(found) == 1:
            return Command("segment", {"target": next(iter(found))})
        if found:
            return None  # two structures named: not one segmentation
    return None


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
