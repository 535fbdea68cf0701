"""Command line of DAPAtlasLib: ``python -m DAPAtlasLib <command> ...`` (also ``dap-atlas``).

Sub-commands live next to what they drive: :mod:`.cli_phantom` (sample data),
:mod:`.cli_postprocess` (post-processing, statistics, label table), :mod:`.cli_inference`
(segmentation with the released models, model conversion, weights) and :mod:`.cli_evaluate`
(Dice and NSD against a labelled dataset).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from AnatomyCommonLib.cli import add_verbose, dispatch

from . import cli_evaluate, cli_inference, cli_phantom, cli_postprocess


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m DAPAtlasLib",
        description="DAP Atlas: whole-body CT anatomy (142 structures), post-processing and statistics.",
    )
    add_verbose(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    cli_phantom.add_commands(commands)
    cli_postprocess.add_commands(commands)
    cli_inference.add_commands(commands)
    cli_evaluate.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
