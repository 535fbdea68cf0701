"""A complete CC-Metrics report for a reference and its predictions in one folder.

``write_lesion_report`` writes the per-component table (CSV), the standard-vs-CC summary (CSV),
everything as JSON, the per-component PNG and the Voronoi region map, and returns the two
plain-text tables for the terminal. The main job uses it on the phantom's lesions; it works on any
masks on one grid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batch import format_component_table, format_summary_table
from .evaluation import METRICS, ComparisonResult, compare, rows_to_csv
from .exceptions import OutputExistsError
from .report_png import render_component_report
from .staged_outputs import StagedOutputs
from .voronoi import voronoi_regions


@dataclass
class LesionReport:
    comparison: ComparisonResult
    paths: dict[str, Path]
    summary_table: str
    component_table: str


def write_lesion_report(
    reference,
    predictions: Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    component_notes: Mapping[int, str] | None = None,
    metrics: Sequence[str] = METRICS,
    distance_worst: float | None = None,
    nsd_tolerance: float = 1.0,
    overwrite: bool = False,
    background=None,
    component_names: Mapping[int, str] | None = None,
) -> LesionReport:
    """Evaluate and write ``components.csv``, ``summary.csv``, ``cc_metrics.json``,
    ``components.png`` and ``regions.nii.gz`` into ``out_dir``.

    ``reference`` and ``predictions`` are Volumes (binary masks on one grid);
    ``component_notes`` adds a ``note`` column per reference component id (e.g. what a synthetic
    perturbation did to it); ``component_names`` names components in the PNG's panel titles
    (e.g. the lesion ids of an instance mask); ``background`` (e.g. the CT) is shown under the PNG's outlines.
    """
    from AnatomyCommonLib.image_io import write_volume

    out_dir = Path(out_dir)
    paths = {
        "components": out_dir / "components.csv",
        "summary": out_dir / "summary.csv",
        "json": out_dir / "cc_metrics.json",
        "png": out_dir / "components.png",
        "regions": out_dir / "regions.nii.gz",
    }
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; choose another folder or pass overwrite=True.")
    comparison = compare(
        reference, predictions, metrics=metrics, distance_worst=distance_worst, nsd_tolerance=nsd_tolerance
    )
    rows = comparison.component_rows()
    if component_notes:
        rows = [{**row, "note": component_notes.get(row["component_id"], "")} for row in rows]
    mask = np.asarray(reference.array) != 0
    regions, n = voronoi_regions(mask, reference.spacing_kji_mm, spacing_order="kji")
    dtype = np.uint8 if n < 256 else np.uint16
    with StagedOutputs() as staged:  # all five files, or none
        rows_to_csv(rows, staged.path(paths["components"]))
        rows_to_csv(comparison.summary_rows(), staged.path(paths["summary"]))
        comparison.to_json(staged.path(paths["json"]))
        render_component_report(
            reference,
            predictions,
            comparison,
            staged.path(paths["png"]),
            overwrite=True,
            background=background,
            component_names=component_names,
        )
        write_volume(
            reference.with_array(regions.astype(dtype)), staged.path(paths["regions"]), overwrite=True
        )
    shown = [m for m in ("dice", "nsd", "hd95") if m in metrics]
    return LesionReport(
        comparison,
        paths,
        format_summary_table(comparison.summary_rows(), metrics),
        format_component_table(rows, shown, extra=("note",) if component_notes else ()),
    )
