"""The ``guided`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import BOX_RE, has

PROBLEMS: tuple[str, ...] = ("wrong_part", "oversegmented", "undersegmented", "low_contrast")


#: Canonical phrasing per guided problem (suggestions).
PROBLEM_EXAMPLES: dict[str, str] = {
    "wrong_part": "wrong part segmented",
    "oversegmented": "you over-segmented",
    "undersegmented": "you under-segmented",
    "low_contrast": "the structure has low HU values",
}


WRONG_PART = (
    r"wrong (part|organ|structure|thing|region|spot|place|area|location|object|one|target|image part|side"
    r"|slice area)|not (that|this) one"
    r"|not the right (one|organ|structure|thing|part|spot|place)|(that|this|it) is not (the|a"
    r"|my) (\w+ )?(organ|structure|liver|kidney|spleen|target)"
    r"|segmented (something|the) (else|wrong)|something else|completely (off|wrong|missed)|totally (off"
    r"|wrong)|off target|somewhere else"
    r"|different (organ|structure|thing)|picked the wrong|not what i (asked|wanted|meant)|missed the (organ"
    r"|target|structure) (completely|entirely)"
    r"|elsewhere|wrong image part|you are in the wrong place|that is the wrong|nowhere near|way off"
    r"|missed it completely|not even close"
    r"|(segmented|found|picked|got|selected) the (\w+ )?(spleen|liver|kidney|stomach|bowel|colon|aorta|heart"
    r"|muscle|bone) instead"
    r"|(that|this|it) is the \w+( \w+)? not the|that is not it|this is not it|not the organ i (want|wanted"
    r"|meant|asked for)|looking at the wrong|in the wrong (place|spot|area|part)"
)


_OVER = (
    r"over ?segment\w*|oversegment\w*|too (much|big|large|generous|wide|far|greedy|fat|many|loose|loosely)"
    r"|more than the (organ|structure|\w+)"
    r"|spills?|spilling|spilled|leaks?|leaking|leaked|leakage|bleeds?|bleeding|overflow\w*|extends? (into"
    r"|beyond|past|outside)"
    r"|includ(es|ed|e|ing) (the |some )?(fat|vessels?|bowel|surrounding|neighbou?ring|adjacent|other"
    r"|background|bone|muscle|air|stomach|colon|stuff)"
    r"|beyond the (border|boundary|edge|organ|contour|outline)|outside the (organ|border|boundary|edge"
    r"|contour|outline)"
    r"|false positives?|extra (tissue|stuff|bits)|excess\w*|overshoot\w*|over ?estimat\w*|(goes|crosses"
    r"|reaches|grows|runs|creeps|went) (into|over)"
    r"|sticking out|encroach\w*|the mask is (too )?(big|large)|mask is bigger than|bigger than the (organ"
    r"|structure|\w+)|too much (tissue|area)"
    r"|grabbed too much|takes too much|took too much|covers too much|covering too much|also (got|took"
    r"|segmented|includes?) the"
    r"|overreach\w*|over the (border|edge|boundary)|past the (border|edge|boundary)|invad\w+|creeping into"
    r"|smeared|swallowed"
)


_UNDER = (
    r"under ?segment\w*|undersegment\w*|too (small|little|tight|narrow|conservative|thin|timid)|missing"
    r"|missed (a |the |some )?(part|piece|bit|tip|edge|lobe|portion|pole|rim|border|top|bottom)"
    r"|missed (a |the |some )?\w+ (part|piece|bit|tip|edge|lobe|portion|pole|rim|border|top|bottom)"
    r"|missed (some|part)|half (of it )?(is )?(gone|missing)|half of it|not (all|the whole|everything"
    r"|complete|enough|covering)"
    r"|incomplete|cut off|cuts off|partial|partially|only (part|half|a part|some)|(is|are|got) lost|gone"
    r"|left out|under ?estimat\w*"
    r"|holes?|gaps?|does not cover|did not cover|not covered|false negatives?|more of (it|the (organ"
    r"|structure|\w+))|the mask (is )?(too )?small"
    r"|mask should be bigger|smaller than the (organ|structure|\w+)|does not reach|did not reach|stops short"
    r"|falls short|not (the )?entire"
    r"|lacks|lacking|need more|needs more|chopped|truncated|clipped|a piece is missing|parts are missing"
    r"|bits are missing|not fully"
)


_LOW = (
    r"contrast is (\w+ )?(poor|low|bad|weak|terrible|awful)|low (hu|contrast|density|attenuation|intensity"
    r"|values|signal|hounsfield)|hypodense|hypo ?attenuat\w*|hypo ?dense|dark|darker|faint|barely visible"
    r"|hard to see|poorly visible|fatty|washed out|poor contrast|not much contrast|little contrast"
    r"|low hu values|blends (in|with|into)"
    r"|similar to (the )?(surrounding|background|fat|neighbou?rs?)|can not (see|distinguish|tell)"
    r"|hardly visible|isodense|looks grey|too grey"
    r"|(barely|hardly|does not|do not|not) stand(s)? out|(barely|not) distinguishable|no contrast"
    r"|lacks contrast|low density|dim|subtle|difficult to see|hard to distinguish|indistinct"
)


def _rule_guided(text: str, context: ParseContext | None) -> Command | None:
    if has(text, BOX_RE) and has(text, r"too (small|big|large|tight|narrow|wide)"):
        return None
    for problem, pattern in (
        ("wrong_part", WRONG_PART),
        ("low_contrast", _LOW),
        ("oversegmented", _OVER),
        ("undersegmented", _UNDER),
    ):
        if re.search(rf"\b(?:{pattern})\b", text):
            if problem == "undersegmented" and re.search(r"\bnot (all|enough) (clicks|cells)\b", text):
                continue
            return Command("guided", {"problem": problem})
    explicit = re.search(
        r"\b(?:guided|strategy|problem)\b.*\b(wrong part|over|under|low contrast|low hu)\b", text
    )
    if explicit:
        key = explicit.group(1)
        problem = {"wrong part": "wrong_part", "over": "oversegmented", "under": "undersegmented"}.get(
            key, "low_contrast"
        )
        return Command("guided", {"problem": problem})
    return None


SPEC = CommandSpec(
    "guided",
    "a guided multi-step strategy for a problem",
    "{problem: wrong_part|oversegmented|undersegmented|low_contrast}",
    ("you over-segmented", "you under-segmented", "wrong part segmented", "the structure has low HU values"),
    rules=((23, _rule_guided),),
)
