"""The ``window`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import NUMBER_RE, has, int_or_float, words_of

PRESET_WORDS = {
    "liver": "liver",
    "hepatic": "liver",
    "abdomen": "abdomen",
    "abdominal": "abdomen",
    "abdo": "abdomen",
    "belly": "abdomen",
    "soft tissue": "soft tissue",
    "soft tissues": "soft tissue",
    "mediastinum": "mediastinum",
    "mediastinal": "mediastinum",
    "chest": "mediastinum",
    "thorax": "mediastinum",
    "thoracic": "mediastinum",
    "lung": "lung",
    "lungs": "lung",
    "pulmonary": "lung",
    "bone": "bone",
    "bones": "bone",
    "bony": "bone",
    "osseous": "bone",
    "skeletal": "bone",
    "brain": "brain",
    "head": "brain",
    "neuro": "brain",
    "kidney": "kidney",
    "kidneys": "kidney",
    "renal": "kidney",
    "pelvis": "pelvis",
    "pelvic": "pelvis",
}


#: Words before "window" that do not name a window ("the window", "a different window").
_GENERIC_WINDOW_WORDS = words_of(
    "the a an ct organ organs structure different other another new better default change set that this"
    " my its display contrast custom same previous old current standard usual normal adapted alternative"
    " right correct proper good best target image hu grey gray level width some"
)


def _organ_window(word: str) -> str | None:
    """The preset LIMIS uses for an organ named by one word ("spleen" -> "liver"), else None."""
    from ..ct_windows import window_for_structure
    from ..organ_vocabulary import vocabulary

    name = vocabulary().get(word)
    return None if name is None else window_for_structure(name).name


def _rule_window(text: str, context: ParseContext | None) -> Command | None:
    window_word = has(
        text,
        r"window|windows|windowing|windowed|normali[sz]ation|normali[sz]e|level|width|preset|ww|wl"
        r"|contrast setting|display setting",
    )
    preset_match = re.search(
        r"\b("
        + "|".join(sorted(PRESET_WORDS, key=len, reverse=True))
        + r")\s+(?:window|windowing|preset|setting|settings|normali[sz]ation|view|contrast)\b",
        text,
    )
    if re.search(r"\bw (?:to |of |is |= ?)?\d+ (?:and )?l (?:to |of |is |= ?)?-?\d+", text):
        window_word = True
    # presets that are not structures can be named without "window" ("switch to bone")
    bare = re.fullmatch(
        r"(?:(?:switch|change|go|set|use|back)(?: it)?(?: to)? )?(?:the )?"
        r"(bone|bones|bony|mediastinum|mediastinal"
        r"|soft tissue|abdomen|abdominal)(?: settings?)?",
        text,
    )
    if bare:
        return Command("window", {"preset": PRESET_WORDS[bare.group(1)]})
    if not window_word and not preset_match:
        return None
    if has(text, r"threshold|confidence|propagat\w*|slices?|hu values|low hu"):
        return None
    width = re.search(rf"\b(?:width|ww|w|wide)\s*(?:of|to|=|is)?\s*({NUMBER_RE})", text)
    level = re.search(
        rf"\b(?:level|center|centre|wl|l|at)\s*(?:of|to|=|is|at)?\s*(minus\s+)?({NUMBER_RE})", text
    )
    if width and level:
        level_value = -float(level.group(2)) if level.group(1) else float(level.group(2))
        return Command(
            "window", {"width": int_or_float(float(width.group(1))), "level": int_or_float(level_value)}
        )
    pair = re.search(rf"({NUMBER_RE})\s+(?:slash|and|by|over|comma)?\s*(minus\s+)?({NUMBER_RE})", text)
    if pair and window_word:
        first = float(pair.group(1))
        second = -float(pair.group(3)) if pair.group(2) else float(pair.group(3))
        # an impossible width ("window 0 40") is kept as said; the session answers with what is possible
        return Command("window", {"width": int_or_float(first), "level": int_or_float(second)})
    if preset_match:
        return Command("window", {"preset": PRESET_WORDS[preset_match.group(1)]})
    named = re.search(r"\b([a-z]+) (?:window|windowing|preset)\b", text)
    if named and named.group(1) not in _GENERIC_WINDOW_WORDS:
        organ_window = _organ_window(named.group(1))
        return Command("window", {"preset": organ_window or named.group(1)})
    found = re.search(r"\b(" + "|".join(sorted(PRESET_WORDS, key=len, reverse=True)) + r")\b", text)
    if found and window_word:
        return Command("window", {"preset": PRESET_WORDS[found.group(1)]})
    if has(text, r"window|windowing|normali[sz]ation|normali[sz]e|preset"):
        return Command("window", {"preset": "organ"})
    return None


def _rule_contrast(text: str, context: ParseContext | None) -> Command | None:
    if re.search(
        r"\b(adjust|change|set|modify|tweak|alter|different|other|another|better|new)\b.*"
        r"\b(contrast|grey ?scale|gray ?scale|grey values|gray values|brightness)\b",
        text,
    ):
        return Command("window", {"preset": "organ"})
    return None


SPEC = CommandSpec(
    "window",
    "change the CT window: a preset, an organ's window, or width/level in HU",
    "{preset} or {width, level}",
    ("liver window", "bone wndw", "window 400 40"),
    rules=((11, _rule_window), (25, _rule_contrast)),
)
