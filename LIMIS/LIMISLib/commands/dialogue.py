"""Rules that span command kinds: dialogue context (bare numbers, 'done'), negation and scope ('stop X',
'don't X', 'no more X' never trigger X), terse utterances ('lgtm', 'ctrl z') and short replies
recognised by their words."""

from __future__ import annotations

import re
from functools import cache

from .answer import rule_answer
from .base import Command, ParseContext
from .verdict import rule_verdict


def _rule_context(text: str, context: ParseContext | None) -> Command | None:
    if context is None:
        return None
    number = re.fullmatch(r"(?:number |no )?(\d+)", text) or _picked(text)
    last = re.fullmatch(rf"{_CHOOSE}\s*(?:the )?last(?: one| option| choice| example)?", text)
    if last and context.choices:
        number = re.fullmatch(r"(\d+)", str(len(context.choices)))
    elif last and context.pending == "examples" and context.n_examples:
        number = re.fullmatch(r"(\d+)", str(context.n_examples))
    if context.pending == "examples" and not number:
        number = _picked_with_verdict(text)
    if context.pending == "examples" and number:
        return Command("accept", {"choice": int(number.group(1))}, source="context")
    if context.pending == "grid":
        if number and 1 <= int(number.group(1)) <= 16:
            return Command("grid_click", {"cell": int(number.group(1)), "positive": True}, source="context")
        if number:
            from .grid_click import refuse_cell

            # a bare cell outside the grid: say which cells there are (the command's own refusal)
            reason = refuse_cell({"cell": int(number.group(1))})
            return Command("unknown", {"suggestions": ["positive click in cell 6"], "reason": reason})
        if re.fullmatch(
            r"(i am |we are )?(done|finished|that is (it|all|enough))( with (the )?(clicks|clicking|grid))?"
            r"( clicks| clicking)?|enough( clicks| clicking)?|no more( clicks)?|next|continue",
            text,
        ):
            return Command("accept", source="context")
    named = re.fullmatch(r"(?:the |that )?(\w+)(?: one| option| thing)(?: please)?", text)
    if context.choices and named and not number:
        # "the threshold one": the only candidate whose words hold that word
        holding = [i for i, choice in enumerate(context.choices) if named.group(1) in choice.lower().split()]
        if len(holding) == 1:
            number = re.fullmatch(r"(\d+)", str(holding[0] + 1))
    if context.choices and number and 1 <= int(number.group(1)) <= len(context.choices):
        chosen = _parse_choice(context.choices[int(number.group(1)) - 1])
        if chosen is not None:
            return Command(chosen.kind, dict(chosen.args), source="context")
    return None


_CHOOSE = r"(?:i |we |let us )?(?:pick|take|choose|select|want|prefer|go with|use|will take|would take)?"


def _picked_with_verdict(text: str) -> re.Match | None:
    """ "number three looks best", "the 2nd one is good": one pick and otherwise verdict words."""
    from .lexicon import ORDINALS
    from .verdict import ACCEPT_WORDS, NEUTRAL_WORDS

    picks = re.findall(rf"\b(?:number |no |option |example )?({'|'.join(ORDINALS)}|\d+)\b", text)
    if len(picks) != 1:
        return None
    rest = set(re.sub(rf"\b(?:number|no|option|example|{picks[0]})\b", " ", text).split())
    if not rest & ACCEPT_WORDS or not rest <= ACCEPT_WORDS | NEUTRAL_WORDS:
        return None
    value = ORDINALS.get(picks[0], picks[0])
    return re.fullmatch(r"(\d+)", str(value))


def _picked(text: str) -> re.Match | None:
    """ "the first one", "i pick the 3rd", "option two": a number or an ordinal picking a candidate."""
    from .lexicon import ORDINALS

    match = re.fullmatch(
        rf"{_CHOOSE}\s*(?:the )?(?:(?:number|no|option|choice|candidate) )?({'|'.join(ORDINALS)}|\d+)"
        r"(?: one| option| choice| example)?(?: please)?",
        text,
    )
    if match is None:
        return None
    value = match.group(1)
    return re.fullmatch(r"(\d+)", str(ORDINALS.get(value, value)))


