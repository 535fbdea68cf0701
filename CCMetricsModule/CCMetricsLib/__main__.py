"""Command line of CCMetricsLib: ``python -m CCMetricsLib evaluate ...`` (also ``cc-metrics``).

Single case::

    python -m CCMetricsLib evaluate --reference ref.nii.gz --prediction a.nii.gz --prediction b.nii.gz \\
        --label 1 --json out.json --csv out.csv --regions regions.nii.gz --png out.png

Folder mode (files matched by name; one prediction folder per model)::

    python -m CCMetricsLib evaluate --reference-dir refs/ --prediction-dir modelA/ --prediction-dir modelB/ \\
        --out-dir results/

Exit code 2 with a one-line reason on bad input (missing file, different grids, label maps
without --label ...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from AnatomyCommonLib.cli import add_verbose, dispatch, progress

from .evaluation import METRICS, rows_to_csv
from .exceptions import InvalidParameterError, OutputExistsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m CCMetricsLib",
        description="CC-Metrics: per-connected-component evaluation via generalized Voronoi regions.",
    )
    add_verbose(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    evaluate = commands.add_parser(
        "evaluate",
        help="score predictions against a reference (one case or two folders)",
        description="Per-component Dice, IoU, NSD, HD95, HD and ASSD (mm) in the Voronoi region of each "
        "reference component, next to the standard global metrics, Panoptic Quality and Lesion Dice.",
    )
    single = evaluate.add_argument_group("one case")
    single.add_argument(
        "--reference", type=Path, help="reference mask or label map (.nii.gz, .nrrd, .mha ...)"
    )
    single.add_argument(
        "--prediction",
        type=Path,
        action="append",
        default=[],
        help="prediction on the same grid (repeatable)",
    )
    single.add_argument("--json", type=Path, help="write all results as JSON")
    single.add_argument("--csv", type=Path, help="write the per-component table as CSV")
    single.add_argument(
        "--summary-csv", type=Path, help="write the standard-vs-CC summary (one row per prediction)"
    )
    single.add_argument(
        "--regions", type=Path, help="write the Voronoi region map (image on the reference grid)"
    )
    single.add_argument("--png", type=Path, help="write the per-component slices with regions and scores")
    single.add_argument(
        "--anatomy",
        type=Path,
        metavar="LABELMAP",
        help="DAP Atlas label map of the case: CC scores per structure and system (printed)",
    )
    single.add_argument(
        "--anatomy-csv", type=Path, help="with --anatomy: write the per-structure/system table"
    )
    folder = evaluate.add_argument_group("folder mode")
    folder.add_argument("--reference-dir", type=Path, help="folder of reference files")
    folder.add_argument(
        "--prediction-dir",
        type=Path,
        action="append",
        default=[],
        help="folder of predictions named as the references (repeatable)",
    )
    folder.add_argument(
        "--out-dir", type=Path, help="where cases/<case>.csv, dataset.csv and dataset_summary.csv go"
    )
    options = evaluate.add_argument_group("metrics")
    options.add_argument("--label", type=int, help="evaluate this value of label maps")
    options.add_argument(
        "--all-labels", action="store_true", help="evaluate every non-zero label, one by one"
    )
    options.add_argument(
        "--metrics",
        nargs="+",
        default=list(METRICS),
        choices=METRICS,
        metavar="METRIC",
        help=f"any of {' '.join(METRICS)} (default: all)",
    )
    options.add_argument(
        "--nsd-tolerance", type=float, default=1.0, metavar="MM", help="surface Dice tolerance in mm"
    )
    options.add_argument(
        "--distance-worst",
        type=float,
        metavar="MM",
        help="distance reported for missed components (default inf)",
    )
    options.add_argument(
        "--clamp-distances", action="store_true", help="also cap finite distances at --distance-worst"
    )
    options.add_argument("--connectivity", type=int, default=26, choices=(6, 18, 26))
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing output files")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar in folder mode")
    evaluate.set_defaults(handler=run_evaluate)
    return parser


def _metric_options(args: argparse.Namespace) -> dict:
    return {
        "metrics": args.metrics,
        "nsd_tolerance": args.nsd_tolerance,
        "connectivity": args.connectivity,
        "distance_worst": args.distance_worst,
        "clamp_distances": args.clamp_distances,
    }


def _refuse_existing(paths: Sequence[Path | None], overwrite: bool) -> None:
    for path in paths:
        if path is not None and path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; choose another file name or pass --overwrite.")


def run_evaluate(args: argparse.Namespace) -> int:
    from .batch import evaluate_folder, evaluate_volumes, format_summary_table, prediction_names, read_case

    folder_mode = args.reference_dir is not None or args.prediction_dir
    if folder_mode:
        if args.anatomy:
            raise InvalidParameterError("--anatomy works on one case (--reference/--prediction).")
        if args.reference is not None or args.prediction:
            raise InvalidParameterError(
                "Use either --reference/--prediction or --reference-dir/--prediction-dir."
            )
        if args.reference_dir is None or not args.prediction_dir or args.out_dir is None:
            raise InvalidParameterError(
                "Folder mode needs --reference-dir, at least one --prediction-dir and --out-dir."
            )
        rows = evaluate_folder(
            args.reference_dir,
            args.prediction_dir,
            args.out_dir,
            label=args.label,
            all_labels=args.all_labels,
            overwrite=args.overwrite,
            progress=None
            if args.no_progress
            else (lambda items, total, desc: progress(items, total=total, desc=desc)),
            **_metric_options(args),
        )
        print(format_summary_table(rows, args.metrics))
        print(
            f"\nper-case tables in {args.out_dir / 'cases'}/, dataset tables: "
            f"{args.out_dir / 'dataset.csv'}, {args.out_dir / 'dataset_summary.csv'}"
        )
        return 0

    if args.reference is None or not args.prediction:
        raise InvalidParameterError("Give --reference and at least one --prediction (or use folder mode).")
    if args.anatomy_csv and not args.anatomy:
        raise InvalidParameterError("--anatomy-csv needs --anatomy LABELMAP.")
    _refuse_existing(
        [args.json, args.csv, args.summary_csv, args.regions, args.png, args.anatomy_csv], args.overwrite
    )
    names = prediction_names(args.prediction)
    reference, predictions = read_case(args.reference, dict(zip(names, args.prediction, strict=True)))
    results = evaluate_volumes(
        reference, predictions, label=args.label, all_labels=args.all_labels, **_metric_options(args)
    )
    summary = [row for result in results for row in result.summary_rows()]
    print(format_summary_table(summary, args.metrics))
    components = [row for result in results for row in result.component_rows()]
    strata_rows = _anatomy_strata(args, reference, results) if args.anatomy else []
    if args.csv:
        rows_to_csv(components, args.csv)
    if args.summary_csv:
        rows_to_csv(summary, args.summary_csv)
    if args.json:
        from .evaluation import _write_json

        _write_json({"predictions": [r.to_dict() for result in results for r in result]}, args.json)
    if args.regions:
        _write_regions(reference, results[0], args)
    if args.anatomy_csv:
        rows_to_csv(strata_rows, args.anatomy_csv)
    if args.png:
        from .report_png import render_component_report

        first = results[0]
        render_component_report(reference, predictions, first, args.png, overwrite=args.overwrite)
    for what, path in (
        ("table", args.csv),
        ("summary", args.summary_csv),
        ("JSON", args.json),
        ("regions", args.regions),
        ("PNG", args.png),
        ("anatomy strata", args.anatomy_csv),
    ):
        if path:
            print(f"{what}: {path}", file=sys.stderr)
    return 0


def _anatomy_strata(args: argparse.Namespace, reference, results) -> list[dict]:
    """Print the CC scores per DAP Atlas structure and system of every prediction; the CSV rows."""
    from AnatomyCommonLib import read_volume

    from .anatomy_strata import anatomy_strata, format_strata_table

    anatomy = read_volume(args.anatomy)
    rows = []
    for comparison in results:
        for result in comparison:
            strata = anatomy_strata(result, reference, anatomy)
            print(
                f"\n{result.name}"
                + (f" (label {result.settings['label']})" if result.settings["label"] else "")
            )
            print(format_strata_table(strata, tuple(args.metrics)))
            rows += [
                {"prediction": result.name, "label": result.settings["label"], **row} for row in strata.rows()
            ]
    return rows


def _write_regions(reference, result, args: argparse.Namespace) -> None:
    import numpy as np

    from AnatomyCommonLib.image_io import write_volume

    from .voronoi import voronoi_regions

    label = next(iter(result)).settings.get("label")
    mask = reference.array == label if label is not None else reference.array != 0
    regions, n = voronoi_regions(mask, reference.spacing_kji_mm, args.connectivity)
    dtype = np.uint8 if n < 256 else (np.uint16 if n < 65536 else np.uint32)
    write_volume(reference.with_array(regions.astype(dtype)), args.regions, overwrite=args.overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
