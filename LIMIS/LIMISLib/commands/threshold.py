"""The ``threshold`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import DEFAULT_THRESHOLD_STEP, has, numbers_in

#: "less strict" is lenient and "less lenient" strict: the comparative flips the adjective.
_FLIPPED = (
    (r"\bless (strict|stringent|conservative|selective|restrictive|tight)\b", "more lenient"),
    (r"\bless (lenient|generous|liberal|sensitive|permissive|loose)\b", "more strict"),
)


def _rule_threshold(text: str, context: ParseContext | None) -> Command | None:
    for pattern, replacement in _FLIPPED:
        text = re.sub(pattern, replacement, text)
    # "cut off" is the threshold unless it is the verb with an object ("you cut off the lower pole")
    threshold_word = has(
        text,
        r"threshold|thresholds|confidence|cutoff|probability|certainty|thresh"
        r"|cut off(?! (?:the|a|an|part|some|too|much|its|it|this|that|my)\b)",
    )
    if not threshold_word:
        if re.search(
            r"\b(only|just) (keep|include|take|use)\b.*\b(sure|confident|certain)\b", text
        ) or re.search(
            r"\b(more|very|really|higher) (sure|confident|certain)\b|\bbe (more )?(sure|confident|certain)\b",
            text,
        ):
            return Command("threshold", {"delta": DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(even if|although|though) (you are )?(less |not |un)(sure|confident|certain)\b|\bless (sure"
            r"|confident|certain)\b",
            text,
        ):
            return Command("threshold", {"delta": -DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(be )?(more strict|stricter|more conservative|more selective|less generous|less sensitive)\b",
            text,
        ):
            return Command("threshold", {"delta": DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(be )?(less strict|more lenient|more generous|more liberal|more sensitive|less conservative"
            r"|less selective)\b",
            text,
        ):
            return Command("threshold", {"delta": -DEFAULT_THRESHOLD_STEP})
        return None
    strong_raise = has(
        text,
        r"raise|raised|increase|increased|higher|bump|boost|tighten|stricter|strict|harder|upper|heighten",
    )
    strong_lower = has(
        text,
        r"lower|lowered|decrease|decreased|reduce|reduced|drop|relax|loosen|looser|softer|smaller|lenient",
    )
    if has(text, r"more lenient|more permissive|more generous|more sensitive"):
        strong_raise, strong_lower = False, True
    signed = re.search(r"\b(plus|minus) (\d+(?:\.\d+)?)\b", text)
    if signed:
        delta = float(signed.group(2)) / (100.0 if float(signed.group(2)) > 1.0 else 1.0)
        return Command("threshold", {"delta": round(delta if signed.group(1) == "plus" else -delta, 4)})
    if strong_raise != strong_lower:
        sign = 1 if strong_raise else -1
    elif has(text, r"up|more") != has(text, r"down|less"):
        sign = 1 if has(text, r"up|more") else -1
    else:
        sign = 0
    numbers = numbers_in(text)
    value = None
    if numbers:
        value = numbers[-1]
        # "70" and "70 percent" are percentages; "1.5" or "2" are kept as said and refused (0.01-0.99)
        if has(text, r"percent|pct") or (abs(value) >= 10.0 and float(value).is_integer()):
            value = value / 100.0
    as_step = has(text, r"by") or (not has(text, r"to|at|equal|equals|of|is") and abs(value or 0) < 0.3)
    if value is not None and value < 0 and not has(text, r"to|at|equal|equals|of|is|set"):
        return Command("threshold", {"delta": round(value, 4)})  # "threshold -0.05" is a step down
    if value is not None and sign and as_step:
        return Command("threshold", {"delta": round(sign * abs(value), 4)})
    if value is not None:
        return Command("threshold", {"value": round(value, 4)})
    if sign:
        return Command("threshold", {"delta": round(sign * step_of(text), 4)})
    return None


def step_of(text: str) -> float:
    """The threshold step a phrasing asks for: default, half for "a bit", double for "a lot"."""
    if has(text, r"a bit|a little|slightly|a touch|a tad|marginally|tiny bit|little bit|a hair|a smidge"):
        return DEFAULT_THRESHOLD_STEP / 2
    if has(text, r"a lot|much|way|considerably|substantially|significantly"):
        return DEFAULT_THRESHOLD_STEP * 2
    return DEFAULT_THRESHOLD_STEP


def refuse_threshold(args: dict) -> str | None:
    """A threshold value outside 0.01-0.99 is refused by the parser with the valid range."""
    value = args.get("value")
    if value is not None and not 0.01 <= value <= 0.99:
        return f"A threshold of {value:g} is not possible: the threshold is a probability from 0.01 to 0.99."
    return None


SPEC = CommandSpec(
    "threshold",
    "change the probability threshold (0..1)",
    "{value} or {delta}",
    ("raise the threshold", "set the threshold to 0.7", "thr up"),
    rules=((12, _rule_threshold),),
    refuse=refuse_threshold,
)
