"""Command line of CCMetricsLib: ``python -m CCMetricsLib evaluate ...`` (also ``cc-metrics``).

Single case::

    python -m CCMetricsLib evaluate --reference ref.nii.gz --prediction a.nii.gz --prediction b.nii.gz \\
        --label 1 --json out.json --csv out.csv --regions regions.nii.gz --png out.png

Folder mode (files matched by name; one prediction folder per model)::

    python -m CCMetricsLib evaluate --reference-dir refs/ --prediction-dir modelA/ --prediction-dir modelB/ \\
        --out-dir results/

Folder mode evaluates each case on its own, writes dataset.csv (with a status column),
dataset_summary.csv and dataset.json always, continues an earlier run with --resume and exits 1
naming the failed cases when any failed. Outputs appear only after everything succeeded.

Multi-rater agreement (Peak Ground Truth) of one case::

    python -m CCMetricsLib multirater --raters A.nii.gz B.nii.gz C.nii.gz --repeat A A_2.nii.gz \\
        --prediction model.nii.gz --consensus staple.nii.gz --json agreement.json --png band.png

Exit code 2 with a one-line reason on bad input (missing file, different grids, label maps
without --label ...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from AnatomyCommonLib.cli import add_verbose, dispatch, exit_codes_epilog, progress
from AnatomyCommonLib.cluster import add_cluster_arguments, cluster_options

from .aggregation import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from .evaluation import METRICS, rows_to_csv
from .exceptions import AnatomyToolkitError, CommandError, InvalidParameterError, OutputExistsError
from .staged_outputs import StagedOutputs


class OneLineArgumentParser(argparse.ArgumentParser):
    """Usage errors on one line (``prog: error: reason; see --help``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
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
        epilog=exit_codes_epilog("1 folder mode: at least one case failed (see dataset.csv's status column)"),
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
        "--out-dir",
        type=Path,
        help="where cases/<case>.csv, dataset.csv, dataset_summary.csv and dataset.json go",
    )
    folder.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier run into --out-dir: skip its finished cases, retry the failed ones",
    )
    folder.add_argument(
        "--bootstrap-resamples",
        type=int,
        default=BOOTSTRAP_RESAMPLES,
        metavar="N",
        help=f"resamples of the bootstrap 95%% CI of the dataset mean (default {BOOTSTRAP_RESAMPLES})",
    )
    folder.add_argument(
        "--seed", type=int, default=BOOTSTRAP_SEED, help="seed of the bootstrap (default %(default)s)"
    )
    add_cluster_arguments(evaluate)
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
        "--nsd-tolerance",
        type=float,
        default=1.0,
        metavar="MM",
        help="normalized surface Dice (NSD) tolerance in mm; keep it at least one voxel edge, or every "
        "one-voxel surface error scores 0 on thick slices",
    )
    options.add_argument(
        "--distance-worst",
        type=float,
        metavar="MM",
        help="distance of a component without prediction in its region (default: the image diagonal "
        "in mm; 'inf' for infinity)",
    )
    options.add_argument(
        "--clamp-distances", action="store_true", help="also cap finite distances at --distance-worst"
    )
    options.add_argument(
        "--connectivity",
        type=int,
        default=26,
        choices=(6, 18, 26),
        help="neighbourhood joining lesion voxels into components: 6 faces, 18 + edges, 26 + corners",
    )
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing output files")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar in folder mode")
    evaluate.set_defaults(handler=one_line_errors(run_evaluate))
    _add_multirater(commands)
    return parser


