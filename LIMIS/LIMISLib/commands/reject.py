"""The ``reject`` command: its vocabulary and parse rules."""

from __future__ import annotations

from .base import CommandSpec

SPEC = CommandSpec(
    "reject",
    "drop what is pending; stop / cancel / don't X decline X",
    "{}",
    ("reject", "stop propagating"),
    rules=(),  # read by verdict.rule_verdict and the negation rule (dialogue.py)
)
