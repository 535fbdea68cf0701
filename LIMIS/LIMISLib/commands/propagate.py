"""The ``propagate`` command: its vocabulary and parse rules."""

from __future__ import annotations

import re
from typing import Any

from .base import Command, CommandSpec, ParseContext
from .lexicon import has, numbers_in

_PROPAGATE_WORDS = (
    r"propagate|propagated|propagating|propagation|extend to|carry (it )?(over|on|through|forward)"
    r"|copy (it )?to|spread (it )?(to|over|across)"
    r"|track|follow it|continue (it )?(on|to|into|through)|apply (it )?to|do the (same|rest)|transfer|3d"
    r"|three d|whole (volume|stack|scan|series)"
    r"|(do|segment|get|finish|cover) the (whole|entire|complete) (organ|structure|volume|\w+)"
    r"|all slices|all the slices|every slice|(neighbou?ring|adjacent|next|following|other|remaining|nearby"
    r"|surrounding|subsequent|previous) slices?"
    r"|through the volume|(the )?rest of the (organ|volume|structure|slices)|slice by slice|in 3d|into 3d"
    r"|the other slices|more slices"
    r"|extend (it|the (mask|segmentation|contour|outline))( (up|down)\w*)?"
    r"|until the (organ|structure|\w+) ends"
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
    numbers = [int(v) for v in numbers_in(text) if float(v).is_integer()]
    slices = numbers[0] if numbers else None
    return Command("propagate", {"direction": direction, "slices": slices})


def _propagate_volume(session, command: Command, *, progress=None, should_cancel=None, **_: Any):
    """Propagate with progress and cancel (the long command)."""
    return session.propagate(
        command.args.get("direction", "both"),
        command.args.get("slices"),
        command=command,
        progress=progress,
        should_cancel=should_cancel,
    )


SPEC = CommandSpec(
    "propagate",
    "propagate to other slices (up = superior; until the structure ends)",
    "{direction: up|down|both, slices}",
    ("propagate to the neighbouring slices", "propagate up 10 slices"),
    rules=((19, _rule_propagate),),
    volume_handler=_propagate_volume,
)
