"""The negation guard: an action a negation governs is never the parsed command.

Whatever the rules or the matcher recognised, :func:`guard_negation` checks it against the
clauses of the raw text. A clause holding a negation or stop cue ("don't", "stop", "no more",
"no need to", "skip", "hold off", "avoid", "refrain from", "instead of", "rather than", "without",
"X is not what I want", "X? no thanks") declines every action its words name (word classes per
kind: verbs, objects, organ names). When the command is one of those declined actions:

- another, un-negated clause names an action of the same kind and the command is not what the
  negated clause alone says ("don't grow it, shrink it by 2"): the command stands;
- no un-negated clause names an action: the reply declines (``reject``; a declined "discard" with a
  proposal pending keeps it, ``accept``);
- otherwise the parser asks back (``unknown`` with ``ambiguous``) instead of guessing.

This is a guard behind every rule and the matcher, so a new phrasing can at worst be not
understood, never understood as the action it forbids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from .base import Command, ParseContext
from .lexicon import normalise, organ_words, words_of

#: Stems (word prefixes, on normalised text) that name each kind's action or object.
_KIND_STEMS: dict[str, tuple[str, ...]] = {
    "propagate": ("propagat", "spread", "extend", "extension", "carry", "carried", "copy", "copie", "slice"),
    "undo": ("undo", "undid", "ctrl", "rollback"),
    "revert": ("revert", "restor"),
    "move_box": (
        "move",
        "moving",
        "shift",
        "nudg",
        "slid",
        "drag",
        "translat",
        "scoot",
        "push",
        "box",
        "bbox",
    ),
    "resize_box": (
        "grow",
        "grew",
        "enlarg",
        "expand",
        "shrink",
        "shrank",
        "widen",
        "narrow",
        "bigger",
        "smaller",
        "larger",
        "resiz",
        "trim",
        "loosen",
        "box",
        "bbox",
        "rectangle",
    ),
    "threshold": ("threshold", "thresh", "cutoff", "rais", "lower"),
    "window": ("window", "wndw", "preset"),
    "segment": ("segment", "outlin", "delineat", "contour"),
    "grid_click": ("click", "cell", "tap"),
    "center_click": ("click", "tap"),
    "examples": ("example",),
    "ensemble": ("ensembl",),
    "remove_component": (
        "component",
        "remov",
        "delet",
        "eras",
        "blob",
        "piece",
        "bits",
        "island",
        "fragment",
    ),
    "finish": ("finish", "final"),
    "critical_regions": ("critical", "question", "ask"),
    "accept": ("keep", "kept", "accept", "approv", "apply", "confirm"),
    "reject": ("reject", "discard", "throw", "drop", "dismiss", "toss", "trash", "ditch", "scrap"),
}
_PHRASE_KINDS = (
    (r"\b(?:go|going|went|step|roll|rolling|jump)\s+back\b", "undo"),
    (r"\bgo(?:ing)? back to\b|\breturn(?:ing)? to (?:step|version|the (?:first|original|initial))", "revert"),
    (r"\bbin\b", "reject"),
)
#: Words that look like a stem above but name no action.
_NOT_ACTIONS = words_of("pancreas pancreatic segmental finally copyright")
#: Short words matched whole (as prefixes they would match unrelated words: "pan" in "pancreas").
_WHOLE_WORDS = {
    "pan": "move_box",
    "panning": "move_box",
    "seg": "segment",
    "pad": "resize_box",
    "padding": "resize_box",
}
_ALWAYS_ORGAN = frozenset({"left", "right", "upper", "lower", "of", "the", "and", "major", "minor"})

_CUE = re.compile(
    r"\b(?:do|does|did|should|would|could|must|will|shall|need|please) not\b"
    r"|\bnot\b(?! (?:part|in|inside|included|sure|certain|really sure)\b)"
    r"|\bnever\b|\bno (?:more|further|need|reason)\b|\b(?:under|in) no (?:circumstances|case)\b"
    r"|\bby no means\b|\benough (?:of |with )?(?:the )?(?=\w+(?:ing|ion|ions)\b)"
    r"|\bas it is\b|\b(?:is|are) fine\b|\bstop\b|\bhalt\b|\bcease\b|\bquit\b|\bcancel\b"
    r"|\babort\b|\bskip\b|\bhold off\b|\bavoid\b|\brefrain\b|\bforget\b|\binstead of\b|\brather than\b"
    r"|\bleave (?:\w+ ){0,3}(?:alone|as it is|as is|where it is|be)\b|\bdo not (?:touch|bother)\b"
    r"|\bwithout\b|(?<!yes )\bno\s+(?=\w+(?:ing|ion|ions)\b)"  # "yes/no questions" negates nothing
    r"|(?<!yes )\bno\s+(?=(?:\w+\s+)?(?:undo|examples?|ensemble|clicks?|window|changes?|threshold|box)\b)"
)
#: "why don't we propagate", "can't you propagate": a question proposing the action, not a negation.
_PROPOSAL = re.compile(r"\bwhy (?:do|did|would|should) not (?:we|you|i)\b|\b(?:can|could) not (?:we|you)\b")
#: A clause that only declines what the clause before it proposed ("propagate? no thanks").
_DECLINE_ONLY = re.compile(
    r"(?:no|nope|nah|oh)?\s*(?:reject|no thanks?|no thank you|rather not|i would rather not|better not"
    r"|not now|not yet|no need|please do not|do not|not that|no way|never mind|nevermind|forget it)"
    r"(?: please| thanks| for now)?"
)
_INTERJECTIONS = words_of(
    "no nope nah wait oh ok okay hmm sorry oops hey so well actually please thanks thank you yet now just"
    " for i said it that this again"
)
#: Words that may precede a negation that is an instruction ("please don't", "I really don't want").
_LEADS = words_of(
    "no nope nah oh wait please i we you let us just so ok okay well um and then really would rather think"
    " should must will can said told hold on actually now"
)
_SPLIT = re.compile(
    r"\s*(?:[,;:!?]|\.(?!\d))+\s*|\s+-+\s+"
    r"|\s+(?:but|instead(?! of)|then|rather(?! than| not| you| we| i\b))\s+"
    r"|\s+(?=(?:instead of|rather than)\b)"  # "keep X instead of removing Y": Y's clause is declined
)


@cache
def _organ_names() -> frozenset[str]:
    return frozenset(w for w in organ_words() if len(w) > 3) - _ALWAYS_ORGAN


def kinds_named(clause: str) -> set[str]:
    """The command kinds whose verbs, objects or organ names occur in a normalised clause."""
    kinds = {kind for pattern, kind in _PHRASE_KINDS if re.search(pattern, clause)}
    organs = _organ_names()
    for word in clause.split():
        if word in organs:
            kinds.add("segment")
        if word in _WHOLE_WORDS:
            kinds.add(_WHOLE_WORDS[word])
        if word in _NOT_ACTIONS:
            continue
        for kind, stems in _KIND_STEMS.items():
            if any(word.startswith(stem) for stem in stems):
                kinds.add(kind)
    return kinds


def _is_negated(clause: str) -> re.Match | None:
    if _PROPOSAL.search(clause):
        return None
    return _CUE.search(clause)


def guard_negation(
    text: str,
    command: Command,
    context: ParseContext | None,
    parse: Callable[[str, ParseContext | None], Command | None],
) -> Command:
    """``command`` unless it is an action the text negates (see the module docstring)."""
    if command.kind in {"help", "answer"} or command.args.get("ambiguous"):
        return command  # an answer carries its own negation ("I don't think it's part of it" = no)
    from .scope import refine_clauses

    raw = refine_clauses([part for part in _SPLIT.split(text) if part.strip()], text, context, parse)
    clauses = [normalise(part) for part in raw]
    negated_kinds: set[str] = set()
    positive_kinds: set[str] = set()
    positive_content = False
    negated_clauses: list[str] = []
    described: set[str] = set()  # kinds a negated statement names ("the box doesn't reach the top")
    for i, clause in enumerate(clauses):
        if not clause or _DECLINE_ONLY.fullmatch(clause):
            continue
        declined_after = i + 1 < len(clauses) and _DECLINE_ONLY.fullmatch(clauses[i + 1])
        cue = None if declined_after else _is_negated(clause)
        if cue and not set(clause[: cue.start()].split()) <= _LEADS:
            described |= kinds_named(clause)
            negated_clauses.append(clause)
        elif declined_after or cue:
            negated_kinds |= kinds_named(clause)
            negated_clauses.append(clause)
        else:
            positive_kinds |= kinds_named(clause)
            positive_content |= not set(clause.split()) <= _INTERJECTIONS
    if not positive_content:
        # with nothing else said, a negated statement declines too ("the threshold shouldn't be raised")
        negated_kinds |= described
    if command.kind == "unknown":
        # "let's not propagate yet", "avoid changing the threshold": no rule read it, but it only declines
        if negated_kinds - {"accept", "reject"} and not positive_content:
            return Command("reject", text=command.text, source=command.source)
        return command
    if command.kind not in negated_kinds:
        return command
    if command.kind in positive_kinds or (positive_content and not positive_kinds):
        # "don't grow it, shrink it": the same kind may stand when it is not what was negated
        for clause in negated_clauses:
            declined = parse(_CUE.sub(" ", clause).strip(), context)
            if declined is not None and declined.kind == command.kind and declined.args == command.args:
                return _ask_back(command)
        return command
    if positive_kinds - {"accept", "reject"}:
        return _ask_back(command)
    if command.kind == "reject":
        # "no don't drop it": a declined discard keeps what is pending
        if context is not None and context.pending in {"proposal", "examples"}:
            return Command("accept", text=command.text, source=command.source)
        return _ask_back(command)
    return Command("reject", text=command.text, source=command.source)


def _ask_back(command: Command) -> Command:
    from ..command_grammar import suggestion_text

    return Command(
        "unknown",
        {"suggestions": [suggestion_text(command.kind, command.args), "reject"], "ambiguous": True},
        text=command.text,
        source=command.source,
        confidence=0.0,
    )
