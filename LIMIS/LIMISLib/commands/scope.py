"""Clause scope: in "don't shrink the box, enlarge it by 4" the negation covers its own clause only.

The raw text is split into clauses at commas, semicolons and "but / instead / rather". When one
clause is negated ("don't X", "not X", "without X") and another is not, the command is what the
un-negated clauses say, never the negated action; a pronoun there ("enlarge it", "the right one")
stands for the object the negated clause named ("the box", "kidney"). Clauses that are only an
interjection ("no", "wait") are ignored. Anything else is left to the whole-sentence rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .base import Command, ParseContext
from .dialogue import STOP_HEADS
from .lexicon import normalise, organ_words, words_of

#: Clause boundaries: punctuation, "but", "and not", a bare "instead"/"rather", and the start of
#: "instead of X" / "rather than X" (which stays with its clause: it declines X).
_SPLIT = re.compile(
    r"\s*(?:[,;:!?]|\.(?!\d))+\s*|\s+(?:but|and not)\s+|\s+instead(?! of\b)\s+|\s+rather(?! than\b)\s+"
    r"|\s+(?=(?:instead of|rather than)\b)|\s+-+\s+"
)
#: "... and <verb> ...": a new clause when one of the two is negated ("don't propagate and do a
#: centre click instead"); built from the frame grammar's verb classes.
_AND_VERB = None


def _and_verb() -> re.Pattern:
    global _AND_VERB
    if _AND_VERB is None:
        from .frames import VERBS

        verbs = sorted(frozenset().union(*VERBS.values()) | {"do", "use", "make", "try", "just", "then"})
        _AND_VERB = re.compile(rf"\s+and\s+(?=(?:{'|'.join(map(re.escape, verbs))})\b)", re.IGNORECASE)
    return _AND_VERB


_INTERJECTIONS = words_of("no nope nah wait oh ok okay hmm sorry oops whoops hey so well actually no")
_NEGATED = re.compile(
    rf"^(?:(?:no|nope|nah|wait|oh)\s+)*"
    rf"(?:{STOP_HEADS}|not|no|instead of|rather than|avoid|refrain from|skip)\b\s*(.*)$"
)
_BARE_STOP = re.compile(r"(?:stop|halt|hold on|hang on|wait a (?:second|sec|moment|minute))")
_PRONOUNS = re.compile(r"\b(it|one|that|this)\b")
_RETRACTION = re.compile(
    r"(?:no |oh )?(?:never mind|nevermind|forget (?:it|that)|scratch that|sorry|no wait|wait)"
)


def _object_of(clause: str) -> str | None:
    """The last object noun of a clause: a command object ("box") or an organ word ("kidney")."""
    from .frames import OBJECTS, VERBS

    objects = frozenset().union(*OBJECTS.values())
    for word in reversed(clause.split()):
        if word.isdigit():
            continue  # an amount, not an object
        if word in objects or (word in organ_words() and word not in {"left", "right"}):
            return word
    # no noun: a verb that acts on one object only ("don't grow it" -> the box)
    for word in clause.split():
        implied = {obj for cls, obj in _VERB_OBJECT.items() if word in VERBS[cls]}
        if len(implied) == 1:
            return implied.pop()
    return None


#: Verb classes that act on a single object, for a pronoun in the other clause ("shrink it").
_VERB_OBJECT = {"move": "box", "grow": "box", "shrink": "box", "raise": "threshold", "lower": "threshold"}


_CONTRAST = re.compile(
    r"^\s*(?:(?:no|nope|nah|wait|oh|sorry)[,\s]+)*"  # "no not the spleen the pancreas"
    r"(instead of|rather than|not(?! (?:part|in|inside|included|sure|certain)\b))\s+(.+)$",
    re.IGNORECASE,
)


def split_after_contrast(
    text: str, context: ParseContext | None, parse: Callable[[str, ParseContext | None], Command | None]
) -> list[str] | None:
    """ "rather than the bone window use the liver window": no comma, so find where the wanted action
    starts: the shortest tail the rules read as a command, after a head that names something."""
    match = _CONTRAST.match(text)
    if not match or len(match.group(2).split()) > 12:
        return None  # a command is short; each split point costs a parse
    found = _split_after_contrast(match.group(2), context, parse, verb_start=False)
    return list(found) if found else None


@lru_cache(maxsize=256)
def _split_after_contrast(
    rest: str,
    context: ParseContext | None,
    parse: Callable[[str, ParseContext | None], Command | None],
    verb_start: bool = False,
) -> tuple[str, str] | None:
    """(cached: the scope rule and the negation guard both ask for the same text). ``verb_start``:
    the wanted action is a new clause, so it starts with a command verb ("don't move it left move it
    right"), never in the middle of the declined one ("don't move the box up and left")."""
    from .frames import VERBS
    from .guard import kinds_named

    words = rest.split()
    # verbs proper: not the comparatives and particles the classes also hold ("up 10 slices" is no clause)
    verbs = frozenset().union(*VERBS.values()) - {"up", "down", "back", "higher", "lower", "bigger", "larger"}
    # ("lower it" / "raise the threshold" are verbs again when an object follows)
    verbs -= {"smaller", "stricter", "lenient"}
    for i in range(1, len(words)):
        particle_verb = words[i] in {"lower", "raise"} and words[i + 1 : i + 2] in (["it"], ["the"], ["that"])
        if verb_start and words[i] not in verbs and not particle_verb:
            continue
        declined = kinds_named(normalise(" ".join(words[:i])))
        if not declined:
            continue  # the declined part must name an action or an object ("the bone window")
        tail = normalise(" ".join(words[i:]))
        if not declined & kinds_named(tail):
            continue  # a contrast is like for like ("the bone window" / "the liver window")
        tails = [tail]
        carried = _object_of(normalise(" ".join(words[:i])))
        if carried and _PRONOUNS.search(tail):
            tails.insert(0, _PRONOUNS.sub(f"the {carried}", tail, count=1))  # "shrink it grow it by 4"
        for variant in tails:
            command = parse(variant, context)
            if command is not None and command.kind not in {"unknown", "reject", "accept", "answer"}:
                return f"not {' '.join(words[:i])}", " ".join(words[i:])
    return None


def split_clauses(
    text: str, context: ParseContext | None, parse: Callable[[str, ParseContext | None], Command | None]
) -> list[str]:
    """The raw clauses of a text: split at punctuation and contrast words, or after "rather than X"."""
    raw = [part for part in _SPLIT.split(text) if part and part.strip()]
    return refine_clauses(raw, text, context, parse)


def refine_clauses(
    raw: list[str],
    text: str,
    context: ParseContext | None,
    parse: Callable[[str, ParseContext | None], Command | None],
) -> list[str]:
    """Clauses split further where no punctuation marks them (shared with the negation guard):
    "... and <verb> ..." next to a negated clause, then "rather than X Y" and "don't X Y"."""
    if any(_NEGATED.match(normalise(part)) for part in raw):
        raw = [piece for part in raw for piece in _split_and(part)]
    if len(raw) == 1:
        raw = split_after_contrast(text, context, parse) or split_after_negation(text, context, parse) or raw
    return raw


def _split_and(part: str) -> list[str]:
    """ "don't propagate and do a centre click instead": split at "and <verb>" only when the second
    half marks itself as the alternative (instead, rather, just, then, do); "don't move the box and
    shrink it" keeps one clause (the negation may cover both)."""
    pieces = [piece for piece in _and_verb().split(part) if piece.strip()]
    alternative = re.compile(r"\b(?:instead|rather|just|then|only)\b|^\s*do\b", re.IGNORECASE)
    if len(pieces) > 1 and all(alternative.search(piece) for piece in pieces[1:]):
        return pieces
    return [part]


def split_after_negation(
    text: str, context: ParseContext | None, parse: Callable[[str, ParseContext | None], Command | None]
) -> list[str] | None:
    """ "don't shrink it grow it by 12 pixels": no comma, so the wanted action starts where a tail of
    the same kind as the declined head reads as a command (like for like, as after "rather than")."""
    normalised = normalise(text)
    match = _NEGATED.match(normalised)
    if not match or not match.group(1) or len(match.group(1).split()) > 12:
        return None
    found = _split_after_contrast(match.group(1), context, parse, verb_start=True)
    return list(found) if found else None


def _names_object(clause: str) -> bool:
    """Whether a clause names its object (a command object or an organ), not only implies it."""
    from .frames import OBJECTS

    objects = frozenset().union(*OBJECTS.values())
    return any(
        w in objects or (w in organ_words() and w not in {"left", "right"} and not w.isdigit())
        for w in clause.split()
    )


def _elliptic(clause: str, carried: str) -> list[str]:
    """A clause that leaves out the object the negated clause named: "not the left kidney, right"
    (a side for the organ), "don't shrink the box by 5, shrink by 10" (a verb for the box)."""
    words = clause.split()
    if carried in organ_words():
        return [f"{carried} {clause}"] if len(words) <= 2 else []
    return [" ".join([words[0], "the", carried, *words[1:]])] if len(words) > 1 else []


def _gapped(clause: str, negated: list[str]) -> str | None:
    """ "don't go back 2 steps, just 1": only a new number, so the declined action with that number."""
    amount = r"(?:just|only|instead|rather|but|make it)?\s*(-?\d+(?:\.\d+)?)(?: instead)?"
    match = re.fullmatch(amount, clause)
    if not match or len(negated) != 1:
        return None
    rest = _NEGATED.match(negated[0])
    if rest is None or len(re.findall(r"-?\d+(?:\.\d+)?", rest.group(1))) != 1:
        return None
    return re.sub(r"-?\d+(?:\.\d+)?", match.group(1), rest.group(1), count=1)


def scoped_command(
    text: str, context: ParseContext | None, parse: Callable[[str, ParseContext | None], Command | None]
) -> Command | None:
    """The command of the un-negated clauses when another clause is negated (None: not that case).

    ``parse`` reads one normalised clause with the rules.
    """
    raw = split_clauses(text, context, parse)
    if len(raw) < 2 or len(raw) > 6:
        return None
    clauses = [normalise(part) for part in raw]
    if _RETRACTION.fullmatch(clauses[0]):
        rest = parse(normalise(" ".join(raw[1:])), context)
        if rest is not None and rest.kind != "unknown":
            return rest  # "never mind, keep it": the first clause takes back what was said before
    if (
        clauses[0] in {"no", "nope", "nah"}
        and not (context is not None and context.pending == "question")
        and not any(_NEGATED.match(c) or re.search(r"\bnot\b", c) for c in clauses[1:])
    ):
        # "no, go back two steps": the "no" declines what is pending, the command says what to do
        rest = parse(normalise(" ".join(raw[1:])), context)
        if rest is not None and rest.kind not in {"unknown", "accept", "reject", "answer"}:
            return rest
    # interjections and a bare "stop" / "wait" before the real clauses say nothing by themselves
    clauses = [
        c for c in clauses if c and not set(c.split()) <= _INTERJECTIONS and not _BARE_STOP.fullmatch(c)
    ]
    negated = [c for c in clauses if (m := _NEGATED.match(c)) and m.group(1)]
    positive = [c for c in clauses if c not in negated]
    if not negated or not positive:
        return None
    carried = next((obj for c in negated if (obj := _object_of(c))), None)
    found: list[Command] = []
    for clause in positive:
        variants = [clause]
        if carried and _PRONOUNS.search(clause):
            article = "" if re.search(rf"\bthe\s+(?:\w+\s+)?{_PRONOUNS.pattern}", clause) else "the "
            variants.insert(0, _PRONOUNS.sub(f"{article}{carried}", clause, count=1))
        elif carried and not _names_object(clause) and any(_names_object(c) for c in negated):
            variants[:0] = _elliptic(clause, carried)
        gapped = _gapped(clause, negated)
        if gapped:
            variants.insert(0, gapped)
        for variant in variants:
            command = parse(variant, context)
            if command is not None and command.kind != "unknown":
                found.append(command)
                break
    if len(found) == 1 or (found and all(c == found[0] for c in found)):
        return found[0]
    if not found and len(negated) == 1:
        declined = parse(negated[0], context)  # "hold on, don't propagate": only the negation says anything
        if declined is not None and declined.kind == "reject":
            return declined
    return None
