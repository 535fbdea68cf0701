"""Step 6, sex-based consistency (Algorithm 4): no uterus in a man, no prostate in a woman.

Male patients: uterocervix (20) and uterus (21) are suppressed; female patients: prostate (19)
is suppressed. Suppressed voxels get ``suppressed_label`` (0, background, as released). Unknown
sex: no change.

The patient's sex comes from the DICOM PatientSex tag (0010,0040) when the CT was read from a
DICOM series (:func:`AnatomyCommonLib.image_io.read_volume` puts it in
``Volume.metadata["PatientSex"]``), else from the user's setting; "O", empty or missing means
unknown (:func:`resolve_sex`). The release looked the sex up in an AutoPET table instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from AnatomyCommonLib.volume import Volume

from ..exceptions import InvalidSexError
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "sex_consistency"
MALE_ONLY: tuple[int, ...] = (19,)  # prostate
FEMALE_ONLY: tuple[int, ...] = (20, 21)  # uterocervix, uterus

_ALIASES = {
    "M": "M", "MALE": "M", "MAN": "M",
    "F": "F", "FEMALE": "F", "WOMAN": "F",
    "": None, "O": None, "U": None, "UNKNOWN": None, "AUTO": None, "OTHER": None, "NONE": None,
}  # fmt: skip


def normalise_sex(value: str | None) -> str | None:
    """ "M", "F" or None (unknown) from a user or DICOM value; InvalidSexError otherwise."""
    if value is None:
        return None
    key = str(value).strip().upper()
    if key not in _ALIASES:
        raise InvalidSexError(f"Patient sex must be M, F or auto (unknown), got {value!r}.")
    return _ALIASES[key]


def resolve_sex(user_choice: str | None, metadata: Mapping | None = None) -> tuple[str | None, str]:
    """(sex, source): DICOM PatientSex when it says M or F, else the user's M/F, else unknown.

    ``source`` is "dicom", "user" or "unknown". An explicit user choice that contradicts the
    DICOM tag loses to the tag (the tag belongs to the image); the caller reports the conflict.
    """
    dicom = normalise_sex((metadata or {}).get("PatientSex")) if metadata else None
    if dicom is not None:
        return dicom, "dicom"
    user = normalise_sex(user_choice)
    if user is not None:
        return user, "user"
    return None, "unknown"


def run(context: StepContext) -> StepReport:
    """Suppress reproductive organs of the other sex, in place."""
    report = context.new_report(STEP_NAME)
    if context.sex is None:
        return report.skip("the patient's sex is unknown (no DICOM PatientSex, no user setting)")
    suppressed = FEMALE_ONLY if context.sex == "M" else MALE_ONLY
    editor = context.editor
    for label in suppressed:
        found = editor.mask(label)
        if found is None:
            continue
        mask, region = found
        editor.relabel(region, mask, context.settings.suppressed_label, report)
    report.details["sex"] = context.sex
    report.rules.append(
        f"{'female' if context.sex == 'M' else 'male'} organs suppressed for a {context.sex} patient"
    )
    return report


def enforce_sex_consistency(
    labels: Volume, sex: str | None, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Sex rule on a DAP label map; returns the new label map and the step report."""
    from . import run_single_step

    return run_single_step(run, labels, sex=normalise_sex(sex), settings=settings)
