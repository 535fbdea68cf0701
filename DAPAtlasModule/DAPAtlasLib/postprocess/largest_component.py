"""Step 7, non-largest component suppression (Algorithm 5): one piece per single organ.

For every label except :data:`EXEMPT_LABELS`, only the largest 6-connected component is kept;
the other components get ``suppressed_label`` (0 as released). The step runs last among the
label rules so that fragments which earlier rules relabel (a vertebra piece, a cheek, an
eyeball made from gonads) are not deleted before those rules see them; the dissertation lists
it third, the release runs it last and so do we.

Exempt, as released: background 0, unknown tissue 1, muscles 2, fat 3, abdominal tissue 4,
mediastinal tissue 5, small bowel 8, duodenum 9, colon 10, gonads 18 (two testes or ovaries),
breasts 22/23, skin 42, rib cartilage 91, heart tissue 107, bronchi 125, vessels 112..119
(iliac arteries and veins, aorta, inferior vena cava, portal/splenic vein, celiac trunk) and
pulmonary artery 127. Also the heart 105, which the release means to exempt but misses through
a name typo. Eyeballs and cheeks *are* suppressed to their largest piece, as released (each
side is one structure).

One multi-label connected-components pass over the non-exempt labels does the work for all of
them at once (cost comparable to a single ``cc3d.connected_components`` call on the volume).
"""

from __future__ import annotations

import cc3d
import numpy as np

from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID
from AnatomyCommonLib.volume import Volume

from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "largest_component"

#: Above this many pieces to remove, one pass over the region beats one small box per piece.
_PER_PIECE_LIMIT = 2000

EXEMPT_LABELS = frozenset(
    {0, 1, 2, 3, 4, 5, 8, 9, 10, 18, 22, 23, 42, 91, 105, 107, 125, 127, *range(112, 120)}
)


def run(context: StepContext) -> StepReport:
    """Keep only the largest component of every non-exempt label, in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    settings = context.settings
    checked = [
        label for label in range(1, MAX_LABEL_ID + 1) if label not in EXEMPT_LABELS and editor.present(label)
    ]
    if not checked:
        return report.skip("no label that must be a single component is present")
    region = editor.box(*checked)
    lut = np.zeros(256, dtype=np.uint8)
    lut[checked] = checked
    work = lut[editor.array[region]]
    pieces, n = cc3d.connected_components(
        work, connectivity=settings.largest_component_connectivity, return_N=True
    )
    if n == 0:
        return report.skip("no label that must be a single component is present")
    piece_label = np.zeros(n + 1, dtype=np.uint8)
    piece_label[pieces.ravel()] = work.ravel()
    del work
    stats = cc3d.statistics(pieces, no_slice_conversion=True)
    sizes = np.asarray(stats["voxel_counts"], dtype=np.int64)
    # largest piece per label: sort by (label, -size) and take the first of each label
    order = np.lexsort((-sizes[1:], piece_label[1:])) + 1
    first_of_label = np.ones(order.size, dtype=bool)
    first_of_label[1:] = piece_label[order[1:]] != piece_label[order[:-1]]
    keep = np.zeros(n + 1, dtype=bool)
    keep[0] = True
    keep[order[first_of_label]] = True
    removed = np.flatnonzero(~keep)
    report.details["labels_checked"] = len(checked)
    report.details["components"] = int(n)
    if removed.size:
        for label in np.unique(piece_label[removed]):
            report.record_removed_components(int(label), sizes[removed[piece_label[removed] == label]])
        if removed.size > _PER_PIECE_LIMIT:  # many specks: one pass over the whole region
            editor.relabel(region, ~keep[pieces], settings.suppressed_label, report)
        else:  # a few pieces: work inside each piece's bounding box only
            boxes = np.asarray(stats["bounding_boxes"])
            for piece in removed:
                k0, k1, j0, j1, i0, i1 = (int(v) for v in boxes[piece])
                box = (slice(k0, k1 + 1), slice(j0, j1 + 1), slice(i0, i1 + 1))
                global_box = tuple(
                    slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
                )
                editor.relabel(global_box, pieces[box] == piece, settings.suppressed_label, report)
    report.rules.append("non-largest components of single structures removed")
    return report


def suppress_non_largest_components(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Largest-component rule on a DAP label map; returns the new label map and the report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
