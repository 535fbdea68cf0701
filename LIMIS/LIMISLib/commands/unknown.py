"""The ``unknown`` command: what the parser answers when nothing fits (with suggestions)."""

from __future__ import annotations

from .base import CommandSpec

SPEC = CommandSpec("unknown", "not understood: two or three suggestions", "{suggestions: [texts]}", ())
