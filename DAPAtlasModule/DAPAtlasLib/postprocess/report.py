"""What each post-processing step changed: relabelled voxels, removed components, skipped rules.

A :class:`StepReport` belongs to one step (``left_right_split``, ``rib_counting``, ...). It says
whether the step ran (``applied``) or why not (``skipped_reason``), how many voxels moved from
one label to another, which connected components were removed, which of its rules were skipped
(a missing anchor structure, a partial field of view) and any warnings. A
:class:`PostprocessReport` collects the step reports of one run plus what the run was given
(sex and where it came from, grid, steps), and converts to JSON and to readable text.

Volumes are in millilitres from the voxel spacing; label ids are DAP Atlas ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from AnatomyCommonLib.anatomy.label_schema import label_by_id
from AnatomyCommonLib.cli import json_default


def _name(label_id: int) -> str:
    try:
        return label_by_id(label_id).display_name
    except KeyError:
        return f"Label {label_id}"


def _largest_first(item: tuple[tuple[int, int], int]) -> tuple[int, int, int]:
    """Relabel entries by voxels, largest first; equal counts by (from, to) label, so the order
    does not depend on the order in which a step visited the labels."""
    (from_label, to_label), voxels = item
    return -voxels, from_label, to_label


@dataclass
class ComponentRemoval:
    """Connected components of one label that a step removed (set to background)."""

    label: int
    count: int = 0
    total_ml: float = 0.0
    largest_ml: list[float] = field(default_factory=list)  # sizes of the largest removed pieces (at most 10)

    def add(self, sizes_ml: Iterable[float]) -> None:
        sizes = [float(s) for s in sizes_ml]
        self.count += len(sizes)
        self.total_ml += float(sum(sizes))
        self.largest_ml = sorted([*self.largest_ml, *sizes], reverse=True)[:10]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": _name(self.label),
            "components": self.count,
            "total_ml": round(self.total_ml, 4),
            "largest_ml": [round(s, 4) for s in self.largest_ml],
        }


@dataclass
class StepReport:
    """What one post-processing step did to the label map."""

    step: str
    applied: bool = True
    skipped_reason: str | None = None
    voxel_volume_ml: float = 0.0
    relabelled: dict[tuple[int, int], int] = field(default_factory=dict)  # (from, to) -> voxels
    removed: dict[int, ComponentRemoval] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)  # rules that ran, in order
    skipped_rules: list[str] = field(default_factory=list)  # "rule: reason"
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    # ---------------------------------------------------------------- recording
    def skip(self, reason: str) -> StepReport:
        """Mark the whole step as not applied, with the reason (returns self)."""
        self.applied = False
        self.skipped_reason = reason
        return self

    def skip_rule(self, rule: str, reason: str) -> None:
        self.skipped_rules.append(f"{rule}: {reason}")

    def record_relabel(self, from_label: int, to_label: int, voxels: int) -> None:
        if voxels and from_label != to_label:
            key = (int(from_label), int(to_label))
            self.relabelled[key] = self.relabelled.get(key, 0) + int(voxels)

    def record_removed_components(self, label: int, sizes_voxels: Iterable[int]) -> None:
        sizes = [int(s) for s in sizes_voxels if s]
        if not sizes:
            return
        removal = self.removed.setdefault(int(label), ComponentRemoval(int(label)))
        removal.add(s * self.voxel_volume_ml for s in sizes)

    # ---------------------------------------------------------------- summaries
    @property
    def changed_voxels(self) -> int:
        """Voxels whose label this step changed (relabelled or removed)."""
        return sum(self.relabelled.values())

    @property
    def changed(self) -> bool:
        return self.changed_voxels > 0

    def relabelled_from(self, label: int) -> int:
        return sum(v for (a, _), v in self.relabelled.items() if a == label)

    def relabelled_to(self, label: int) -> int:
        return sum(v for (_, b), v in self.relabelled.items() if b == label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "applied": self.applied,
            "skipped_reason": self.skipped_reason,
            "changed_voxels": self.changed_voxels,
            "changed_ml": round(self.changed_voxels * self.voxel_volume_ml, 4),
            "relabelled": [
                {
                    "from": a,
                    "from_name": _name(a),
                    "to": b,
                    "to_name": _name(b),
                    "voxels": n,
                    "ml": round(n * self.voxel_volume_ml, 4),
                }
                for (a, b), n in sorted(self.relabelled.items(), key=_largest_first)
            ],
            "removed_components": [r.to_dict() for r in sorted(self.removed.values(), key=lambda r: r.label)],
            "rules": list(self.rules),
            "skipped_rules": list(self.skipped_rules),
            "warnings": list(self.warnings),
            "details": self.details,
            "seconds": round(self.seconds, 4),
        }

    def to_text(self) -> str:
        lines = []
        if not self.applied:
            lines.append(f"{self.step}: skipped ({self.skipped_reason})")
        else:
            ml = self.changed_voxels * self.voxel_volume_ml
            lines.append(f"{self.step}: {self.changed_voxels} voxels changed ({ml:.2f} ml)")
            for (a, b), n in sorted(self.relabelled.items(), key=_largest_first):
                lines.append(f"  {_name(a)} -> {_name(b)}: {n} voxels ({n * self.voxel_volume_ml:.2f} ml)")
            for removal in sorted(self.removed.values(), key=lambda r: r.label):
                lines.append(
                    f"  removed {removal.count} stray piece(s) of {_name(removal.label)} "
                    f"({removal.total_ml:.2f} ml)"
                )
        lines.extend(f"  rule skipped: {rule}" for rule in self.skipped_rules)
        lines.extend(f"  warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)


@dataclass
class PostprocessReport:
    """All step reports of one post-processing run, in the order the steps ran."""

    steps: list[StepReport] = field(default_factory=list)
    sex: str | None = None  # "M", "F" or None (unknown)
    sex_source: str = "unknown"  # "dicom", "user", "unknown"
    shape_kji: tuple[int, ...] = ()
    spacing_mm: tuple[float, ...] = ()
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def step(self, name: str) -> StepReport:
        """The report of one step (KeyError if it did not run)."""
        for report in self.steps:
            if report.step == name:
                return report
        raise KeyError(f"No step {name!r} in this report; it has {[s.step for s in self.steps]}.")

    @property
    def changed_voxels(self) -> int:
        return sum(s.changed_voxels for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sex": self.sex,
            "sex_source": self.sex_source,
            "shape_kji": list(self.shape_kji),
            "spacing_mm": [round(float(s), 6) for s in self.spacing_mm],
            "changed_voxels": self.changed_voxels,
            "seconds": round(self.seconds, 4),
            "notes": list(self.notes),
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=json_default)

    def to_text(self) -> str:
        sex = {"M": "male", "F": "female"}.get(self.sex or "", "unknown")
        lines = [
            f"DAP Atlas post-processing: {self.changed_voxels} voxels changed; sex {sex} ({self.sex_source})"
        ]
        lines.extend(f"note: {note}" for note in self.notes)
        lines.extend(step.to_text() for step in self.steps)
        return "\n".join(lines)
