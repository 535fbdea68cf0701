"""Step 3, rib order from anatomy, not convention: rib k must attach to vertebra T_k.

This project numbers ribs from the top (rib 1 = most superior, as in anatomy); the released
script numbers them from the other end (ascending height on its axis convention: rib 1 = the
most inferior rib), and whether the released V2 model was trained on labels numbered that way
is unknown. This step checks a label map against the anatomy: for every rib wholly in view
whose medial end clearly attaches to a thoracic vertebra that is wholly in view
(:func:`rib_anatomy.attachment_numbers`), the model's number k is compared with the vertebra
T_j it attaches to.

* ``rib_order = "anatomical"``: the ribs attach where their numbers say (k == j); nothing changes.
* ``rib_order = "reversed"``: at least 2 ribs checked, and at least 75 % of them (and more than
  attach as numbered) carry number 13 - j. The model counts from the other end: every rib label
  k becomes 13 - k, on both sides, and the report says so.
* ``rib_order = "undetermined"``: no or mixed evidence (no thoracic vertebra in view, ribs cut by
  the border, single wrong ribs); nothing changes. Single wrong numbers are rib counting's job.

It runs after inference even when the other rules are off (V2), and before rib counting.
"""

from __future__ import annotations

from AnatomyCommonLib.anatomy.label_schema import rib_id
from AnatomyCommonLib.volume import Volume

from .report import StepReport
from .rib_anatomy import (
    RIBS,
    RIBS_PER_SIDE,
    RibComponent,
    attachment_numbers,
    is_rib,
    rib_components,
    rib_number,
    rib_side,
)
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "rib_order"
#: Fraction of the checked ribs that must attach to T_(13-k) to call the numbering reversed.
REVERSED_MAJORITY = 0.75
#: Rib components built at most (the largest); more pieces than this is not a rib cage.
_MAX_COMPONENTS = 512


def judge_rib_order(ribs: list[RibComponent], attachments: dict[int, int], report: StepReport) -> str:
    """ "anatomical", "reversed" or "undetermined" from the model's numbers and the attachments."""
    checked = [(r, attachments[r.index]) for r in ribs if r.index in attachments and r.label in RIBS]
    agree = sum(1 for r, t in checked if rib_number(r.label) == t)
    reversed_ = sum(1 for r, t in checked if rib_number(r.label) == RIBS_PER_SIDE + 1 - t)
    report.details["rib_order_evidence"] = {
        "ribs_checked": len(checked),
        "rib_k_at_T_k": agree,
        "rib_k_at_T_13_minus_k": reversed_,
    }
    if len(checked) >= 2 and reversed_ > agree and reversed_ >= REVERSED_MAJORITY * len(checked):
        return "reversed"
    return "anatomical" if agree and agree >= reversed_ else "undetermined"


def run(context: StepContext) -> StepReport:
    """Check the rib numbering against the vertebrae; renumber k -> 13-k when reversed, in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    region = editor.box(*RIBS)
    if region is None:
        return report.skip("no rib labels in the image")
    crop = editor.array[region]
    rib_mask = is_rib(crop)
    if not rib_mask.any():
        return report.skip("no rib labels in the image")
    found = rib_components(context, region, rib_mask, report, largest=_MAX_COMPONENTS)
    largest = sorted(found.components, key=lambda c: -c.voxels)[: 2 * RIBS_PER_SIDE]
    complete = [c for c in largest if not c.border]
    order = judge_rib_order(complete, attachment_numbers(context, complete, report, found), report)
    report.details["rib_order"] = order
    if order != "reversed":
        report.rules.append(f"rib order checked against the thoracic vertebrae: {order}")
        if found.complete:  # unchanged rib voxels: rib counting reuses the components
            context.rib_components = found
        return report
    evidence = report.details["rib_order_evidence"]
    report.warnings.append(
        f"the rib labels are numbered from the other end ({evidence['rib_k_at_T_13_minus_k']} of "
        f"{evidence['ribs_checked']} ribs labelled k attach to vertebra T(13-k): rib 1 = most inferior, "
        "as the released script numbers them); every rib label k was renumbered 13-k"
    )
    before = crop.copy()
    for label in RIBS:
        mask = before == label
        if mask.any():
            new = rib_id(RIBS_PER_SIDE + 1 - rib_number(label), rib_side(label))
            editor.relabel(region, mask, new, report)
    report.rules.append("rib labels renumbered k -> 13-k (model numbered from the other end)")
    return report


def check_rib_order(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Rib-order check of a DAP label map; returns the (renumbered) label map and the report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
