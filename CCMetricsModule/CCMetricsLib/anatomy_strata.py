"""Anatomy-stratified CC scores: which structures each lesion touches, and scores per structure/system.

With a DAP Atlas label map of the case (same grid as the reference), every reference component
is tagged with the structures its voxels lie on, ranked by overlap (voxel count, ties by label
id). A component's *primary* structure is the first of that ranking (voxels on background,
label 0, count as "background"); its system comes from :mod:`AnatomyCommonLib.anatomy.label_schema`. The CC
scores are then averaged per structure and per system: with ``assignment="primary"`` every
component counts once (in its primary structure and that structure's system), with ``"any"``
in every structure (and system) it touches, so a lesion on the liver/kidney border counts for
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from AnatomyCommonLib.anatomy import label_schema

from .evaluation import CCMetricsResult, as_mask
from .exceptions import GeometryMismatchError, InvalidParameterError
from .voronoi import label_components

ASSIGNMENTS = ("primary", "any")


@dataclass
class AnatomyStrata:
    """Per-component tags (``components``) and CC scores per structure and per system."""

    components: list[dict[str, Any]]
    structures: list[dict[str, Any]]
    systems: list[dict[str, Any]]
    assignment: str

    def rows(self) -> list[dict[str, Any]]:
        """Structures then systems, one row each, with a ``level`` column (for one CSV)."""
        return [{"level": "structure", **row} for row in self.structures] + [
            {"level": "system", **row} for row in self.systems
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment,
            "components": self.components,
            "structures": self.structures,
            "systems": self.systems,
        }


def tag_components(reference: Any, anatomy: Any, connectivity: int = 26, label: int | None = None):
    """For each reference component (ids as :func:`~CCMetricsLib.evaluate` numbers them): the
    structures it lies on, ranked by overlap. Returns a list of dicts (component_id, voxels,
    structures = [{label_id, name, system, voxels, fraction}], primary_structure, primary_system).
    """
    schema = label_schema
    mask = as_mask(reference, label, "reference")
    atlas = np.asarray(anatomy.array if hasattr(anatomy, "array") else anatomy)
    if atlas.shape != mask.array.shape:
        raise GeometryMismatchError(
            f"The anatomy label map has {atlas.shape} voxels but the reference {mask.array.shape}; "
            "pass the DAP Atlas segmentation of this case (same grid)."
        )
    other_grid = (
        mask.ijk_to_ras is not None
        and hasattr(anatomy, "ijk_to_ras")
        and not np.allclose(np.asarray(anatomy.ijk_to_ras, float), mask.ijk_to_ras, atol=1e-3)
    )
    if other_grid:
        raise GeometryMismatchError(
            "The anatomy label map and the reference have different geometry (origin, spacing or "
            "direction); resample the label map onto the reference grid first."
        )
    if not np.issubdtype(atlas.dtype, np.integer) and not np.all(np.mod(atlas, 1) == 0):
        raise InvalidParameterError("The anatomy label map holds non-integer values; pass a label map.")
    labels, n = label_components(mask.array, connectivity)
    positions = np.flatnonzero(labels)
    components = labels.ravel()[positions].astype(np.int64)
    values = atlas.ravel()[positions].astype(np.int64)
    unknown = sorted({int(v) for v in np.unique(values)} - set(range(schema.MAX_LABEL_ID + 1)))
    if unknown:
        raise InvalidParameterError(
            f"The anatomy label map holds values outside the DAP Atlas schema (0..{schema.MAX_LABEL_ID}): "
            f"{unknown[:5]}; pass a DAP Atlas segmentation."
        )
    width = schema.MAX_LABEL_ID + 1
    counts = np.bincount(components * width + values, minlength=(n + 1) * width).reshape(n + 1, width)
    rows = []
    for component in range(1, n + 1):
        row_counts = counts[component]
        total = int(row_counts.sum())
        touched = np.flatnonzero(row_counts)
        ranked = sorted(touched, key=lambda value: (-row_counts[value], value))
        structures = []
        for value in ranked:
            entry = schema.label_by_id(int(value))
            structures.append(
                {
                    "label_id": int(value),
                    "name": entry.name,
                    "system": entry.system,
                    "voxels": int(row_counts[value]),
                    "fraction": float(row_counts[value] / total),
                }
            )
        rows.append(
            {
                "component_id": component,
                "voxels": total,
                "structures": structures,
                "primary_structure": structures[0]["name"],
                "primary_system": structures[0]["system"],
            }
        )
    return rows


def _stratum_row(key: str, value: str, members: list[dict[str, Any]], metrics: tuple[str, ...]) -> dict:
    row: dict[str, Any] = {
        key: value,
        "n_components": len(members),
        "n_detected": int(sum(bool(m["detected"]) for m in members)),
    }
    row["n_missed"] = row["n_components"] - row["n_detected"]
    for metric in metrics:
        row[f"cc_{metric}"] = float(np.mean([m[metric] for m in members]))
    return row


def anatomy_strata(
    result: CCMetricsResult,
    reference: Any,
    anatomy: Any,
    *,
    assignment: str = "primary",
    label: int | None = None,
) -> AnatomyStrata:
    """CC scores of ``result`` (one prediction, from :func:`~CCMetricsLib.evaluate`) per DAP Atlas
    structure and per system, from the ``anatomy`` label map of the case (array or Volume on the
    reference grid). ``assignment``: "primary" (each component once) or "any" (every structure it
    touches). Strata are sorted by name; systems use the schema's system names.
    """
    if assignment not in ASSIGNMENTS:
        raise InvalidParameterError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}.")
    label = label if label is not None else result.settings.get("label")
    tags = tag_components(reference, anatomy, result.settings["connectivity"], label)
    if len(tags) != len(result.per_component):
        raise InvalidParameterError(
            f"The reference has {len(tags)} components but the result {len(result.per_component)}; "
            "pass the reference the result was computed from."
        )
    metrics = result.metrics
    by_structure: dict[str, list[dict[str, Any]]] = {}
    by_system: dict[str, list[dict[str, Any]]] = {}
    components = []
    for tag, scores in zip(tags, result.per_component, strict=True):
        structures = [tag["structures"][0]] if assignment == "primary" else tag["structures"]
        for name in dict.fromkeys(s["name"] for s in structures):
            by_structure.setdefault(name, []).append(scores)
        for system in dict.fromkeys(s["system"] for s in structures):
            by_system.setdefault(system, []).append(scores)
        components.append(
            {
                **tag,
                "detected": bool(scores["detected"]),
                **{metric: scores[metric] for metric in metrics},
            }
        )
    schema = label_schema
    structure_rows = []
    for name in sorted(by_structure):
        row = _stratum_row("structure", name, by_structure[name], metrics)
        entry = schema.label_by_name(name)
        row = {"structure": name, "label_id": entry.id, "system": entry.system, **row}
        structure_rows.append(row)
    system_rows = [_stratum_row("system", system, by_system[system], metrics) for system in sorted(by_system)]
    return AnatomyStrata(components, structure_rows, system_rows, assignment)


def format_strata_table(strata: AnatomyStrata, metrics: tuple[str, ...] = ("dice", "nsd", "hd95")) -> str:
    """A plain-text table of the per-system and per-structure CC scores."""
    shown = [m for m in metrics if strata.systems and f"cc_{m}" in strata.systems[0]]
    lines = [f"{'stratum':34s} {'n':>4s} {'missed':>6s} " + " ".join(f"{'CC-' + m:>9s}" for m in shown)]
    for level, rows, key in (
        ("system", strata.systems, "system"),
        ("structure", strata.structures, "structure"),
    ):
        for row in rows:
            values = " ".join(f"{row[f'cc_{m}']:9.3f}" for m in shown)
            lines.append(
                f"{level + ': ' + row[key]:34s} {row['n_components']:4d} {row['n_missed']:6d} {values}"
            )
    return "\n".join(lines)
