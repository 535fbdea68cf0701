"""Evaluating files and whole folders: reading with geometry checks, matching cases by name,
per-case and dataset CSVs, and the summary table printed on the terminal."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.cluster import CaseOutcome, ClusterOptions, one_line_reason, run_cases
from AnatomyCommonLib.image_io import SUPPORTED_SUFFIXES, image_suffix, read_labelmap

from .aggregation import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, summarize_dataset
from .evaluation import METRICS, ComparisonResult, compare, json_value, rows_to_csv, write_json
from .exceptions import (
    InputNotFoundError,
    InvalidParameterError,
    NonBinaryMaskError,
    OutputExistsError,
    UnmatchedCaseError,
)
from .staged_outputs import StagedOutputs


def case_name(path: str | os.PathLike) -> str:
    """File name without its image suffix ("case_001.nii.gz" -> "case_001")."""
    name = Path(path).name
    return name[: -len(image_suffix(name))]


def image_files(folder: str | os.PathLike) -> dict[str, Path]:
    """{case name: path} of the image files in ``folder`` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"Folder {folder} does not exist; check the path.")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(SUPPORTED_SUFFIXES):
            files[case_name(path)] = path
    return files


def prediction_names(prediction_paths: Sequence[str | os.PathLike]) -> list[str]:
    """Display names of predictions: the file or folder name, made unique with a counter."""
    names: list[str] = []
    for path in prediction_paths:
        path = Path(path)
        base = (
            case_name(path) if path.is_file() or path.name.lower().endswith(SUPPORTED_SUFFIXES) else path.name
        )
        name, counter = base, 2
        while name in names:
            name, counter = f"{base}_{counter}", counter + 1
        names.append(name)
    return names


def labels_to_evaluate(
    reference, predictions: Mapping[str, Any], label: int | None, all_labels: bool
) -> list[int | None]:
    """[label] when given; every non-zero value when ``all_labels``; [None] for binary masks."""
    if label is not None:
        return [int(label)]
    arrays = [reference.array, *(p.array for p in predictions.values())]
    values = sorted(set().union(*(np.unique(a).tolist() for a in arrays)) - {0})
    if all_labels:
        return [int(v) for v in values]
    if any(v != 1 for v in values):
        raise NonBinaryMaskError(
            f"The masks hold label values {values[:8]}; choose one with --label N or use --all-labels."
        )
    return [None]


def evaluate_volumes(
    reference,
    predictions: Mapping[str, Any],
    *,
    label: int | None = None,
    all_labels: bool = False,
    **options: Any,
) -> list[ComparisonResult]:
    """One :class:`ComparisonResult` per evaluated label (a single one for binary masks)."""
    for name, prediction in predictions.items():
        reference.require_same_grid(prediction, ("reference", name))
    return [
        compare(reference, predictions, label=value, **options)
        for value in labels_to_evaluate(reference, predictions, label, all_labels)
    ]


def read_case(reference_path, prediction_paths: Mapping[str, str | os.PathLike]):
    """Read the reference and predictions as label maps (geometry kept for the checks)."""
    reference = read_labelmap(reference_path, name="reference")
    predictions = {name: read_labelmap(path, name=name) for name, path in prediction_paths.items()}
    return reference, predictions