def _parse_choice(text: str) -> Command | None:
    """A candidate the session offered, parsed by the rules (no context: candidates are complete)."""
    from . import RULES
    from .lexicon import normalise

    normalised = normalise(text)
    for rule in RULES:
        command = rule(normalised, None)
        if command is not None and command.kind != "unknown":
            return command
    return None


#: Replies that fit two or three commands: the parser asks back instead of guessing.
_AMBIGUOUS = (
    (
        r"(make (it|the mask|the segmentation) )?(a bit |a little |much )?(smaller|tighter|less)"
        r"|shrink it|less please|reduce it",
        ("shrink the box by 10 pixels", "raise the threshold", "you over-segmented"),
    ),
    (
        r"(make (it|the mask|the segmentation) )?(a bit |a little |much )?(bigger|larger|more|wider)"
        r"|grow it|more please|expand it",
        ("enlarge the box by 10 pixels", "lower the threshold", "you under-segmented"),
    ),
    (
        r"fill (in )?(the |that |this )?(hole|holes|gap|gaps)( in (it|the mask|the segmentation))?",
        ("lower the threshold", "critical regions", "center click"),
    ),
)


def _rule_ambiguous(text: str, context: ParseContext | None) -> Command | None:
    """ "smaller", "more", "fill the hole": two or three commands fit; ask which (a number answers)."""
    for pattern, candidates in _AMBIGUOUS:
        if re.fullmatch(pattern, text):
            return Command("unknown", {"suggestions": list(candidates), "ambiguous": True})
    return _verb_without_object(text)


#: What a size or level verb does to each object ("increase" grows the box or raises the threshold).
_VERB_CLASS_EXAMPLES = {
    "grow": "enlarge the box by 10 pixels",
    "shrink": "shrink the box by 10 pixels",
    "raise": "raise the threshold",
    "lower": "lower the threshold",
}


def _verb_without_object(text: str) -> Command | None:
    """ "increase it", "reduce that a bit": a verb whose classes act on different objects (box size,
    threshold) and no object named: ask which."""
    from .frames import VERBS

    match = re.fullmatch(
        r"(\w+)(?: (?:it|that|this|them))?(?: (?:a bit|a little|slightly|a lot|more|please|again|up|down))*",
        text,
    )
    if not match:
        return None
    classes = [cls for cls in _VERB_CLASS_EXAMPLES if match.group(1) in VERBS[cls]]
    if len(classes) < 2:
        return None
    return Command("unknown", {"suggestions": [_VERB_CLASS_EXAMPLES[c] for c in classes], "ambiguous": True})


#: Words that stop or forbid what follows them ("stop propagating", "don't undo", "no more clicks").
STOP_HEADS = (
    r"stop|halt|cease|quit|cancel|abort|abandon|do not|never mind|nevermind|never|no more|no further|not now"
    r"|hold off(?: on)?|forget(?: about)?|no need to|no need for|there is no need to|without|not yet"
)


#: Stems of command verbs and objects a negation can scope over.
_SCOPED_ACTIONS = (
    r"propagat\w*|undo\w*|revert\w*|go(ing)? back|mov\w*|shift\w*|click\w*|threshold\w*|window\w*"
    r"|segment\w*|grow\w*|shrink\w*|enlarg\w*|expand\w*|remov\w*|delet\w*|eras\w*|ensemble\w*|example\w*"
    r"|question\w*|ask\w*|critical|guid\w*|strateg\w*|slices?|box\w*|mask|chang\w*|do(ing)? (that|it|this)"
    r"|that|it|this|everything|all|the (process|loop|run|job)|keep\w*|accept\w*|apply\w*|continu\w*"
    r"|go(ing)? on"
    r"|carry\w*|extend\w*|spread\w*|copy\w*|track\w*|rais\w*|lower\w*|increas\w*|decreas\w*|adjust\w*"
    r"|tweak\w*|refin\w*|correct\w*|fix\w*|add\w*|reject\w*|discard\w*|finish\w*|final\w*|sav\w*"
)

#: What "cancel that" means is decided by the dialogue state (see :func:`_rule_negation`).
CANCEL_CANDIDATES = ("undo", "never mind")


