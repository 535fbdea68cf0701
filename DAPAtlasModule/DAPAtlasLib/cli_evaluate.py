"""``python -m DAPAtlasLib evaluate PRED_DIR LABEL_DIR --mapping btcv|totalsegmentator|word|FILE``.

Dice and NSD per structure against a labelled dataset (see :mod:`.evaluation`); prints the table
in the dissertation's layout, writes JSON/CSV files with ``--out``, and exits with 1 when any
case failed (the failures are named, the other cases are evaluated).
"""

from __future__ import annotations

import argparse
import sys


def _evaluate(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.cli import progress as progress_bar

    from .evaluation import evaluate

    bar = None

    def progress(number: int, total: int, case: str) -> None:
        nonlocal bar
        if bar is None:
            bar = iter(progress_bar(range(total), total=total, desc="evaluating", enabled=total > 1))
        next(bar, None)

    result = evaluate(
        args.predictions, args.labels, args.mapping, tolerance_mm=args.tolerance_mm, progress=progress
    )
    if bar is not None:
        for _ in bar:  # close the progress bar
            pass
    if args.out:
        paths = result.write(args.out, overwrite=args.overwrite)
    sys.stdout.write(result.table_text())
    for case in result.failed:
        print(f"failed {case.case}: {case.error}")
    if result.unmatched_predictions:
        shown = ", ".join(result.unmatched_predictions[:5])
        print(f"{len(result.unmatched_predictions)} prediction(s) without a reference case: {shown}")
    if args.out:
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 1 if result.failed else 0


def add_commands(commands) -> None:
    """Register ``evaluate`` on an argparse sub-parsers object."""
    from AnatomyCommonLib.cli import exit_codes_epilog

    from .evaluation import BUILTIN_MAPPINGS, DEFAULT_TOLERANCE_MM

    evaluate = commands.add_parser(
        "evaluate",
        help="Dice and NSD of DAP label maps against a labelled dataset (BTCV, WORD, TotalSegmentator)",
        description="Per-structure Dice and normalised surface Dice (tolerance in mm) over cases, with mean "
        "+/- SD per structure and the RMS-pooled SD over structures, in the layout of the dissertation's "
        "BTCV table (V1 81 / V2 85 mean Dice).",
        epilog=exit_codes_epilog("1 at least one case failed (listed; the others are scored)"),
    )
    evaluate.add_argument("predictions", help="folder of DAP label maps (or one file)")
    evaluate.add_argument(
        "labels",
        help="folder of reference label maps (or one file); for totalsegmentator: folder of case folders "
        "holding segmentations/<name>.nii.gz",
    )
    evaluate.add_argument(
        "--mapping",
        required=True,
        help=f"dataset mapping: {', '.join(BUILTIN_MAPPINGS)}, or a JSON/CSV mapping file",
    )
    evaluate.add_argument(
        "--tolerance-mm",
        type=float,
        default=DEFAULT_TOLERANCE_MM,
        help=f"NSD tolerance in mm (default {DEFAULT_TOLERANCE_MM:g})",
    )
    evaluate.add_argument("--out", help="folder for evaluation.json, summary.csv, per_case.csv, table.txt")
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    evaluate.set_defaults(handler=_evaluate)
