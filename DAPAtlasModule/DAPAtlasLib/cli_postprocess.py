"""``python -m DAPAtlasLib postprocess|stats|labels``: anatomical-rule repair, statistics, label table.

* ``postprocess IN OUT [--ct CT] [--sex M|F|auto] [--steps ...] [--report r.json]``: IN is a
  label map file (OUT a file) or a folder of label maps (OUT a folder, ``--ct`` a folder of CTs
  with the same file names or nnU-Net style ``<case>_0000`` names). A progress bar runs over
  the cases; geometry is kept; existing outputs are refused unless ``--overwrite`` (or, for a
  folder, ``--resume``: keep them, post-process the other cases). A folder runs one case after the
  other, or one task per case on Dask workers (``--workers N`` / ``--scheduler ADDRESS``); a case
  that fails is named with its reason, the others complete, the exit code is 1.
* ``stats LABELS [CT] [--csv out.csv] [--json out.json]``: per-structure statistics of one case
  or of a folder of cases (one CSV with a ``case`` column).
* ``labels [--format csv|json|ctbl|term.json] [--out PATH]``: the label schema as a table, a Slicer
  colour table or a Slicer terminology; ``--write-module-resources`` regenerates the module's files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from AnatomyCommonLib.cli import progress, write_json
from AnatomyCommonLib.cluster import add_cluster_arguments, cluster_options, run_cases
from AnatomyCommonLib.image_io import (
    SUPPORTED_SUFFIXES,
    image_suffix,
    read_labelmap,
    read_volume,
)

from .exceptions import InputNotFoundError, OutputExistsError, UnsupportedFormatError
from .segmentation_export import write_label_output


# ---------------------------------------------------------------------------- cases
def _case_name(path: Path) -> str:
    return path.name[: -len(image_suffix(path))] if path.is_file() else path.name


def _image_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.iterdir()):
        try:
            image_suffix(path)
        except UnsupportedFormatError:
            continue
        if path.is_file() and not path.name.startswith("."):
            files.append(path)
    return files


def _matching_ct(ct_folder: Path, labels_path: Path) -> Path | None:
    """The CT of a case: same file name, or ``<case>_0000<suffix>`` (nnU-Net), any supported suffix."""
    case = _case_name(labels_path)
    for name in (
        labels_path.name,
        *(f"{case}{s}" for s in SUPPORTED_SUFFIXES),
        *(f"{case}_0000{s}" for s in SUPPORTED_SUFFIXES),
    ):
        candidate = ct_folder / name
        if candidate.is_file():
            return candidate
    candidate = ct_folder / case
    return candidate if candidate.is_dir() else None


def _cases(labels: Path, ct: Path | None) -> list[tuple[str, Path, Path | None]]:
    """(case name, label map, CT or None) for a file or a folder of label maps."""
    if not labels.exists():
        raise InputNotFoundError(f"No such label map file or folder: {labels}")
    if labels.is_file():
        if ct is not None and not ct.exists():
            raise InputNotFoundError(f"No such CT file or DICOM folder: {ct}")
        return [(_case_name(labels), labels, ct)]
    files = _image_files(labels)
    if not files:
        raise InputNotFoundError(f"{labels} holds no label maps ({', '.join(SUPPORTED_SUFFIXES)}).")
    if ct is not None and not ct.is_dir():
        raise UnsupportedFormatError(f"{labels} is a folder, so --ct must be a folder of CTs too, not {ct}.")
    cases = []
    for path in files:
        ct_path = _matching_ct(ct, path) if ct is not None else None
        if ct is not None and ct_path is None:
            raise InputNotFoundError(f"No CT for {path.name} in {ct} (same name or <case>_0000 expected).")
        cases.append((_case_name(path), path, ct_path))
    return cases


def _structures(args: argparse.Namespace) -> list[int] | None:
    """Label ids of ``--structures`` (None: all)."""
    if not getattr(args, "structures", None):
        return None
    from .structure_selection import resolve_structures

    return resolve_structures(args.structures)


def _add_structures_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--structures",
        nargs="+",
        metavar="NAME",
        help=f"only these structures in the {what} (label names such as liver spleen kidney_left, "
        "or systems such as ribs vertebrae)",
    )


def _parse_steps(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [step for value in values for step in value.split(",") if step.strip()]


# ---------------------------------------------------------------------------- postprocess
def _postprocess(args: argparse.Namespace) -> int:
    from .postprocess import STEP_NAMES, STEP_TITLES, validate_steps

    if args.list_steps:
        for name in STEP_NAMES:
            print(f"{name:18s} {STEP_TITLES[name]}")
        return 0
    if args.input is None or args.output is None:
        raise UnsupportedFormatError("postprocess needs IN and OUT (or --list-steps).")
    steps = validate_steps(_parse_steps(args.steps))
    structures = _structures(args)
    cases = _cases(Path(args.input), Path(args.ct) if args.ct else None)
    out = Path(args.output)
    batch = Path(args.input).is_dir()
    if batch:
        targets = {case: out / labels.name for case, labels, _ in cases}
    else:
        if not out.name.lower().endswith(".dcm"):  # .dcm: DICOM SEG (segmentation_export)
            image_suffix(out)
        targets = {cases[0][0]: out}
    existing = [str(p) for p in targets.values() if p.exists()]
    resume = batch and getattr(args, "resume", False)
    if existing and not (args.overwrite or resume):
        raise OutputExistsError(
            f"{len(existing)} output file(s) exist already (e.g. {existing[0]}); "
            "pass --overwrite to replace them"
            + (" or --resume to keep them and post-process the other cases." if batch else ".")
        )
    task = _PostprocessCase(steps, args.sex, args.force, args.overwrite, structures)
    if not batch:
        case, labels_path, ct_path = cases[0]
        result = task(case, (str(labels_path), ct_path and str(ct_path), str(targets[case])))
        for warning in result["input_warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        print(result["text"])
        if args.report:
            write_json(_report_data(result), args.report)
        return 0

    # folder: one task per case (here, or on Dask workers); outputs written atomically per case,
    # so with --resume an existing output is a finished case (written whole or not at all)
    jobs = {
        case: (str(labels_path), ct_path and str(ct_path), str(targets[case]))
        for case, labels_path, ct_path in cases
        if not (resume and targets[case].exists())
    }
    if resume and len(jobs) < len(cases):
        print(f"resuming: {len(cases) - len(jobs)} of {len(cases)} cases finished earlier", file=sys.stderr)
    outcomes = run_cases(
        jobs,
        task,
        cluster_options(args),
        desc="post-processing",
        progress=lambda items, total, desc: progress(items, total=total, desc=desc),
    )
    results = {case: outcome.record for case, outcome in outcomes.items() if outcome.status == "ok"}
    failed = {case: outcome.error for case, outcome in outcomes.items() if outcome.status != "ok"}
    for case, result in results.items():
        for warning in result["input_warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        print(result["text"] if args.verbose else f"{case}: {result['changed_voxels']} voxels changed")
    if args.report:
        data = {case: _report_data(result) for case, result in results.items()}
        data.update({case: {"status": "failed", "error": reason} for case, reason in failed.items()})
        write_json(data, args.report)
    if failed:
        listed = "; ".join(f"{case}: {reason}" for case, reason in list(failed.items())[:5])
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        print(f"error: {len(failed)} of {len(cases)} cases failed ({listed}{more})", file=sys.stderr)
        return 1
    return 0


def _report_data(result: dict) -> dict:
    data = dict(result["report"])
    if result["input_warnings"]:
        data["input_warnings"] = result["input_warnings"]
    return data


class _PostprocessCase:
    """Post-process one case, picklable for Dask workers: reads the label map (and CT) from
    ``job = (labels, ct or None, target)``, writes the repaired map atomically to ``target`` and
    returns a small record (report as dict and text, CT warnings), never the image."""

    def __init__(self, steps, sex, force, overwrite, structures) -> None:
        self.steps, self.sex, self.force = steps, sex, force
        self.overwrite, self.structures = overwrite, structures

    def __call__(self, case: str, job) -> dict:
        from .input_checks import check_ct
        from .postprocess import postprocess

        labels_path, ct_path, target = job
        ct_path = Path(ct_path) if ct_path is not None else None
        labels = read_labelmap(Path(labels_path))
        ct = read_volume(ct_path, name=f"CT of {case}") if ct_path is not None else None
        warnings: list[str] = []
        if ct is not None and "skull_from_ct" in self.steps:  # the one rule reading HU: no MRI/PET as HU
            warnings = list(check_ct(ct, name=f"CT of {case}", force=self.force))
        result = postprocess(labels, ct=ct, sex=self.sex, steps=self.steps, force=self.force)
        write_label_output(
            result.labels,
            Path(target),
            overwrite=self.overwrite,
            structures=self.structures,
            dicom_source=ct_path if ct_path is not None and ct_path.is_dir() else None,
        )
        return {
            "report": result.report.to_dict(),
            "text": result.report.to_text(),
            "changed_voxels": result.report.changed_voxels,
            "input_warnings": warnings,
        }


# ---------------------------------------------------------------------------- stats
def _stats(args: argparse.Namespace) -> int:
    import csv

    from .statistics import (
        COLUMNS,
        statistics_rows,
        structure_statistics,
        write_statistics_csv,
        write_statistics_json,
    )

    structures = _structures(args)
    cases = _cases(Path(args.labels), Path(args.ct) if args.ct else None)
    batch = Path(args.labels).is_dir()
    for target in (args.csv, args.json):
        if target and target != "-" and Path(target).exists() and not args.overwrite:
            raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it.")
    all_rows = []
    last = None
    for case, labels_path, ct_path in progress(cases, total=len(cases), desc="statistics", enabled=batch):
        labels = read_labelmap(labels_path)
        ct = read_volume(ct_path, name=f"CT of {case}") if ct_path is not None else None
        last = structure_statistics(labels, ct)
        if structures is not None:
            last = [row for row in last if row.label in structures]
        all_rows.extend({"case": case, **row} for row in statistics_rows(last))
    if not batch and last is not None:
        if args.csv and args.csv != "-":
            write_statistics_csv(last, args.csv, overwrite=args.overwrite)
        if args.json and args.json != "-":
            write_statistics_json(last, args.json, overwrite=args.overwrite)
    elif args.csv and args.csv != "-":
        with Path(args.csv).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["case", *COLUMNS])
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in all_rows)
    if batch and args.json and args.json != "-":
        Path(args.json).write_text(json.dumps({"structures": all_rows}, indent=2) + "\n", encoding="utf-8")
    if args.csv == "-" or (not args.csv and not args.json):
        writer = csv.DictWriter(sys.stdout, fieldnames=["case", *COLUMNS] if batch else list(COLUMNS))
        writer.writeheader()
        for row in all_rows:
            row = row if batch else {k: v for k, v in row.items() if k != "case"}
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    if args.json == "-":
        print(json.dumps({"structures": all_rows}, indent=2))
    return 0


# ---------------------------------------------------------------------------- labels
def _labels(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.anatomy.label_exports import label_table_text

    from .module_resources import write_module_resources

    if args.write_module_resources:
        for file_format, path in write_module_resources().items():
            print(f"{file_format:9s} {path}")
        return 0
    text = label_table_text(args.format)
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        path = Path(args.out)
        if path.exists() and not args.overwrite:
            raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


def add_commands(commands) -> None:
    """Register the sub-commands on an argparse sub-parsers object."""
    from AnatomyCommonLib.anatomy.label_exports import FORMATS

    post = commands.add_parser(
        "postprocess",
        help="repair a DAP Atlas label map with the anatomical rules (file or folder)",
        description="Apply the DAP Atlas anatomical rules (left/right, spine fragments, rib counting, "
        "cheeks, body-part limits, sex, largest component, skull from CT) to a label map or a folder "
        "of label maps.",
    )
    post.add_argument("input", nargs="?", help="label map file (.nii.gz, .nrrd, ...) or folder of label maps")
    post.add_argument(
        "output",
        nargs="?",
        help="output label map file (.nii.gz, .nrrd; .seg.nrrd: Slicer segmentation; .dcm: DICOM SEG, "
        "needs --ct as a DICOM folder), or folder for a folder input",
    )
    post.add_argument("--ct", help="CT file (or folder for a folder input); needed by skull_from_ct")
    post.add_argument(
        "--sex",
        default="auto",
        choices=["M", "F", "auto"],
        help="patient sex when the CT has no DICOM PatientSex (default auto: from DICOM, else unknown)",
    )
    post.add_argument(
        "--steps", nargs="+", help="steps to run (names or comma-separated; default all; see --list-steps)"
    )
    post.add_argument("--report", help="write the report of what each rule changed as JSON to this path")
    post.add_argument("--list-steps", action="store_true", help="list the steps in their run order and exit")
    post.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_structures_option(post, "output label map")
    post.add_argument(
        "--force",
        action="store_true",
        help="use a --ct that does not look like a CT in HU anyway (the warning goes to the report)",
    )
    post.add_argument(
        "--resume",
        action="store_true",
        help="folder input: keep the outputs an earlier run finished and post-process the other cases",
    )
    add_cluster_arguments(post)
    post.set_defaults(handler=_postprocess)

    stats = commands.add_parser(
        "stats",
        help="per-structure voxel count, volume (ml), HU statistics and centroid",
        description="Statistics of every structure of a DAP label map (file or folder).",
    )
    stats.add_argument("labels", help="label map file or folder of label maps")
    stats.add_argument(
        "ct", nargs="?", help="CT file (or folder) on the same grid; without it HU columns stay empty"
    )
    stats.add_argument("--csv", help="write CSV here ('-': stdout; default: stdout when no --json)")
    stats.add_argument("--json", help="write JSON here ('-': stdout)")
    stats.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_structures_option(stats, "statistics")
    stats.set_defaults(handler=_stats)

    labels = commands.add_parser(
        "labels",
        help="the DAP Atlas label table (csv, json, Slicer ctbl or term.json)",
        description="Print or write the DAP Atlas label schema: ids, names, systems, colours, SNOMED codes.",
    )
    labels.add_argument("--format", default="csv", choices=FORMATS, help="output format (default csv)")
    labels.add_argument("--out", help="write to this file instead of stdout")
    labels.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    labels.add_argument(
        "--write-module-resources",
        action="store_true",
        help="regenerate DAPAtlasModule/Resources/DAPAtlas.ctbl and DAPAtlas.term.json",
    )
    labels.set_defaults(handler=_labels)
