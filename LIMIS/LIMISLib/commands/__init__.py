"""The LIMIS command registry: one unit per command kind, registered in one table.

Each kind has its own module here holding everything about it: its vocabulary and parse rules,
argument names, help line, canonical examples and what it does to a volume session
(:class:`~LIMISLib.commands.base.CommandSpec`). :data:`COMMANDS` registers them (the way
``DAPAtlasLib.postprocess.STEPS`` registers post-processing rules); :data:`RULES` is every kind's
rules in priority order; :mod:`~LIMISLib.commands.lexicon` is the shared vocabulary (normalisation,
numbers, directions, amounts, step references), :mod:`~LIMISLib.commands.dialogue` the rules that
span kinds (dialogue context, negation and scope, terse replies, ambiguity) and
:mod:`~LIMISLib.commands.frames` the compositional fallback (verb class + object + modifiers).
:meth:`LIMISLib.VolumeSession.apply` dispatches through :func:`spec_for`, so the Slicer module never
branches on a command kind.

Adding a command: a module with its rules and ``SPEC``, one line in :data:`COMMANDS`, a ``_do_<kind>``
handler in :class:`LIMISLib.session.InteractionSession` (or a ``volume_handler``).
"""

from __future__ import annotations

from . import (
    accept,
    answer,
    center_click,
    critical_regions,
    dialogue,
    ensemble,
    examples,
    finish,
    frames,
    grid_click,
    guided,
    help,
    move_box,
    propagate,
    reject,
    remove_component,
    resize_box,
    revert,
    segment,
    threshold,
    undo,
    unknown,
    window,
)
from .base import Command, CommandSpec, ParseContext, Rule, api_command

__all__ = ["COMMANDS", "KINDS", "RULES", "Command", "CommandSpec", "ParseContext", "api_command", "spec_for"]

#: Every command kind, in the order help lists them.
COMMANDS: dict[str, CommandSpec] = {
    unit.SPEC.kind: unit.SPEC
    for unit in (
        segment,
        accept,
        reject,
        undo,
        revert,
        finish,
        move_box,
        resize_box,
        threshold,
        grid_click,
        center_click,
        critical_regions,
        answer,
        window,
        examples,
        remove_component,
        ensemble,
        guided,
        propagate,
        help,
        unknown,
    )
}

KINDS: tuple[str, ...] = tuple(COMMANDS)

#: All parse rules, in the order they are tried (the first that recognises the text wins).
RULES: tuple[Rule, ...] = tuple(
    rule
    for _, rule in sorted(
        [pair for spec in COMMANDS.values() for pair in spec.rules]
        + list(dialogue.DIALOGUE_RULES)
        + list(frames.FRAME_RULES),
        key=lambda pair: pair[0],
    )
)


def spec_for(kind: str) -> CommandSpec:
    """The spec of a command kind; API-only kinds ("set_box", "default_adaptation") go to the active slice."""
    return COMMANDS.get(kind) or CommandSpec(kind, kind, "", ())
