"""Anatomical-rule post-processing of DAP Atlas label maps (the dissertation's Algorithm 3).

``postprocess(labels, ct=..., sex=..., steps=...)`` runs the selected steps in the published
(released) order and returns the repaired label map with a report of what every step changed:

1. ``left_right_split``    paired structures take the side of the mid-sagittal plane they lie on
2. ``spine_fragments``     vertebra pieces join the vertebra they touch
3. ``rib_order``           rib k attaches to T_k: a model numbering from the other end is renumbered
4. ``rib_counting``        ribs numbered 1..12 from the top (partial fields of view too)
5. ``cheeks``              thyroid pieces in the face become cheeks
6. ``body_part_limits``    gonads in the orbit -> eyeballs, bowel in the head -> nasal cavity, ...
7. ``sex_consistency``     no uterus for a male, no prostate for a female patient
8. ``largest_component``   one piece per single structure (released exemptions, heart included)
9. ``skull_from_ct``       the rule-derived skull: bone window above C5, minus other structures

Order: the dissertation's Algorithm 3 lists left-right split, rib counting, non-largest
component suppression, area restriction, sex consistency. The released script, and the issue
this package implements, run suppression *last*: earlier rules relabel fragments (vertebra
pieces, gonads in the orbit, thyroid pieces in the face) that an earlier suppression would have
deleted. We follow the released order; the skull, which only the dissertation has, comes after.

Every step is also a function of its own module (``split_left_right``, ``merge_spine_fragments``,
``check_rib_order``, ``count_ribs``, ``cheeks_from_thyroid``, ``limit_body_parts``,
``enforce_sex_consistency``, ``suppress_non_largest_components``, ``skull_from_ct``) taking and
returning a label map.

Everything works in patient coordinates from the label map's direction matrix (any
orientation, oblique grids included) with physical spacing (volumes in ml, distances in mm).
A missing anchor structure or a partial field of view skips the dependent rule and says so in
the report; only inputs that cannot be processed at all raise (a CT on another grid, values
that are not DAP ids, an unknown step name).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from AnatomyCommonLib.volume import Volume

from ..exceptions import UnknownStepError
from . import (
    body_part_limits,
    cheeks,
    largest_component,
    left_right_split,
    rib_counting,
    rib_order,
    sex_consistency,
    skull_from_ct,
    spine_fragments,
)
from .label_editing import LabelMapEditor
from .report import ComponentRemoval, PostprocessReport, StepReport
from .sex_consistency import normalise_sex, resolve_sex
from .step_context import PostprocessSettings, StepContext, StepFunction

#: Step name -> function, in the order they run.
STEPS: dict[str, StepFunction] = {
    left_right_split.STEP_NAME: left_right_split.run,
    spine_fragments.STEP_NAME: spine_fragments.run,
    rib_order.STEP_NAME: rib_order.run,
    rib_counting.STEP_NAME: rib_counting.run,
    cheeks.STEP_NAME: cheeks.run,
    body_part_limits.STEP_NAME: body_part_limits.run,
    sex_consistency.STEP_NAME: sex_consistency.run,
    largest_component.STEP_NAME: largest_component.run,
    skull_from_ct.STEP_NAME: skull_from_ct.run,
}
STEP_NAMES: tuple[str, ...] = tuple(STEPS)
#: One-line descriptions for GUIs and ``--help``.
STEP_TITLES: dict[str, str] = {
    "left_right_split": "Left-right split of paired structures",
    "spine_fragments": "Merge vertebra fragments",
    "rib_order": "Rib order from the vertebrae (rib k attaches to T_k)",
    "rib_counting": "Rib counting (rib 1 = most superior)",
    "cheeks": "Cheeks from thyroid fragments",
    "body_part_limits": "Body-part limits (eyeballs, nasal cavity, gallbladder, trachea)",
    "sex_consistency": "Sex-based consistency",
    "largest_component": "Keep the largest component of single structures",
    "skull_from_ct": "Skull from the CT (300..3000 HU above C5)",
}

__all__ = [
    "STEPS",
    "STEP_NAMES",
    "STEP_TITLES",
    "ComponentRemoval",
    "PostprocessReport",
    "PostprocessResult",
    "PostprocessSettings",
    "StepReport",
    "normalise_sex",
    "postprocess",
    "resolve_sex",
    "run_single_step",
    "validate_steps",
]


@dataclass
class PostprocessResult:
    """The repaired label map (same grid as the input) and the report of every step."""

    labels: Volume
    report: PostprocessReport


def validate_steps(steps: Iterable[str] | None) -> list[str]:
    """The requested steps in run order; UnknownStepError naming the valid ones otherwise."""
    if steps is None:
        return list(STEP_NAMES)
    requested = [s.strip().replace("-", "_") for s in steps if s.strip()]
    unknown = [s for s in requested if s not in STEPS]
    if unknown:
        import difflib

        hints = {s: difflib.get_close_matches(s, STEP_NAMES, n=1) for s in unknown}
        hint = "; ".join(f"{s!r} (did you mean {h[0]!r}?)" if h else repr(s) for s, h in hints.items())
        raise UnknownStepError(f"Unknown post-processing step {hint}. Steps: {', '.join(STEP_NAMES)}.")
    return [name for name in STEP_NAMES if name in requested]


def _check_ct(ct: Volume | None, labels: Volume, *, reads_hu: bool, force: bool) -> list[str]:
    """Same grid, and (when a rule reads Hounsfield units) a plausible CT: the input check of the
    command line, for Python callers too. Returns the warnings of a forced implausible CT."""
    if ct is None:
        return []
    labels.require_same_grid(ct, ("the label map", "the CT"))
    if not reads_hu:
        return []
    from ..input_checks import check_ct

    return check_ct(ct, name="the CT", force=force)


def _single_threaded_blas():
    """Context keeping BLAS single-threaded while the rules run (a no-op without threadpoolctl).

    The rules' matrix products have an inner dimension of 3 (voxel index -> RAS); a threaded
    BLAS only adds synchronisation to them, which on a busy machine costs more than the rules
    themselves. Same results: the threads split rows, not the sums.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def postprocess(
    labels: Volume,
    *,
    ct: Volume | None = None,
    sex: str | None = None,
    steps: Iterable[str] | None = None,
    settings: PostprocessSettings | None = None,
    metadata: Mapping | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    force: bool = False,
) -> PostprocessResult:
    """Apply the anatomical rules to a DAP Atlas label map (the model output).

    Parameters
    ----------
    labels:
        DAP label map (ids 0..144) with its geometry. Not modified.
    ct:
        The CT on the same grid (needed by ``skull_from_ct``; GeometryMismatchError otherwise).
    sex:
        "M", "F" or "auto"/None. The DICOM PatientSex in ``metadata`` (default: the CT's, then
        the label map's metadata) takes precedence when it says M or F.
    steps:
        Step names to run (default all, see :data:`STEP_NAMES`); always run in the published order.
    settings:
        Thresholds (:class:`PostprocessSettings`).
    progress:
        Called as ``progress(step_name, index, total)`` before each step.
    force:
        Run the skull rule on a ``ct`` that does not look like a CT in Hounsfield units (MRI, PET),
        with the warning in ``report.notes``; without it such a ``ct`` raises ImplausibleCTError
        before any work (the check of ``--force`` on the command line).
    """
    start = time.perf_counter()
    selected = validate_steps(steps)
    input_warnings = _check_ct(ct, labels, reads_hu=skull_from_ct.STEP_NAME in selected, force=force)
    if metadata is None:
        metadata = {**labels.metadata, **(ct.metadata if ct is not None else {})}
    resolved_sex, source = resolve_sex(sex, metadata)
    editor = LabelMapEditor(labels)
    context = StepContext(editor=editor, ct=ct, sex=resolved_sex, settings=settings or PostprocessSettings())
    report = PostprocessReport(
        sex=resolved_sex,
        sex_source=source,
        shape_kji=labels.shape,
        spacing_mm=labels.spacing_mm,
        notes=list(input_warnings),
    )
    user = normalise_sex(sex)
    if source == "dicom" and user is not None and user != resolved_sex:
        report.notes.append(
            f"the DICOM PatientSex ({resolved_sex}) contradicts the chosen sex ({user}); "
            "the DICOM value was used"
        )
    with _single_threaded_blas():
        for index, name in enumerate(selected):
            if progress is not None:
                progress(name, index, len(selected))
            context.forget_heights()
            step_start = time.perf_counter()
            step_report = STEPS[name](context)
            step_report.seconds = time.perf_counter() - step_start
            report.steps.append(step_report)
    report.seconds = time.perf_counter() - start
    return PostprocessResult(labels=editor.to_volume(), report=report)


def run_single_step(
    step: StepFunction,
    labels: Volume,
    *,
    ct: Volume | None = None,
    sex: str | None = None,
    settings: PostprocessSettings | None = None,
    force: bool = False,
) -> tuple[Volume, StepReport]:
    """Run one step function on a copy of ``labels``; returns (new label map, step report).

    A ``ct`` read as Hounsfield units (the skull rule) is checked as in :func:`postprocess`.
    """
    input_warnings = _check_ct(ct, labels, reads_hu=step is skull_from_ct.run, force=force)
    editor = LabelMapEditor(labels)
    context = StepContext(editor=editor, ct=ct, sex=sex, settings=settings or PostprocessSettings())
    start = time.perf_counter()
    with _single_threaded_blas():
        report = step(context)
    report.warnings[:0] = input_warnings
    report.seconds = time.perf_counter() - start
    return editor.to_volume(), report