def _rest_command(rest: str, context: ParseContext | None) -> Command | None:
    """The command the words after a negation would be on their own (negation itself excluded)."""
    from . import RULES

    for rule in RULES:
        if rule is _rule_negation or rule is _rule_context:
            continue
        command = rule(rest, context)
        if command is not None:
            return None if command.kind == "unknown" else command
    return None


def _rule_negation(text: str, context: ParseContext | None) -> Command | None:
    """Negation and scope: "stop", "stop propagating", "don't undo", "no more X" never trigger X.

    A negated command declines (``reject``: drop what is pending, change nothing else); "don't
    reject / discard" keeps (``accept``). "stop here" (finish) and "not part of it" (an answer)
    are left to their rules. Whatever follows the negation is read by every other rule: when it is
    a command ("no, don't finish yet"), that command is what is declined.

    "cancel that": with a proposal, question, examples or grid clicks pending it drops them
    (``reject``); with nothing pending it could mean "undo the last step" or "do nothing", so the
    parser asks back (``unknown`` with the candidates "undo" / "never mind").
    """
    text = re.sub(
        r"^(?:(?:no|nope|nah|wait|hey|oh|ok|okay|hold on|hang on|one moment|just a moment|a moment)\s+)+"
        r"(?=(?:" + STOP_HEADS + r")\b)",
        "",
        text,
    )
    text = re.sub(r"^(?:i|we|you)\s+(?=(?:do not|never|will not|would not)\b)", "", text)
    text = re.sub(r"^(?:will not|would not)\b", "do not", text)
    match = re.fullmatch(rf"(?:please\s+)?({STOP_HEADS})\b\s*(.*)", text)
    if not match:
        return _rule_no_noun_phrase(text, context)
    head, rest = match.group(1), match.group(2).strip()
    if head in {"stop", "halt", "quit"} and re.fullmatch(r"here|there|now and save|and (finish|save)", rest):
        return None
    if head == "no more" and re.match(r"than\b", rest):
        return None
    if head == "cancel" and rest in {"that", "it", "this"}:
        if context is not None and context.pending is not None:
            return Command("reject")
        return Command("unknown", {"suggestions": list(CANCEL_CANDIDATES), "ambiguous": True})
    if head == "cancel" and re.fullmatch(r"what you (just )?did|the last (step|change|action)", rest):
        return None  # an explicit undo
    belief = re.fullmatch(r"(?:think|believe|feel|reckon|suppose)(?: that)?\s+(.+)", rest)
    if head in {"do not", "never"} and not belief and context is not None and context.pending == "question":
        # "no, don't include it" to a yes/no question: the opposite answer
        from .answer import rule_answer

        said = rule_answer(rest, context)
        if said is not None and said.kind == "answer":
            return Command("answer", {"value": not said.args["value"]})
    if head == "do not" and belief:
        # "I don't think it's part of it": a denied belief is the opposite answer or verdict
        from .answer import rule_answer

        said = rule_answer(belief.group(1), context)
        if said is not None and said.kind == "answer":
            return Command("answer", {"value": not said.args["value"]})
        if said is not None and said.kind in {"accept", "reject"}:
            return Command("reject" if said.kind == "accept" else "accept")
    if head in {"do not", "never"}:
        rest = re.sub(r"^(?:want|like|need)(?: to)?\b\s*", "", rest)
    if not rest or re.fullmatch(
        r"(it|that|this|this one|that one|please|now|everything|all|stop|that please|yet|for now|enough"
        r"|that is enough|it there)",
        rest,
    ):
        return Command("reject")
    if head in {"do not", "never"} and re.match(
        r"(reject|discard|throw|drop|dismiss|cancel|bin|toss)\w*\b", rest
    ):
        return Command("accept")
    # the scope: a command verb or object within the next few words ("don't show examples")
    if re.match(rf"(?:\w+\s+){{0,3}}?(?:{_SCOPED_ACTIONS}|show\w*|look\w*|try\w*|run\w*|us(e|ing))\b", rest):
        return Command("reject")
    if any(_grammar_word(word) for word in rest.split()[:4]):
        return Command("reject")
    declined = _rest_command(rest, context)
    if declined is not None:
        return Command("accept" if declined.kind == "reject" and head in {"do not", "never"} else "reject")
    return None