def match_cases(
    reference_dir, prediction_dirs: Sequence[str | os.PathLike]
) -> list[tuple[str, Path, dict[str, Path]]]:
    """Cases present in the reference folder and every prediction folder, matched by file name.

    Raises UnmatchedCaseError naming what is missing where (a silently skipped case would bias the
    dataset mean).
    """
    references = image_files(reference_dir)
    if not references:
        raise InputNotFoundError(f"No image files ({', '.join(SUPPORTED_SUFFIXES)}) in {reference_dir}.")
    names = prediction_names(prediction_dirs)
    folders = {name: image_files(folder) for name, folder in zip(names, prediction_dirs, strict=True)}
    problems = []
    for name, files in folders.items():
        missing = sorted(set(references) - set(files))
        extra = sorted(set(files) - set(references))
        if missing:
            problems.append(f"{name} lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if extra:
            problems.append(
                f"{name} has no reference for {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}"
            )
    if problems:
        raise UnmatchedCaseError("Cases do not match by file name: " + "; ".join(problems) + ".")
    return [(case, path, {name: folders[name][case] for name in names}) for case, path in references.items()]


def collect_cases(
    reference_dir, prediction_dirs: Sequence[str | os.PathLike]
) -> list[tuple[str, Path | None, dict[str, Path | None]]]:
    """Every case name found in the reference folder or any prediction folder, with its files
    (None where a folder lacks it): folder mode reports such cases as failed instead of stopping."""
    references = image_files(reference_dir)
    if not references:
        raise InputNotFoundError(f"No image files ({', '.join(SUPPORTED_SUFFIXES)}) in {reference_dir}.")
    names = prediction_names(prediction_dirs)
    folders = {name: image_files(folder) for name, folder in zip(names, prediction_dirs, strict=True)}
    cases = list(references)
    for files in folders.values():
        cases.extend(case for case in files if case not in cases)
    return [(case, references.get(case), {name: folders[name].get(case) for name in names}) for case in cases]


#: Outputs of folder mode, relative to ``out_dir``.
DATASET_FILES = ("dataset.csv", "dataset_summary.csv", "dataset.json")


def _case_problem(reference_path, prediction_paths: Mapping[str, Path | None]) -> str | None:
    if reference_path is None:
        have = ", ".join(name for name, path in prediction_paths.items() if path is not None)
        return f"no reference file (only predictions in {have})"
    missing = [name for name, path in prediction_paths.items() if path is None]
    if missing:
        return f"no prediction in {', '.join(missing)}"
    return None


def evaluate_folder(
    reference_dir,
    prediction_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    label: int | None = None,
    all_labels: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    progress: Callable[[Iterable, int, str], Iterable] | bool | None = None,
    cluster: ClusterOptions | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Evaluate every case on its own and write, per finished case, ``cases/<case>.csv`` (per
    component) and ``cases/<case>.json`` (the record ``resume`` reads), and at the end, always,
    ``dataset.csv`` (one row per case and prediction with ``status`` "ok"/"failed" and ``error``),
    ``dataset_summary.csv`` and ``dataset.json`` (per-case and pooled means, SD, median, bootstrap
    95 % CI: :mod:`CCMetricsLib.aggregation`).

    A case that cannot be evaluated (missing file, unreadable, other grid, ...) is a failed row
    naming the reason; the others complete. ``resume=True`` skips cases finished by an earlier run
    with the same settings; without ``resume`` or ``overwrite`` an out folder holding results is
    refused. ``cluster`` runs the cases on Dask workers (one task per case,
    :func:`AnatomyCommonLib.cluster.run_cases`); the results are those of the sequential run.
    Returns the dataset rows.
    """
    out_dir = Path(out_dir)
    cases = collect_cases(reference_dir, prediction_dirs)
    names = prediction_names(prediction_dirs)
    settings = _run_settings(names, label, all_labels, options)
    finished = sorted((out_dir / "cases").glob("*.json")) if (out_dir / "cases").is_dir() else []
    earlier = [out_dir / f for f in DATASET_FILES if (out_dir / f).exists()]
    if (finished or earlier) and not (overwrite or resume):
        raise OutputExistsError(
            f"{out_dir} holds results of an earlier run ({len(finished)} finished cases); pass --resume "
            "to continue it (finished cases are skipped), --overwrite to recompute every case, or "
            "choose another --out-dir."
        )
    records: dict[str, dict[str, Any] | None] = {}
    jobs: dict[str, tuple[Path | None, dict[str, Path | None]]] = {}
    for case, reference_path, prediction_paths in cases:
        records[case] = _read_record(out_dir / "cases" / f"{case}.json", settings) if resume else None
        if records[case] is None:
            jobs[case] = (reference_path, prediction_paths)
    task = _EvaluateCaseTask(str(out_dir), label, all_labels, dict(options), settings)
    outcomes = run_cases(jobs, task, cluster, desc="cases", progress=progress or False)
    dataset_rows: list[dict[str, Any]] = []
    all_components: list[dict[str, Any]] = []
    for case, _, _ in cases:
        outcome = outcomes.get(case)
        record = records[case]
        if outcome is not None and outcome.status == "ok":
            # assembled from the per-case file, as written by whichever process ran the case
            record = _read_record(out_dir / "cases" / f"{case}.json", settings)
            if record is None:
                outcome = CaseOutcome(case, "failed", f"{out_dir / 'cases' / f'{case}.json'} is missing")
        if record is None:
            reason = outcome.error if outcome is not None else "not evaluated"
            dataset_rows.extend(
                {"case": case, "prediction": name, "status": "failed", "error": reason} for name in names
            )
            continue
        dataset_rows.extend({**row, "status": "ok", "error": ""} for row in record["summary"])
        all_components.extend(record["components"])
    summary = summarize_dataset(dataset_rows, all_components, resamples=bootstrap_resamples, seed=seed)
    with StagedOutputs() as staged:
        rows_to_csv(dataset_rows, staged.path(out_dir / "dataset.csv"))
        rows_to_csv(summary, staged.path(out_dir / "dataset_summary.csv"))
        write_json(
            {
                "settings": settings,
                "bootstrap": {"method": "percentile", "resamples": bootstrap_resamples, "seed": seed},
                "cases": dataset_rows,
                "summary": summary,
            },
            staged.path(out_dir / "dataset.json"),
        )
    return dataset_rows


class _EvaluateCaseTask:
    """One case of folder mode, picklable for Dask workers: reads the case's files, writes
    ``cases/<case>.csv`` and ``cases/<case>.json`` atomically, returns "ok" (the dataset table is
    assembled from those files); on failure removes that case's stale files and raises."""

    def __init__(self, out_dir: str, label, all_labels, options, settings) -> None:
        self.out_dir, self.label, self.all_labels = out_dir, label, all_labels
        self.options, self.settings = options, settings

    def __call__(self, case: str, job) -> str:
        reference_path, prediction_paths = job
        out_dir = Path(self.out_dir)
        record_path = out_dir / "cases" / f"{case}.json"
        try:
            problem = _case_problem(reference_path, prediction_paths)
            if problem:
                raise UnmatchedCaseError(problem)
            record = _evaluate_case(
                case, reference_path, prediction_paths, self.label, self.all_labels, self.options
            )
            record["settings"] = self.settings
            with StagedOutputs() as staged:
                rows_to_csv(record["components"], staged.path(out_dir / "cases" / f"{case}.csv"))
                write_json(record, staged.path(record_path))
        except BaseException:
            for stale in (record_path, out_dir / "cases" / f"{case}.csv"):
                stale.unlink(missing_ok=True)
            raise
        return "ok"


def _run_settings(names, label, all_labels, options) -> dict[str, Any]:
    return {
        "predictions": list(names),
        "label": label,
        "all_labels": bool(all_labels),
        **{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in sorted(options.items())},
    }


def _read_record(path: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The finished case's record, if it exists; refuses records of other settings."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # unreadable record: evaluate the case again
    if json_value(record.get("settings")) != json_value(dict(settings)):
        raise InvalidParameterError(
            f"{path} was computed with other settings ({record.get('settings')}); resume with the same "
            "options, or pass --overwrite to recompute every case."
        )
    return {"summary": _restore(record["summary"]), "components": _restore(record["components"])}


def _restore(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """JSON rows back to numbers ("inf"/"nan" strings become floats again)."""
    special = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
    text_keys = {"case", "prediction", "status", "error"}
    return [
        {k: special.get(v, v) if isinstance(v, str) and k not in text_keys else v for k, v in row.items()}
        for row in rows
    ]


def _evaluate_case(case, reference_path, prediction_paths, label, all_labels, options) -> dict[str, Any]:
    reference, predictions = read_case(reference_path, prediction_paths)
    results = evaluate_volumes(reference, predictions, label=label, all_labels=all_labels, **options)
    return {
        "case": case,
        "summary": [{"case": case, **row} for result in results for row in result.summary_rows()],
        "components": [{"case": case, **row} for result in results for row in result.component_rows()],
    }


_one_line = one_line_reason


def dataset_summary(rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """Per prediction (and label): per-case mean, SD, median and bootstrap CI of every score
    (:func:`CCMetricsLib.aggregation.summarize_dataset` without pooled means)."""
    return summarize_dataset(rows, **kwargs)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("nan" if math.isnan(value) else "-inf")
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def format_summary_table(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> str:
    """A plain-text table: one line per row, standard and CC value of each metric side by side."""
    columns: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = []
    if any("case" in r for r in rows):
        columns.append(("case", lambda r: r.get("case")))
    columns.append(("prediction", lambda r: r.get("prediction")))
    if any(r.get("label") is not None for r in rows):
        columns.append(("label", lambda r: r.get("label")))
    columns += [
        ("lesions", lambda r: r.get("n_reference_components")),
        ("found", lambda r: r.get("n_detected")),
        ("missed", lambda r: r.get("n_missed")),
        ("FP", lambda r: r.get("n_false_positive_components")),
    ]
    for metric in metrics:
        if any(f"cc_{metric}" in r for r in rows):
            columns.append((f"{metric}", lambda r, m=metric: r.get(f"standard_{m}")))
            columns.append((f"CC-{metric}", lambda r, m=metric: r.get(f"cc_{m}")))
    columns += [("PQ", lambda r: r.get("pq")), ("LD", lambda r: r.get("lesion_dice"))]
    cells = [[title for title, _ in columns]] + [[_cell(get(r)) for _, get in columns] for r in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(columns))]
    lines = [
        "  ".join(
            text.rjust(width) if i else text.ljust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_component_table(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("dice", "nsd", "hd95"),
    extra: Sequence[str] = (),
) -> str:
    """A plain-text per-component table (id, volume, detection, chosen metrics, extra columns)."""
    columns = ["prediction", "component_id", "volume_ml", "detected", "n_pred_components", *extra, *metrics]
    titles = {"component_id": "id", "volume_ml": "ml", "n_pred_components": "pred comps"}
    cells = [[titles.get(c, c) for c in columns]]
    for row in rows:
        cells.append(
            [
                _cell(row.get(c)) if not isinstance(row.get(c), bool) else ("yes" if row[c] else "NO")
                for c in columns
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "  ".join(t.rjust(w) if i else t.ljust(w) for i, (t, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
