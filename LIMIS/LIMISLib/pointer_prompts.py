"""Typed commands that point at the mouse: "positive click here" uses the last placed point.

The Slicer module records every point the user places in its positive/negative point lists
(:meth:`LIMISLib.volume_session.VolumeSession.place_point`); a typed "positive click here",
"negative click here", "click here" (the sign of the list the point was placed in), "add a point
here" or "not here" (negative) becomes a ``point_click`` at that point. These phrases are resolved
before the command grammar, which knows nothing of the mouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .command_grammar import Command, api_command

_POSITIVE = {"positive", "foreground", "add", "include", "plus"}
_NEGATIVE = {"negative", "background", "remove", "exclude", "minus", "not"}
_HERE = re.compile(
    r"(?:(?P<sign>positive|negative|foreground|background|add|remove|include|exclude|plus|minus|not)\s+)?"
    r"(?:(?:a|the|one)\s+)?(?:(?:click|point|seed|dot)\s+)?(?:it\s+)?"
    r"(?:here|there|at (?:the |my |this )?(?:last |placed )?point)"
)


@dataclass(frozen=True)
class PlacedPoint:
    """A point the user placed with the mouse: display pixels, its axial slice and its list's sign."""

    x: float
    y: float
    slice_index: int
    positive: bool


def here_command(text: str, last_point: PlacedPoint | None) -> Command | None:
    """The ``point_click`` a "... here" phrase means, or None when ``text`` is not such a phrase.

    Without a placed point the command carries no coordinates (applying it says to place one).
    """
    normalised = " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())
    match = _HERE.fullmatch(normalised)
    if match is None:
        return None
    word = match.group("sign")
    if word in _POSITIVE:
        positive = True
    elif word in _NEGATIVE:
        positive = False
    else:
        positive = None if last_point is None else last_point.positive
    if last_point is None:
        return api_command("point_click", text, positive=True if positive is None else positive, here=True)
    return api_command(
        "point_click",
        text,
        x=last_point.x,
        y=last_point.y,
        positive=positive,
        slice=last_point.slice_index,
        here=True,
    )
