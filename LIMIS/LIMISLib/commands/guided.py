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
    # what was done and what was wanted ("you got the stomach, I wanted the spleen")
    r"|(?:got|segmented|found|picked|selected|gave me|did|outlined|contoured) (?:the )?\w+(?: \w+)? (?:but )?"
    r"(?:i|we) (?:wanted|asked for|meant|needed|requested|asked you for)"
    r"|(that|this|it) is the \w+( \w+)? not the|that is not it|this is not it|not the organ i (want|wanted"
    r"|meant|asked for)|looking at the wrong|in the wrong (place|spot|area|part)"
)


#: Over- and under-segmentation as word classes: a size word after "too", a crossing verb with a
#: boundary preposition ("it creeps into the fat"), a losing verb with a part noun ("it chopped off the
#: tip"), a failing verb with a covering verb ("it fails to cover the top").
_BIG = r"big|bigger|large|wide|generous|fat|greedy|loose|much|far|bulky|broad|extensive|inclusive"
_SMALL = r"small|little|tight|narrow|thin|conservative|timid|short|skinny|restrictive|strict"
_CROSSING = (
    r"(?:leak|bleed|spill|overflow|extend|spread|creep|invad|encroach|grow|run|go|cross|bulg|protrud|stray"
    r"|wander|expand|seep|flow|pour|spread|reach)\w* (?:\w+ )?(?:into|beyond|past|outside|over|onto|across)"
)
_PART = r"part|parts|piece|bit|tip|edge|lobe|portion|pole|rim|border|top|bottom|half|end|side|chunk|section"
_LOSING = (
    r"(?:(?:miss|cut|chop|clip|los|lost|drop|skip|omit|ignor|exclud)\w* (?:out |off )?"
    r"|(?:leav\w*|left) out )"
    rf"(?:\w+ ){{0,2}}(?:{_PART})"
)
_FAILING = (
    r"(?:does not|did not|do not|fails? to|failed to|not) (?:fully |quite |completely )?"
    r"(?:include|cover|reach|contain|capture|get|extend to|go to|encompass)"
)

_OVER = (
    rf"too (?:{_BIG})|{_CROSSING}|"
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
    rf"too (?:{_SMALL})|{_LOSING}|{_FAILING}|"
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


#: Low contrast as word classes: a contrast/visibility noun with a bad-quality word, or a
#: difficulty modifier with a perception verb ("I can barely tell it apart", "hard to make out").
_BAD = (
    r"poor|low|bad|weak|terrible|awful|horrible|lousy|minimal|little|no|not great|not good|limited"
    r"|not enough|insufficient|too little"
)
_CONTRAST_NOUN = r"contrast|visibility|conspicuity|differentiation|separation"
_DIFFICULT = (
    r"barely|hardly|scarcely|can not|could not|cannot|difficult to|hard to|struggle to|not easy to"
    r"|impossible to|unable to"
)
_PERCEIVE = r"see|tell|distinguish|differentiate|make out|discern|separate|spot|identify|recogni[sz]e"
_LOW = (
    rf"(?:{_CONTRAST_NOUN}) (?:\w+ ){{0,3}}(?:{_BAD})|(?:{_BAD}) (?:{_CONTRAST_NOUN})"
    rf"|(?:{_DIFFICULT}) (?:\w+ ){{0,2}}(?:{_PERCEIVE})"
    r"|low (hu|contrast|density|attenuation|intensity"
    r"|values|signal|hounsfield)|hypodense|hypo ?attenuat\w*|hypo ?dense|dark|darker|faint|barely visible"
    r"|poorly visible|fatty|washed out"
    r"|low hu values|blends (in|with|into)"
    r"|similar to (the )?(surrounding|background|fat|neighbou?rs?)"
    r"|hardly visible|isodense|looks grey|too grey"
    r"|(barely|hardly|does not|do not|not) stand(s)? out|(barely|not) distinguishable"
    r"|lacks contrast|low density|dim|subtle|indistinct"
)

#: Words that negate a problem cue right before it ("it is not leaking", "no longer too big").
_NEGATION_BEFORE = re.compile(r"\b(?:not|no|never|nothing|hardly any)\b(?: \w+){0,1} ?$")


def _negated(text: str, start: int) -> bool:
    """Whether the cue at ``start`` is negated by the word(s) right before it (its clause drops it)."""
    return bool(_NEGATION_BEFORE.search(text[:start]))


def _rule_guided(text: str, context: ParseContext | None) -> Command | None:
    if has(text, BOX_RE) and has(text, r"too (small|big|large|tight|narrow|wide)"):
        return None
    negated_cue = False
    for problem, pattern in (
        ("wrong_part", WRONG_PART),
        ("low_contrast", _LOW),
        ("oversegmented", _OVER),
        ("undersegmented", _UNDER),
    ):
        for match in re.finditer(rf"\b(?:{pattern})\b", text):
            if problem == "undersegmented" and re.search(r"\bnot (all|enough) (clicks|cells)\b", text):
                break
            # "it's not leaking, it's missing part": a negated cue drops its problem (the match that
            # carries its own negation, "does not cover", is the cue itself)
            if not match.group(0).startswith(("not ", "no ", "does not", "did not", "do not")) and _negated(
                text, match.start()
            ):
                negated_cue = True
                continue
            return Command("guided", {"problem": problem})
    if negated_cue:
        return None
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