def _rule_no_noun_phrase(text: str, context: ParseContext | None) -> Command | None:
    """ "no positive clicks", "no propagation": "no" before a command's noun phrase declines it.

    Only when the words after "no" are not a command or an answer of their own ("no keep the old
    one", "no it is outside" are left to their rules).
    """
    match = re.fullmatch(r"no\s+(.+)", text)
    if not match or (context is not None and context.pending == "question"):
        return None
    rest = match.group(1)
    said = _rest_command(rest, context)
    if said is not None:
        # "no examples", "no propagation": a command named by a noun is declined; "no keep the old
        # one", "no move it left" (a verb first) and "no it is outside" (an answer) are left alone
        from .frames import VERBS

        verbs = frozenset().union(*VERBS.values())
        first = rest.split()[0]
        if said.kind in {"accept", "reject", "answer", "segment"} or first in verbs or _grammar_verb(first):
            return None
        return Command("reject")
    names_action = any(_grammar_word(w) for w in rest.split()[:3]) or re.match(
        rf"(?:{_SCOPED_ACTIONS})\b", rest
    )
    if names_action and not re.match(r"(it|that|this|the|a|an)\b", rest):
        return Command("reject")
    return None


@cache
def _grammar_vocabulary() -> frozenset[str]:
    from .frames import OBJECTS, VERBS

    return frozenset().union(*VERBS.values(), *OBJECTS.values())


def _grammar_verb(word: str) -> bool:
    """An inflected verb of the compositional grammar ("moving", "propagated")."""
    from .frames import VERBS

    verbs = frozenset().union(*VERBS.values())
    stems = {word.removesuffix("ing"), word.removesuffix("ed"), word.removesuffix("ing") + "e"}
    return bool(stems & verbs)


def _grammar_word(word: str) -> bool:
    """A verb or object of the compositional grammar, inflected or not ("trimming", "scooted")."""
    vocabulary = _grammar_vocabulary()
    stems = {word, word.removesuffix("s"), word.removesuffix("ing"), word.removesuffix("ed")}
    stems |= {stem + "e" for stem in list(stems)} | {stem[:-1] for stem in list(stems) if len(stem) > 3}
    return bool(stems & vocabulary)


#: Keyboard shortcuts typed as words: a modifier key and a letter ("ctrl z" undoes, "ctrl y" keeps).
_SHORTCUT = re.compile(
    r"(?:ctrl|control|cmd|command|ctl|strg|ctr)\s?([zy])(?:\s+(?:(twice|thrice)|(\d+) times?))?"
)
#: A repeat word after a shortcut ("ctrl z twice", "ctrl z 3 times") is an undo count.
_REPEATS = {"twice": 2, "thrice": 3}


def _rule_terse(text: str, context: ParseContext | None) -> Command | None:
    shortcut = _SHORTCUT.fullmatch(text)
    if shortcut:
        if shortcut.group(1) == "y":
            return Command("accept")
        count = _REPEATS.get(shortcut.group(2) or "") or int(shortcut.group(3) or 0)
        return Command("undo", {"count": count} if count else {})
    if len(text.split()) <= 4:
        # a short verdict ("ship it", "thumbs down", "meh") answers a pending question as yes / no
        verdict = rule_verdict(text, context)
        if verdict is not None and verdict.kind in {"accept", "reject"}:
            if context is not None and context.pending == "question":
                return Command("answer", {"value": verdict.kind == "accept"})
            return verdict
    # "nah not part of it", "yeah part of it": a yes/no word before an answer
    lead = re.fullmatch(r"(no|nope|nah|yes|yeah|yep|yup)\s+(.+)", text)
    if lead:
        inner = rule_answer(lead.group(2), context)
        negative = lead.group(1) in {"no", "nope", "nah"}
        if inner is not None and inner.args["value"] is not negative:
            return inner
    return None


#: The cross-kind rules with their priorities (among the kinds' rules, see ``CommandSpec.rules``).
DIALOGUE_RULES = (
    (0, _rule_context),
    (1, _rule_negation),
    (2, _rule_terse),
    (2.5, _rule_ambiguous),
    (6, rule_verdict),
)
