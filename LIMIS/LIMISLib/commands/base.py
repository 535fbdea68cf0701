"""The parsed command and the dialogue context every rule receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session import Reply
    from ..volume_session import VolumeSession


@dataclass(frozen=True)
class Command:
    """A parsed command. ``source`` says who recognised it: "rule", "semantic", "context" or "api"."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    source: str = "rule"
    confidence: float = 1.0

    def __post_init__(self) -> None:
        from . import COMMANDS  # the registry is the list of kinds

        if self.kind not in COMMANDS and self.source != "api":
            raise ValueError(f"Unknown command kind {self.kind!r}; kinds are {', '.join(COMMANDS)}.")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "args": dict(self.args),
            "text": self.text,
            "source": self.source,
            "confidence": round(float(self.confidence), 4),
        }

    def describe(self) -> str:
        """Short human-readable form ("threshold +0.1", "grid_click cell 6 +")."""
        if not self.args:
            return self.kind
        parts = [f"{k}={v}" for k, v in self.args.items() if k != "suggestions"]
        return f"{self.kind} ({', '.join(parts)})" if parts else self.kind


@dataclass(frozen=True)
class ParseContext:
    """What the session is waiting for, so that dialogue replies can be understood.

    ``pending``: None, "proposal" (keep/discard a candidate step), "question" (yes/no about a
    critical region), "examples" (choose one of ``n_examples``), "grid" (grid clicks of a guided
    strategy). ``choices``: the numbered candidates the session just offered ("did you mean 1 ... 2 ...").
    """

    pending: str | None = None
    target: str | None = None
    n_steps: int = 0
    n_examples: int = 0
    choices: tuple[str, ...] = ()  # the candidates of the last ask-back; a bare number picks one


def api_command(kind: str, text: str = "", **args: Any) -> Command:
    """A command built by code (buttons, tests), not parsed from text."""
    return Command(kind=kind, args=args, text=text or kind, source="api")


#: A parse rule: normalised text and dialogue context -> a command, or None when it does not apply.
Rule = Callable[[str, "ParseContext | None"], "Command | None"]


def route_to_active(session: VolumeSession, command: Command, **_: Any) -> Reply:
    """The default volume handler: the active slice's 2D session handles the command."""
    return session.apply_to_active(command)


@dataclass(frozen=True)
class CommandSpec:
    """One command kind, all in one place (registered in :data:`LIMISLib.commands.COMMANDS`).

    ``rules``: (priority, rule) pairs; all kinds' rules are tried in ascending priority, the first
    that recognises the text wins. ``summary``: the help line; ``arguments``: the argument names;
    ``examples``: canonical phrasings (the first is the one help and suggestions show; every example
    must parse to this kind by the rules alone). ``volume_handler(session, command, **context)``: what
    :meth:`LIMISLib.VolumeSession.apply` does with it (default: the active slice's session).
    """

    kind: str
    summary: str
    arguments: str
    examples: tuple[str, ...]
    rules: tuple[tuple[float, Rule], ...] = ()
    volume_handler: Callable[..., Reply] = route_to_active
    #: ``refuse(args)`` -> why these arguments are impossible (the parser then answers ``unknown``
    #: with that reason instead of the command), or None when they are fine.
    refuse: Callable[[dict[str, Any]], str | None] | None = None
