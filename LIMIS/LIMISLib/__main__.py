"""Command line of LIMISLib: ``python -m LIMISLib <command> ...`` (also ``limis``).

Model commands (data preparation, training, evaluation, weights) are in :mod:`.cli_models`;
interaction commands (parsing commands, replaying sessions) in :mod:`.cli_session`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from AnatomyCommonLib.cli import add_verbose, dispatch

from . import cli_models, cli_session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m LIMISLib",
        description=(
            "LIMIS: language-driven interactive segmentation (text -> box -> mask -> typed refinements)."
        ),
    )
    add_verbose(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    cli_models.add_commands(commands)
    cli_session.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
