"""The ``propagate`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import NUMBER_RE, has, int_or_float, numbers_in

#: Propagation as word classes instead of a list of idioms: a spreading verb with a direction or a
#: preposition ("carry it over", "copy this up"), a quantified slice noun ("the adjacent slices",
#: "every slice"), a whole extent ("the entire organ", "the rest of the volume") or 3D words.
_SPREAD = (
    r"(?:propagat|extend|carr(?:y|ies|ied|ying)|cop(?:y|ies|ied|ying)|spread|continu|appl(?:y|ies|ied|ying)"
    r"|transfer)\w*"
)
_SPREAD_OBJECT = r"(?:it |this |that |the (?:mask|segmentation|contour|outline|result) )?"
#: "bring / push / take" spread only with the mask as their object ("bring it up"): "bring up the
#: liver" shows or starts a structure, it does not propagate
_MOVE_VERB = r"(?:push|bring|take)\w*"
_MASK_OBJECT = r"(?:it|this|that|the (?:mask|segmentation|contour|outline|result)) "
_SPREAD_WAY = (
    r"to|over|across|through|on|onward|onwards|forward|forwards|up\w*|down\w*"
    r"|caudal\w*|cranial\w*|superior\w*|inferior\w*|rostral\w*|cephalad|caudad"
)
_QUANTIFIER = (
    r"all(?: the)?|every|each|(?:the )?(?:other|remaining|neighbou?ring|adjacent|next|following|nearby"
    r"|surrounding|subsequent|previous|upper|lower)|more|further"
)
_EXTENT = r"volume|stack|scan|series|organ|structure|slices"
_PROPAGATE_WORDS = (
    rf"propagat\w*|(?:{_SPREAD}) {_SPREAD_OBJECT}(?:{_SPREAD_WAY})\b(?! (?:the )?(?:box|threshold|window))"
    rf"|{_MOVE_VERB} {_MASK_OBJECT}(?:{_SPREAD_WAY})\b(?! (?:the )?(?:box|threshold|window))"
    rf"|extend (?:it|this|that|the (?:mask|segmentation|contour|outline))$|(?:{_QUANTIFIER}) slices?"
    rf"|(?:the )?(?:whole|entire|complete|full) (?:{_EXTENT}|\w+)|(?:the )?rest of the (?:{_EXTENT})"
    r"|track|follow it|do the (?:same|rest)|3d|three d|slice by slice|through the volume"
    r"|until the \w+ ends"
)


def _rule_propagate(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"(continue|carry on|keep going|go on) (up|upwards|down|downwards|caudally|cranially|superiorly"
        r"|inferiorly)",
        text,
    ):
        direction = "up" if has(text, r"up|upwards|cranially|superiorly") else "down"
        return Command("propagate", {"direction": direction, "slices": None})
    if not re.search(rf"\b(?:{_PROPAGATE_WORDS})\b", text) and not (
        has(text, r"slices?")
        and has(text, r"go|continue|extend|segment|do|apply|copy|carry|next|up|down|both")
    ):
        return None
    if has(text, r"box|bbox|threshold|window|cell|grid|not|missed|missing|into"):
        return None
    whole = re.search(r"\b(?:whole|entire|complete|full) (.+)$", text)
    if whole:
        from .segment import group_members

        if group_members(whole.group(1)):
            return None  # "delineate the whole right lung": a group of structures, not the volume
    direction = "both"
    if has(
        text,
        r"up|upwards?|superior|superiorly|cranial|cranially|craniad|towards the head|head|higher|above|upper"
        r"|rostral|cephalad",
    ):
        direction = "up"
    if has(
        text,
        r"down|downwards?|inferior|inferiorly|caudal|caudally|caudad|towards the feet|feet|below|lower|foot",
    ):
        direction = "both" if direction == "up" and has(text, r"and|both") else "down"
    if has(text, r"both|either|both directions|each direction|all directions|up and down|above and below"):
        direction = "both"
    distance = re.search(rf"({NUMBER_RE})\s*(?:mm|millimet(?:er|re)s?)\b", text)
    if distance:  # a distance, not a slice count: the session converts it with the slice spacing
        return Command("propagate", {"direction": direction, "mm": int_or_float(abs(float(distance[1])))})
    numbers = [int(v) for v in numbers_in(text) if float(v).is_integer()]
    slices = numbers[0] if numbers else None
    return Command("propagate", {"direction": direction, "slices": slices})


def _propagate_volume(session, command: Command, *, progress=None, should_cancel=None, **_: Any):
    """Propagate with progress and cancel (the long command)."""
    return session.propagate(
        command.args.get("direction", "both"),
        command.args.get("slices"),
        mm=command.args.get("mm"),
        command=command,
        progress=progress,
        should_cancel=should_cancel,
    )


SPEC = CommandSpec(
    "propagate",
    "propagate to other slices (up = superior; until the structure ends)",
    "{direction: up|down|both, slices} or {direction, mm} (the session converts mm to slices)",
    ("propagate to the neighbouring slices", "propagate up 10 slices"),
    rules=((19, _rule_propagate),),
    volume_handler=_propagate_volume,
)
