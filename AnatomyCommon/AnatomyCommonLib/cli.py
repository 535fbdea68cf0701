"""What the three command-line interfaces share: error reporting, progress bars, JSON output.

A CLI ``main`` builds an argparse parser with sub-commands and hands the dispatch to
:func:`run_cli`, which turns the toolkit's typed errors into a one-line reason on stderr
and a non-zero exit code (2 = bad input, 130 = interrupted).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import AnatomyToolkitError

T = TypeVar("T")


def run_cli(handler: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a sub-command handler; typed errors become ``error: <reason>`` and exit code 2."""
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING)
    try:
        return int(handler(args) or 0)
    except AnatomyToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, FileNotFoundError) as error:
        if getattr(args, "verbose", False):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


#: exit codes every sub-command shares (see :func:`run_cli`); commands add their own in the epilog
COMMON_EXIT_CODES = (
    "0 done",
    "2 bad input or a failed step (one line on stderr; -v shows the traceback)",
    "130 interrupted",
)


def exit_codes_epilog(*extra: str) -> str:
    """The epilog listing a command's exit codes: ``extra`` ("3 unknown command") and the common ones."""
    codes = sorted((*COMMON_EXIT_CODES, *extra), key=lambda text: int(text.split()[0]))
    return "exit codes: " + ", ".join(codes)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default (unless its text already names it) and keeps epilogs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(
                action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction)
            )
            or not action.option_strings
            or default == []
        ):
            return text
        shown = " ".join(str(v) for v in default) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})".strip()


def apply_help_conventions(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and every sub-command parser the defaults formatter and an exit-code epilog."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        default = action.default
        shown = default is not None and not isinstance(default, bool) and default != []
        if action.help is None and action.option_strings and shown:
            action.help = "(default: %(default)s)"  # argparse hides options without help text
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.epilog is None and not any(
                    isinstance(a, argparse._SubParsersAction) for a in sub._actions
                ):
                    sub.epilog = exit_codes_epilog()
                apply_help_conventions(sub)
    return parser


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the handler stored with ``set_defaults(handler=...)``.

    Every sub-command's ``--help`` shows defaults and exit codes (:func:`apply_help_conventions`);
    without a command the help is printed and the exit code is 1.
    """
    args = apply_help_conventions(parser).parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 1
    return run_cli(args.handler, args)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log details and show tracebacks")


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True
) -> Iterable[T]:
    """A tqdm progress bar on stderr (silently a plain iterator if tqdm is missing or disabled)."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True)


def write_json(data: Any, path: str | Path | None) -> None:
    """Write JSON to ``path`` (``-`` or None: stdout)."""
    text = json.dumps(data, indent=2, default=json_default)
    if path in (None, "-"):
        print(text)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays and paths (as plain numbers, lists, strings)."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot write {type(value).__name__} as JSON")
