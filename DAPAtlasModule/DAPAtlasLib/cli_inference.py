"""``python -m DAPAtlasLib segment|batch|convert-model|models``: inference with the released models.

* ``segment CT OUT [--model dap-atlas-v2|FOLDER]``: one CT -> one label map on the CT's grid;
* ``batch INPUT... --out DIR``: many CTs -> label maps + statistics.csv, resumable;
* ``convert-model V1_TRAINER_FOLDER OUT_FOLDER``: nnU-Net v1 results -> nnU-Net v2 results;
* ``models list|install NAME SOURCE|verify|use-folder NAME FOLDER``: the weights manager.

``--progress-lines`` prints ``PROGRESS <fraction> <message>`` lines and a final ``RESULT <path>``
on stdout for a parent process (the Slicer module's background job) instead of a progress bar.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from AnatomyCommonLib.cli import exit_codes_epilog
from AnatomyCommonLib.cluster import add_cluster_arguments, cluster_options


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="dap-atlas-v2",
        help="model name from the manifest (dap-atlas-v2, dap-atlas-v1), an nnU-Net v2 results folder, "
        "or an nnU-Net v1 trainer folder (converted on first use). Default: dap-atlas-v2",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--folds", nargs="+", help="folds to ensemble (default: all in the model folder)")
    parser.add_argument(
        "--checkpoint",
        help="v2 folders: checkpoint file (default checkpoint_final.pth); v1 sources: checkpoint to convert "
        "(default: the manifest's, else model_final_checkpoint > model_latest > model_best)",
    )
    post = parser.add_mutually_exclusive_group()
    post.add_argument(
        "--postprocess",
        dest="postprocess",
        action="store_true",
        default=None,
        help="apply the anatomical post-processing (default: on for V1, off for V2)",
    )
    post.add_argument("--no-postprocess", dest="postprocess", action="store_false")
    parser.add_argument(
        "--sex",
        choices=["M", "F"],
        help="patient sex for the sex-consistency rule "
        "(default: DICOM PatientSex when the input is a DICOM series)",
    )
    parser.add_argument("--no-mirroring", action="store_true", help="disable test-time mirroring (faster)")
    parser.add_argument(
        "--export-resampling",
        choices=["torch", "nnunet"],
        default="torch",
        help="resampling of the class maps back to the CT grid: torch (default, fast, GPU) or nnunet "
        "(nnunetv2's scipy export, bit-identical to nnUNetPredictor, much slower for whole-body CTs)",
    )
    parser.add_argument(
        "--no-memory-check", action="store_true", help="skip the memory estimate (not advised)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="segment an input that does not look like a CT in HU (MRI, PET); the warning goes to the report",
    )


class _ProgressPrinter:
    """Progress as protocol lines (for a parent process) or as a tqdm bar on stderr."""

    def __init__(self, lines: bool, description: str) -> None:
        self.lines = lines
        self.stream = sys.stdout  # kept: the inference redirects stdout while nnunetv2 prints
        self.bar = None
        if not lines:
            try:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=1000,
                    desc=description,
                    file=sys.stderr,
                    dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}",
                )
            except ImportError:  # pragma: no cover
                self.bar = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.lines:
            from AnatomyCommonLib.background_jobs import progress_line

            print(progress_line(fraction, message), file=self.stream, flush=True)
        elif self.bar is not None:
            self.bar.n = round(1000 * fraction)
            self.bar.set_postfix_str(message[:60], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _segment(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.image_io import read_volume

    from .exceptions import OutputExistsError, UnsupportedFormatError
    from .inference import DAPSegmenter
    from .input_checks import check_ct
    from .segmentation_export import write_label_output
    from .structure_selection import resolve_structures

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out} already exists; choose another output name or pass --overwrite.")
    structures = resolve_structures(args.structures) if args.structures else None
    if out.name.lower().endswith(".dcm") and not Path(args.ct).is_dir():
        raise UnsupportedFormatError(
            f"{out.name}: DICOM SEG output needs the CT as a DICOM series folder; "
            "choose .seg.nrrd or .nii.gz."
        )
    ct = read_volume(args.ct, name="CT")
    for warning in check_ct(ct, name="CT", force=args.force):  # before any model is loaded
        print(f"warning: {warning}", file=sys.stderr)
    printer = _ProgressPrinter(args.progress_lines, "segment")
    try:
        segmenter = DAPSegmenter(
            args.model,
            device=args.device,
            folds=args.folds,
            checkpoint=args.checkpoint,
            use_mirroring=not args.no_mirroring,
            export_resampling=args.export_resampling,
            check_memory=not args.no_memory_check,
            progress=printer,
        )
        labels = segmenter.segment(
            ct, postprocess=args.postprocess, sex=args.sex, progress=printer, force=args.force
        )
    finally:
        printer.close()
    labels.metadata.pop("dap_postprocess_report", None)
    rib_order = labels.metadata.pop("dap_rib_order_report", None)
    for warning in rib_order.warnings if rib_order is not None else []:
        print(f"rib order: {warning}", file=sys.stderr)
    ct_path = Path(args.ct)
    write_label_output(
        labels,
        out,
        overwrite=args.overwrite,
        structures=structures,
        dicom_source=ct_path if ct_path.is_dir() else None,
    )
    present = np.unique(labels.array)
    meta = labels.metadata
    summary = (
        f"wrote {out}: {int((present > 0).sum())} structures, model {meta['dap_model']}, "
        f"device {meta['dap_device']}, post-processed {'yes' if meta.get('dap_postprocessed') else 'no'}"
    )
    if args.progress_lines:
        print(f"RESULT {out.resolve()}", flush=True)
        print(summary, file=sys.stderr)
    else:
        print(summary)
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .batch import run_batch
    from .structure_selection import resolve_structures

    printer = _ProgressPrinter(args.progress_lines, "batch")
    try:
        report = run_batch(
            args.inputs,
            args.out,
            args.model,
            device=args.device,
            folds=args.folds,
            checkpoint=args.checkpoint,
            postprocess=args.postprocess,
            sex=args.sex,
            use_mirroring=not args.no_mirroring,
            export_resampling=args.export_resampling,
            check_memory=not args.no_memory_check,
            overwrite=args.overwrite,
            statistics=not args.no_statistics,
            progress=printer,
            force=args.force,
            structures=resolve_structures(args.structures) if args.structures else None,
            cluster=cluster_options(args),
        )
    finally:
        printer.close()
    summary = report.to_json()
    print(
        f"{summary['done']} done, {summary['skipped']} skipped (already segmented), "
        f"{summary['failed']} failed"
    )
    for case in report.failed:
        print(f"  failed {case.case_id}: {case.error}")
    if report.statistics_csv:
        print(f"statistics: {report.statistics_csv}")
    elif report.statistics_error:
        print(f"statistics not written: {report.statistics_error}")
    print(f"report: {Path(report.out_dir) / 'batch_report.json'}")
    return 1 if report.failed else 0


def _convert(args: argparse.Namespace) -> int:
    from .model_conversion import convert_v1_to_v2

    printer = _ProgressPrinter(False, "convert")
    try:
        out = convert_v1_to_v2(
            args.v1_folder,
            args.out_folder,
            checkpoint=args.checkpoint,
            folds=args.folds,
            overwrite=args.overwrite,
            progress=printer,
        )
    finally:
        printer.close()
    print(f"converted {args.v1_folder} into the nnU-Net v2 results folder {out}")
    return 0


def add_commands(commands) -> None:
    """Register the sub-commands on an argparse sub-parsers object."""
    from AnatomyCommonLib.weights import add_models_cli

    from .model_weights import weights_manager

    segment = commands.add_parser(
        "segment", help="segment one CT with a DAP Atlas model (nnU-Net v2 predictor)"
    )
    segment.add_argument("ct", help="CT image (.nii.gz, .nrrd, .mha) or DICOM series folder")
    segment.add_argument(
        "out",
        help="label map to write (.nii.gz, .nrrd; .seg.nrrd: Slicer segmentation with names, colours and "
        "SNOMED terminology; .dcm: DICOM SEG, needs a DICOM series input)",
    )
    _add_model_options(segment)
    segment.add_argument(
        "--structures",
        nargs="+",
        metavar="NAME",
        help="only these structures in the output (label names such as liver spleen kidney_left, or systems)",
    )
    segment.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    segment.add_argument("--progress-lines", action="store_true", help="machine-readable progress on stdout")
    segment.set_defaults(handler=_segment)

    batch = commands.add_parser(
        "batch",
        help="segment many CTs (resumable) and write one statistics CSV",
        epilog=exit_codes_epilog("1 at least one case failed (listed; the others are written)"),
    )
    batch.add_argument("inputs", nargs="+", help="CT files and/or folders of CT files")
    batch.add_argument(
        "--out", required=True, help="output folder (<case>_dap.nii.gz, statistics.csv, report)"
    )
    _add_model_options(batch)
    batch.add_argument(
        "--overwrite", action="store_true", help="segment again cases that already have a label map"
    )
    batch.add_argument("--no-statistics", action="store_true", help="do not write statistics.csv")
    batch.add_argument(
        "--structures",
        nargs="+",
        metavar="NAME",
        help="only these structures in the label maps and statistics (names such as liver spleen, systems)",
    )
    batch.add_argument("--progress-lines", action="store_true", help="machine-readable progress on stdout")
    add_cluster_arguments(batch, gpu=True)
    batch.set_defaults(handler=_batch)

    convert = commands.add_parser("convert-model", help="convert an nnU-Net v1 model folder to nnU-Net v2")
    convert.add_argument(
        "v1_folder", help="v1 trainer folder (plans.pkl, fold_*/model_*.model and .model.pkl)"
    )
    convert.add_argument("out_folder", help="new nnU-Net v2 results folder")
    convert.add_argument(
        "--checkpoint", help="v1 checkpoint (default model_final_checkpoint > model_latest > model_best)"
    )
    convert.add_argument("--folds", nargs="+", help="folds to convert (default: all)")
    convert.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    convert.set_defaults(handler=_convert)

    add_models_cli(commands, weights_manager)
