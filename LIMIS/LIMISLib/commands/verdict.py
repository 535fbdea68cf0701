"""Keep or drop: the verdict on a proposal, read from word classes instead of a list of sentences.

A reply is a verdict when every word is dialogue vocabulary (verdict words, negations, pronouns,
fillers: "that's much better, keep it", "nah, that made it worse") and it holds an accept or a
reject word. A negation turns an accept word into a reject ("not better", "that's not an
improvement"); keeping the old/previous one rejects the new one. "don't reject it" and other
negated commands are read earlier by the negation rule (:mod:`.dialogue`).
"""

from __future__ import annotations

import re

from .base import Command, ParseContext
from .lexicon import words_of

ACCEPT_WORDS = words_of(
    "accept accepted keep ok okay k good better fine great perfect nice excellent lovely super cool awesome"
    " brilliant apply confirm confirmed approve approved agreed sure works improvement improved happy take"
    " next continue proceed agree agrees acceptable satisfactory satisfied best"
)
REJECT_WORDS = words_of(
    "reject rejected discard worse skip forget throw drop nah cancel dismiss ignore ditch scrap bin toss"
    " trash rid bad remove delete erase none neither meh rubbish garbage awful terrible useless horrible"
)
NEGATION_WORDS = words_of("no not nope never none neither")
#: Negations that turn the verdict word after them ("not better", "none of them look right"); a
#: leading "no" may be an interjection.
_SCOPING_NEGATIONS = words_of("not never none neither")
_KEEP_VERBS = words_of("keep accept take apply")
NEUTRAL_WORDS = words_of(
    "that this it is the one ones yes yeah ya yea yep yup go let us i will version new an a much looks so"
    " change really quite very now lot way am with mask result and made makes prefer previous old"
    " proposal suggestion do did thanks before what we had was than away out just looked seems seem like"
    " wanted want needed need meant exactly me by for to of get on all right also then wrong original"
    " earlier last these those definitely absolutely totally certainly surely clearly obviously far slightly"
    " bit little thing cheers ta thx ty them of"
    # conversational frame around a verdict ("sorry to bother you, but I think that result is fine")
    " you sorry bother think believe guess feel say but so enough actually honestly segmentation here there"
    " please"
    # what is pending ("none of these examples, discard them", "don't take any of them")
    " examples example options option suggestions corrections candidates proposals any rather would"
)

_HESITATION = words_of("sure certain unsure know about yet")

#: Two- and three-word idioms with the meaning of one verdict word.
_IDIOMS = (
    (
        r"\b(?:looks|look|looked|is|seems)(?: about| quite| just| pretty| more or less)?"
        r" (?:right|correct|ok|okay)\b",
        "good",
    ),
    (r"\b(?:well done|good job|sounds good|go ahead|do it|carry on|move on|all right|alright)\b", "good"),
    (r"\bi like (?:it|this|that|the new one)\b|\bspot on\b|\bthumbs up\b|\bship it\b|\bctrl y\b", "good"),
    (r"\bthumbs down\b|\bnever ?mind\b|\bforget (?:it|that)\b", "discard"),
    (r"\bnot (?:too |that |so )?bad\b(?: at all)?", "good"),  # litotes
    # a point of view around a verdict ("from my side it looks fine", "in my opinion it's worse")
    (
        r"\b(?:from my (?:side|point of view|perspective|end)|in my (?:opinion|view)|to me|imo|personally)\b",
        " ",
    ),
    (r"\bgo(?:ing)? with (?:it|this|that|this one|that one|the new one)\b", "good"),
    (r"\b(?:did|does|do) not help\b|\bno (?:change|improvement)\b|\bleave it(?: as it was)?\b", "worse"),
    (
        r"\b(?:about|pretty much|basically|more or less|just|exactly) the same\b|\bno (?:different|better)\b",
        "worse",
    ),
    (r"\b(?:keep|prefer|want|use) (?:the |my )?(?:old|previous|original|earlier|last)\b", "discard"),
    # a preference for what was there before ("I prefer what we had before", "I liked it the way it was")
    (
        r"\b(?:prefer|preferred|liked|rather have|want|wanted)\b(?: \w+){0,3} (?:before|the way it was"
        r"|as it was|what (?:we|i|it|you) had)\b(?: before)?",
        "discard",
    ),
    (r"\b(?:do|did|does) not (?:want|like|need)\b", "discard"),
)


def rule_verdict(text: str, context: ParseContext | None) -> Command | None:
    """Accept or reject a proposal from the words of a short reply (see the module docstring)."""
    from .guided import WRONG_PART

    if re.search(rf"\b(?:{WRONG_PART})\b", text):
        return None
    if re.match(r"(?:what|which|why|how|where|when)\b(?! a\b)", text):
        return None  # a question ("what next?") is no verdict; "what a great result" is
    for pattern, word in _IDIOMS:
        text = re.sub(pattern, word, text)
    words = set(text.split())
    if re.search(r"\bnot (?:sure|certain)\b|\bunsure\b|\bdo not know\b", text) and words <= (
        NEGATION_WORDS | NEUTRAL_WORDS | _HESITATION
    ):
        # "hmm not sure": hesitation decides nothing; ask again, whatever is pending stays
        return Command("unknown", {"suggestions": ["accept", "reject"], "ambiguous": True})
    if not words <= ACCEPT_WORDS | REJECT_WORDS | NEGATION_WORDS | NEUTRAL_WORDS:
        return None
    accept, reject, negated = words & ACCEPT_WORDS, words & REJECT_WORDS, words & NEGATION_WORDS
    if reject and (not accept or negated):
        return Command("reject")
    if reject and accept:
        # "no thanks, I'm good": a keep word and a drop word, nothing to say which wins
        return Command("unknown", {"suggestions": ["accept", "reject"], "ambiguous": True})
    if accept and words & _SCOPING_NEGATIONS:
        return Command("reject")  # "not better", "that is not an improvement"
    if accept and negated:
        # "no, that's fine, keep it": an explicit keep decides; "no that's fine" alone could be either
        if accept & _KEEP_VERBS:
            return Command("accept")
        return Command("unknown", {"suggestions": ["accept", "reject"], "ambiguous": True})
    if accept:
        return Command("accept")
    return None
