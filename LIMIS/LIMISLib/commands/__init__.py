"""The LIMIS command registry: one :class:`CommandSpec` per command kind, in one table.

Each spec says what its command does to a volume session (``volume_handler``), how it is described
(``summary``, ``arguments``) and its canonical phrasings (``examples``, the first is the one the
help and the suggestions use). :meth:`LIMISLib.VolumeSession.apply` dispatches through this
table, so the Slicer module never branches on a command kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..command_grammar import Command
    from ..session import Reply
    from ..volume_session import VolumeSession

VolumeHandler = Callable[..., "Reply"]


def route_to_active(session: VolumeSession, command: Command, **_: Any) -> Reply:
    """The default: the active slice's 2D session handles the command."""
    return session.apply_to_active(command)


def _segment(session: VolumeSession, command: Command, **_: Any) -> Reply:
    return session._segment(command, box_xyxy=command.args.get("box"))


def _propagate(session: VolumeSession, command: Command, *, progress=None, should_cancel=None, **_: Any):
    return session.propagate(
        command.args.get("direction", "both"),
        command.args.get("slices"),
        command=command,
        progress=progress,
        should_cancel=should_cancel,
    )


def _undo(session: VolumeSession, command: Command, *, last_was_propagation: bool = False, **_: Any):
    return session.undo(command, last_was_propagation=last_was_propagation)


@dataclass(frozen=True)
class CommandSpec:
    """One command kind: what it does on a volume, its help line, arguments and canonical phrasings."""

    kind: str
    summary: str
    arguments: str
    examples: tuple[str, ...]
    volume_handler: VolumeHandler = route_to_active


COMMANDS: dict[str, CommandSpec] = {
    spec.kind: spec
    for spec in (
        CommandSpec(
            "segment", "segment a structure", "{target}: canonical DAP name", ("segment the liver",), _segment
        ),
        CommandSpec("accept", "keep a proposal or take an example", "{} or {choice: n}", ("accept",)),
        CommandSpec("reject", "drop what is pending (stop, cancel, don't ...)", "{}", ("reject",)),
        CommandSpec("undo", "go back count steps", "{} or {count: n}", ("undo", "undo 3 times"), _undo),
        CommandSpec("revert", "make step n current", "{step}", ("revert to step 2",)),
        CommandSpec("finish", "choose the final step", "{step} (None = current)", ("finish",)),
        CommandSpec(
            "move_box",
            "move the box",
            "{direction, pixels} or {direction, mm}",
            ("move the box up 5 pixels",),
        ),
        CommandSpec("resize_box", "grow or shrink the box", "{pixels}", ("enlarge the box by 10 pixels",)),
        CommandSpec("threshold", "change the threshold", "{value} or {delta}", ("raise the threshold",)),
        CommandSpec(
            "grid_click", "click in a grid cell 1-16", "{cell, positive}", ("positive click in cell 6",)
        ),
        CommandSpec("center_click", "positive click in the box centre", "{}", ("center click",)),
        CommandSpec("critical_regions", "ask about uncertain regions", "{}", ("critical regions",)),
        CommandSpec("answer", "answer a yes/no question", "{value}", ("yes",)),
        CommandSpec("window", "change the CT window", "{preset} or {width, level}", ("liver window",)),
        CommandSpec("examples", "show example corrections", "{}", ("show examples",)),
        CommandSpec(
            "remove_component",
            "remove a component",
            "{index} or {keep_largest}",
            ("keep the largest component",),
        ),
        CommandSpec("ensemble", "ensemble of three corrections", "{}", ("ensemble",)),
        CommandSpec("guided", "a guided multi-step strategy", "{problem}", ("you over-segmented",)),
        CommandSpec(
            "propagate",
            "propagate to other slices",
            "{direction, slices}",
            ("propagate to the neighbouring slices",),
            _propagate,
        ),
        CommandSpec("help", "what can I say", "{}", ("help",)),
        CommandSpec("unknown", "not understood", "{suggestions}", ()),
    )
}


def spec_for(kind: str) -> CommandSpec:
    """The spec of a command kind; API-only kinds ("set_box", ...) go to the active slice."""
    return COMMANDS.get(kind) or CommandSpec(kind, kind, "", ())