def _add_multirater(commands) -> None:
    multirater = commands.add_parser(
        "multirater",
        help="inter/intra-rater agreement band, STAPLE consensus, models against the band",
        description="Peak Ground Truth: pairwise Dice and CC-Dice between raters (both directions), "
        "inter-rater agreement (mean over rater pairs), intra-rater agreement (repeat sessions), a STAPLE "
        "consensus, and each model's mean score against the raters shown against the band; a warning when "
        "a model exceeds intra-rater agreement (it fits label noise).",
    )
    multirater.add_argument(
        "--raters", type=Path, nargs="+", required=True, metavar="FILE", help="one mask per rater (>= 2)"
    )
    multirater.add_argument(
        "--repeat",
        nargs=2,
        action="append",
        default=[],
        metavar=("RATER", "FILE"),
        help="another session of RATER (its name or its --raters file) for intra-rater agreement "
        "(repeatable)",
    )
    multirater.add_argument(
        "--prediction", type=Path, action="append", default=[], help="a model's mask (repeatable)"
    )
    multirater.add_argument("--label", type=int, help="compare this value of label maps")
    multirater.add_argument(
        "--connectivity",
        type=int,
        default=26,
        choices=(6, 18, 26),
        help="neighbourhood joining lesion voxels into components: 6 faces, 18 + edges, 26 + corners",
    )
    multirater.add_argument("--json", type=Path, help="write pairs, band, STAPLE and models as JSON")
    multirater.add_argument("--csv", type=Path, help="write the pairwise agreement table as CSV")
    multirater.add_argument("--models-csv", type=Path, help="write the model scores as CSV")
    multirater.add_argument(
        "--consensus", type=Path, help="write the STAPLE consensus (usable as --reference)"
    )
    multirater.add_argument("--png", type=Path, help="write the agreement-band plot")
    multirater.add_argument("--overwrite", action="store_true", help="replace existing output files")
    multirater.set_defaults(handler=one_line_errors(run_multirater))


