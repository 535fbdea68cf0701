"""The ``grid_click`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re

from .base import Command, CommandSpec, ParseContext
from .lexicon import ORDINALS, has, numbers_in

_NEGATIVE_CLICK = (
    r"negative|background|minus|exclude|excluded|outside|bg|not part|is not|no|remove|subtract|out|not the"
    r"|not in|false"
    r"|does not belong|not belong|neg|erase|deselect"
)


_POSITIVE_CLICK = (
    r"positive|foreground|plus|include|included|inside|fg|part of|belongs|add|yes|in|pos|select|is the"
)


def _rule_grid_click(text: str, context: ParseContext | None) -> Command | None:
    grid_word = has(
        text, r"cell|cells|grid|square|squares|tile|field|box number|quadrant|position|spot number"
    )
    click_word = has(text, r"click|clicks|point|dot|tap|seed|mark")
    bare = re.fullmatch(
        r"(plus|minus|positive|negative|foreground|background|pos|neg)\s+(?:in\s+|at\s+)?(-?\d+)", text
    )
    signed = re.fullmatch(r"(-)?(\d+)", text)
    if bare:
        cell = abs(int(float(bare.group(2))))
        positive = bare.group(1) in {"plus", "positive", "foreground", "pos"}
        return Command("grid_click", {"cell": cell, "positive": positive}) if 1 <= cell <= 16 else None
    if signed and signed.group(1) and 1 <= int(signed.group(2)) <= 16:
        return Command("grid_click", {"cell": int(signed.group(2)), "positive": False})
    if not (grid_word or click_word):
        return None
    if has(text, r"component|blob|island|step|threshold|window|slices?|pixels?|px"):
        return None
    if click_word and not grid_word and has(text, r"center|centre|middle|central"):
        return None
    cell_match = re.search(
        r"\b(?:cell|square|tile|field|number|grid|position|no)\s*(?:number\s*)?(-?\d+)\b", text
    )
    numbers = [int(abs(v)) for v in numbers_in(text) if float(v).is_integer()]
    ordinal = re.search(rf"\b({'|'.join(ORDINALS)})\s+(?:cell|square|tile|field)\b", text)
    if cell_match is None and ordinal:
        numbers = [ORDINALS[ordinal.group(1)]]
    cell = int(abs(int(cell_match.group(1)))) if cell_match else (numbers[0] if numbers else None)
    if cell is None:
        return None
    if not 1 <= cell <= 16 and not (cell_match and click_word):
        return None
    negative = has(text, _NEGATIVE_CLICK) or re.search(r"(?<![\w.])-\d", text) is not None
    positive = has(text, r"positive|foreground|plus|include|fg|pos")
    return Command("grid_click", {"cell": cell, "positive": bool(positive or not negative)})


def refuse_cell(args: dict) -> str | None:
    """A grid cell outside 1-16 is refused by the parser with the valid range."""
    cell = args.get("cell")
    if cell is not None and not 1 <= cell <= 16:
        return f"There is no cell {cell}: the grid has cells 1 to 16 (row by row over the box)."
    return None


SPEC = CommandSpec(
    "grid_click",
    "positive/negative click in grid cell 1-16 (row by row over the box)",
    "{cell: 1..16, positive: bool}",
    ("positive click in cell 6", "negative click in 11"),
    rules=((18, _rule_grid_click),),
    refuse=refuse_cell,
)
