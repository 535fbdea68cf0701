"""A small compositional grammar: verb class + object + modifiers -> command.

The kinds' own rules know the usual phrasings; this rule, tried after them (before the semantic
matcher), reads sentences they do not know by their parts: a **verb** from a synonym class (move,
grow, shrink, raise, lower, set, remove, keep, back, spread, click), an **object** (box, threshold,
window, step, slice, component, cell) and **modifiers** (direction, amount, count, ordinal, sign).
"scoot the rectangle leftwards 4" is move + box + left + 4 without any rule listing it. A verb that
fits several classes ("increase") is resolved by the object; without an object or a verb, or when
the object and verb do not combine, the rule does not apply.
"""

from __future__ import annotations

import re
from typing import Any

from .base import Command, ParseContext
from .lexicon import (
    DEFAULT_MOVE_PX,
    DEFAULT_RESIZE_PX,
    LARGE_MOVE_PX,
    ORDINALS,
    SMALL_MOVE_PX,
    amount_in,
    direction_in,
    numbers_in,
    words_of,
)
from .window import PRESET_WORDS

#: Verb classes (a word may belong to several; the object decides).
VERBS: dict[str, frozenset[str]] = {
    "move": words_of("move shift nudge push slide drag bring put translate offset pan scoot jog"),
    "grow": words_of("enlarge expand grow widen increase bigger larger inflate pad extend loosen"),
    "shrink": words_of("shrink reduce smaller tighten narrow decrease contract trim crop"),
    "raise": words_of("raise increase higher bump boost stricter tighten up"),
    "lower": words_of("lower decrease reduce drop relax loosen down lenient"),
    "set": words_of("set make change use switch apply put"),
    "remove": words_of("remove delete erase eliminate kill clear discard drop get"),
    "keep": words_of("keep retain preserve"),
    "back": words_of("undo back revert return restore rewind"),
    "spread": words_of("propagate copy spread carry extend continue transfer"),
    "click": words_of("click tap mark seed"),
}
#: Objects the commands act on.
OBJECTS: dict[str, frozenset[str]] = {
    "box": words_of("box bbox rectangle frame roi boundingbox"),
    "threshold": words_of("threshold cutoff confidence probability"),
    "window": words_of("window windowing contrast"),
    "step": words_of("step steps version versions change changes edit edits action actions"),
    "slice": words_of("slice slices"),
    "component": words_of("component components blob blobs island islands piece pieces fragment fragments"),
    "cell": words_of("cell cells square squares tile tiles"),
}
_NEGATIVE = words_of("negative background minus exclude outside neg")


def lemmas(word: str) -> set[str]:
    """The word and its possible base forms ("lowering" -> lower, "moved" -> move, "shifting" -> shift)."""
    forms = {word}
    for suffix in ("ing", "ed", "s"):
        stem = word.removesuffix(suffix)
        if stem != word and len(stem) > 2:
            forms |= {stem, stem + "e"}
            if len(stem) > 3 and stem[-1] == stem[-2]:
                forms.add(stem[:-1])  # "dragging" -> drag
    return forms


def _first(words: list[str], classes: dict[str, frozenset[str]]) -> list[str]:
    forms = [lemmas(w) for w in words]
    return [name for name, vocabulary in classes.items() if any(f & vocabulary for f in forms)]


def _count(text: str) -> int | None:
    """A number or an ordinal word in the text (the first one)."""
    numbers = [v for v in numbers_in(text) if float(v).is_integer()]
    if numbers:
        return int(numbers[0])
    for word in text.split():
        if word in ORDINALS:
            return ORDINALS[word]
    return None


def rule_frames(text: str, context: ParseContext | None) -> Command | None:
    words = text.split()
    if not words or len(words) > 16:
        return None
    objects = _first(words, OBJECTS)
    verbs = set(_first(words, VERBS))
    if len(objects) != 1:
        return None
    return _resolve(text, objects[0], verbs)


def _resolve(text: str, obj: str, verbs: set[str]) -> Command | None:
    if obj == "box":
        direction = direction_in(text)
        if direction is not None and ("move" in verbs or not verbs - {"raise", "lower"}):
            pixels, mm = amount_in(text, DEFAULT_MOVE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
            args: dict[str, Any] = {"direction": direction, "pixels": pixels}
            if mm is not None:
                args["mm"] = mm
            return Command("move_box", args)
        signed = re.search(r"\b(plus|minus) (\d+)\b|(?<!\S)(-\d+)\b", text)
        if signed and not verbs - {"set"}:
            # "box +5", "box -5": a signed amount alone resizes
            value = int(signed.group(2) or signed.group(3).lstrip("-"))
            negative = signed.group(1) == "minus" or signed.group(3) is not None
            return Command("resize_box", {"pixels": -value if negative else value})
        grow, shrink = bool(verbs & {"grow"}), bool(verbs & {"shrink"})
        if grow != shrink:
            amount = _count(text) or DEFAULT_RESIZE_PX
            return Command("resize_box", {"pixels": abs(amount) if grow else -abs(amount)})
        return None
    if obj == "threshold":
        values = numbers_in(text)
        raise_, lower = bool(verbs & {"raise"}), bool(verbs & {"lower"})
        if raise_ != lower:
            from .threshold import step_of

            step = abs(values[0]) if values and abs(values[0]) <= 1 else step_of(text)
            return Command("threshold", {"delta": round(step if raise_ else -step, 4)})
        if values and 0 <= values[0] <= 1:
            return Command("threshold", {"value": round(values[0], 4)})
        return None
    if obj == "window":
        for word, preset in PRESET_WORDS.items():
            if re.search(rf"\b{word}\b", text):
                return Command("window", {"preset": preset})
        return Command("window", {"preset": "organ"}) if verbs & {"set"} else None
    if obj == "step":
        count = _count(text)
        if "back" in verbs and count is not None and not re.search(r"\bto\b", text):
            return Command("undo", {"count": count})  # a count said, even one, is kept
        if verbs & {"back", "set"} and count is not None:
            return Command("revert", {"step": count})
        return None
    if obj == "slice" and "spread" in verbs:
        direction = direction_in(text)
        direction = direction if direction in {"up", "down"} else "both"
        return Command("propagate", {"direction": direction, "slices": _count(text)})
    if obj == "component":
        if "keep" in verbs and re.search(r"\b(largest|biggest|main)\b", text):
            return Command("remove_component", {"keep_largest": True})
        index = _count(text)
        if "remove" in verbs and index is not None:
            return Command("remove_component", {"index": index})
        return None
    if obj == "cell":
        cell = _count(text)
        if cell is None:
            return None
        return Command("grid_click", {"cell": cell, "positive": not set(text.split()) & _NEGATIVE})
    return None


#: Tried after every kind's own rules (priorities in ``CommandSpec.rules``), before the matcher.
FRAME_RULES = ((24.5, rule_frames),)