def run_multirater(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.image_io import read_labelmap, write_volume

    from .batch import prediction_names
    from .evaluation import write_json
    from .multirater import format_agreement_table, multirater_agreement, plot_agreement

    outputs = [args.json, args.csv, args.models_csv, args.consensus, args.png]
    _refuse_existing(outputs, args.overwrite)
    names = prediction_names(args.raters)
    raters = {name: read_labelmap(path, name=name) for name, path in zip(names, args.raters, strict=True)}
    by_path = {str(path): name for name, path in zip(names, args.raters, strict=True)}
    repeats: dict[str, list] = {}
    for rater, path in args.repeat:
        name = rater if rater in raters else by_path.get(str(Path(rater)))
        if name is None:
            raise InvalidParameterError(
                f"--repeat {rater} {path}: {rater} is not one of the raters ({', '.join(names)})."
            )
        repeats.setdefault(name, []).append(read_labelmap(path, name=f"{name} repeat"))
    model_names = prediction_names(args.prediction)
    predictions = {
        name: read_labelmap(path, name=name) for name, path in zip(model_names, args.prediction, strict=True)
    }
    result = multirater_agreement(
        raters, repeats, predictions, label=args.label, connectivity=args.connectivity
    )
    with StagedOutputs() as staged:
        if args.json:
            write_json(result.to_dict(), staged.path(args.json))
        if args.csv:
            rows_to_csv(result.pair_rows(), staged.path(args.csv))
        if args.models_csv:
            rows_to_csv(result.model_rows(), staged.path(args.models_csv))
        if args.consensus:
            write_volume(result.consensus, staged.path(args.consensus), overwrite=True)
        if args.png:
            plot_agreement(result, staged.path(args.png))
    print(format_agreement_table(result))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


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
        if args.bootstrap_resamples < 1:
            raise InvalidParameterError("--bootstrap-resamples must be at least 1.")
        rows = evaluate_folder(
            args.reference_dir,
            args.prediction_dir,
            args.out_dir,
            label=args.label,
            all_labels=args.all_labels,
            overwrite=args.overwrite,
            resume=args.resume,
            bootstrap_resamples=args.bootstrap_resamples,
            seed=args.seed,
            progress=None
            if args.no_progress
            else (lambda items, total, desc: progress(items, total=total, desc=desc)),
            cluster=cluster_options(args),
            **_metric_options(args),
        )
        finished = [row for row in rows if row.get("status") == "ok"]
        if finished:
            print(format_summary_table(finished, args.metrics))
        print(
            f"\nper-case tables in {args.out_dir / 'cases'}/, dataset tables: "
            f"{args.out_dir / 'dataset.csv'}, {args.out_dir / 'dataset_summary.csv'}, "
            f"{args.out_dir / 'dataset.json'}"
        )
        failed = {row["case"]: row["error"] for row in rows if row.get("status") != "ok"}
        if failed:
            cases = {row["case"] for row in rows}
            listed = "; ".join(f"{case}: {reason}" for case, reason in list(failed.items())[:5])
            more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
            print(
                f"error: {len(failed)} of {len(cases)} cases failed ({listed}{more}); "
                f"see the status column of {args.out_dir / 'dataset.csv'}",
                file=sys.stderr,
            )
            return 1
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
    components = [row for result in results for row in result.component_rows()]
    strata_rows = _anatomy_strata(args, reference, results) if args.anatomy else []
    # every output is staged and appears only once all of them were produced
    with StagedOutputs() as staged:
        if args.csv:
            rows_to_csv(components, staged.path(args.csv))
        if args.summary_csv:
            rows_to_csv(summary, staged.path(args.summary_csv))
        if args.json:
            from .evaluation import write_json

            data = {"predictions": [r.to_dict() for result in results for r in result]}
            write_json(data, staged.path(args.json))
        if args.regions:
            _write_regions(reference, results[0], args, staged.path(args.regions))
        if args.anatomy_csv:
            rows_to_csv(strata_rows, staged.path(args.anatomy_csv))
        if args.png:
            from . import report_png

            report = report_png.render_component_report(
                reference, predictions, results[0], staged.path(args.png), overwrite=True
            )
            png_pages = [args.png]
            for number, page in enumerate(report.pages[1:], start=2):  # written beside the staged first
                png_pages.append(args.png.with_name(f"{args.png.stem}_page{number}{args.png.suffix}"))
                staged.adopt(page, png_pages[-1])
    print(format_summary_table(summary, args.metrics))
    for what, path in (
        ("table", args.csv),
        ("summary", args.summary_csv),
        ("JSON", args.json),
        ("regions", args.regions),
        ("anatomy strata", args.anatomy_csv),
    ):
        if path:
            print(f"{what}: {path}", file=sys.stderr)
    for page in png_pages if args.png else []:
        print(f"PNG: {page}", file=sys.stderr)
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


def _write_regions(reference, result, args: argparse.Namespace, path: Path) -> None:
    import numpy as np

    from AnatomyCommonLib.image_io import write_volume

    from .voronoi import voronoi_regions

    label = next(iter(result)).settings.get("label")
    mask = reference.array == label if label is not None else reference.array != 0
    regions, n = voronoi_regions(mask, reference.spacing_kji_mm, args.connectivity, spacing_order="kji")
    dtype = np.uint8 if n < 256 else (np.uint16 if n < 65536 else np.uint32)
    write_volume(reference.with_array(regions.astype(dtype)), path, overwrite=True)


def one_line_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every failure of ``handler`` becomes a typed error with a one-line message (the shared
    ``run_cli`` prints it as ``error: ...`` with exit code 2); ``--verbose`` keeps tracebacks."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            if getattr(args, "verbose", False):
                raise
            raise CommandError(one_line(error)) from None

    return run


def one_line(error: BaseException) -> str:
    """The reason of an error on one line (OS errors name the path)."""
    if isinstance(error, OSError) and not isinstance(error, AnatomyToolkitError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        text = f"cannot write or read{where} ({error.strerror})"
    elif isinstance(error, AnatomyToolkitError | ValueError | KeyError):
        text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    else:
        text = f"{type(error).__name__}: {error} (rerun with --verbose for the traceback)"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
