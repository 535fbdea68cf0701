"""Sex-based consistency: reproductive organs of the other sex are suppressed; sex from DICOM or user."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import changed_pairs, corrupted_and_repaired, phantom

from DAPAtlasLib.exceptions import InvalidSexError
from DAPAtlasLib.postprocess import postprocess, resolve_sex
from DAPAtlasLib.postprocess.sex_consistency import enforce_sex_consistency

STEP = "sex_consistency"


@pytest.mark.parametrize(("sex", "orientation"), [("M", "RAS"), ("M", "LAI"), ("F", "LPS"), ("F", "oblique")])
def test_organ_of_the_other_sex_is_suppressed_and_nothing_else_changes(sex, orientation):
    corrupted, expected, out, _report, _p = corrupted_and_repaired(
        STEP, ["sex_inconsistent"], orientation, sex=sex
    )
    assert np.array_equal(out.array, expected)
    wrong = 21 if sex == "M" else 19
    assert changed_pairs(corrupted.labels.array, out.array) == {(wrong, 0): corrupted.errors[0].voxels}


def test_unknown_sex_changes_nothing_and_says_why():
    corrupted, *_ = corrupted_and_repaired(STEP, ["sex_inconsistent"], "RAS")
    out, report = enforce_sex_consistency(corrupted.labels, None)
    assert not report.applied and "unknown" in report.skipped_reason
    assert np.array_equal(out.array, corrupted.labels.array)


@pytest.mark.parametrize(
    ("user", "metadata", "expected"),
    [
        ("auto", {"PatientSex": "F"}, ("F", "dicom")),
        ("M", {"PatientSex": "F "}, ("F", "dicom")),
        ("M", {"PatientSex": "O"}, ("M", "user")),
        ("female", {}, ("F", "user")),
        ("auto", {"PatientSex": ""}, (None, "unknown")),
        (None, None, (None, "unknown")),
    ],
)
def test_dicom_patient_sex_wins_over_the_user_setting_and_o_or_empty_mean_unknown(user, metadata, expected):
    assert resolve_sex(user, metadata) == expected


def test_invalid_sex_is_a_clear_error():
    with pytest.raises(InvalidSexError, match="M, F or auto"):
        resolve_sex("X")


def test_pipeline_reads_the_dicom_tag_from_the_ct_and_notes_a_conflict_with_the_user():
    p = phantom("RAS", "M")
    ct = p.ct.with_array(p.ct.array, PatientSex="F")
    result = postprocess(p.labels, ct=ct, sex="M", steps=["sex_consistency"])
    assert (result.report.sex, result.report.sex_source) == ("F", "dicom")
    assert "contradicts" in result.report.notes[0]
    assert not (result.labels.array == 19).any()  # the prostate of a "female" patient is suppressed
