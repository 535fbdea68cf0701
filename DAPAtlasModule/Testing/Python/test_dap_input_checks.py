"""Input checks before any work: MRI- or PET-like volumes are refused as CT unless forced."""

from __future__ import annotations

import json

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.image_io import read_volume, write_volume
from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.__main__ import main
from DAPAtlasLib.exceptions import ImplausibleCTError
from DAPAtlasLib.input_checks import check_ct


def mri_like(ct):
    """A T1-weighted-looking volume built from the phantom's tissues (not from HU arithmetic):
    dark background with Rician-like noise, bright fat, grey soft tissue, dark cortical bone."""
    rng = np.random.default_rng(1)
    hu = ct.array.astype(np.float32)
    mri = np.abs(rng.normal(0, 12, hu.shape))  # background noise around 0
    mri[(hu > -150) & (hu <= -50)] = 1100  # fat
    mri[(hu > -50) & (hu <= 200)] = 550 + rng.normal(0, 30, ((hu > -50) & (hu <= 200)).sum())
    mri[hu > 200] = 1400  # marrow-rich bone (bright on T1), which HU bone thresholds would catch
    return ct.with_array(mri.astype(np.int16))


def pet_like(ct):
    """SUV values: 0 outside the body, ~1 in soft tissue, a few hot spots of 8..15."""
    rng = np.random.default_rng(2)
    hu = ct.array.astype(np.float32)
    suv = np.where(hu > -500, 1.0 + rng.normal(0, 0.2, hu.shape), np.abs(rng.normal(0, 0.02, hu.shape)))
    suv[(hu > 200)] = 0.6
    suv.reshape(-1)[::997] = 12.0
    return ct.with_array(suv.astype(np.float32))


def test_the_phantom_ct_and_a_ct_with_padding_outside_the_reconstruction_circle_pass():
    ct = phantom("LPS").ct
    assert check_ct(ct) == []
    padded = ct.array.copy()
    padded[:, :5, :] = -3024  # outside the scanner's circle
    assert check_ct(ct.with_array(padded)) == []


@pytest.mark.parametrize("make", [mri_like, pet_like], ids=["mri", "pet"])
def test_mri_and_pet_like_volumes_are_refused_with_a_typed_error(make):
    with pytest.raises(ImplausibleCTError, match=r"does not look like a CT.*--force"):
        check_ct(make(phantom("LPS").ct), name="input")


def test_force_turns_the_refusal_into_a_warning():
    warnings = check_ct(mri_like(phantom("LPS").ct), force=True)
    assert len(warnings) == 1 and "--force" in warnings[0] and "air" in warnings[0]


def test_raw_stored_values_without_the_rescale_intercept_are_refused():
    ct = phantom("RAS").ct
    raw = (ct.array.astype(np.int32) + 1024).astype(np.uint16)  # DICOM pixel data before rescaling
    with pytest.raises(ImplausibleCTError):
        check_ct(ct.with_array(raw))


def test_a_tiny_volume_is_refused():
    with pytest.raises(ImplausibleCTError, match="voxels"):
        check_ct(Volume.from_geometry(np.full((3, 50, 50), -1000, dtype=np.int16)))


@pytest.fixture()
def mri_case(tmp_path):
    p = phantom("LPS", "M")
    labels = write_volume(p.labels, tmp_path / "labels.nii.gz")
    mri = write_volume(mri_like(p.ct), tmp_path / "mri.nii.gz")
    return labels, mri, p


def test_postprocess_refuses_an_mri_as_ct_before_the_skull_rule_and_writes_nothing(
    mri_case, tmp_path, capsys
):
    labels, mri, p = mri_case
    # what the skull rule would do with it: MRI voxels above C5 read as 300..3000 HU become skull
    skull = label_id("skull")
    out = tmp_path / "out.nii.gz"
    code = main(["postprocess", str(labels), str(out), "--ct", str(mri), "--steps", "skull_from_ct"])
    assert code == 2
    assert "does not look like a CT" in capsys.readouterr().err
    assert not out.exists()
    # forced: processed, and the warning is in the report
    report = tmp_path / "report.json"
    code = main(
        ["postprocess", str(labels), str(out), "--ct", str(mri), "--steps", "skull_from_ct", "--force",
         "--report", str(report)]
    )  # fmt: skip
    assert code == 0 and out.exists()
    data = json.loads(report.read_text())
    assert "--force" in data["input_warnings"][0]
    assert (read_volume(out).array == skull).sum() >= (p.labels.array == skull).sum()


def test_postprocess_without_the_skull_rule_does_not_read_hu_and_accepts_the_volume(mri_case, tmp_path):
    labels, mri, _ = mri_case
    out = tmp_path / "lr.nii.gz"
    assert main(["postprocess", str(labels), str(out), "--ct", str(mri), "--steps", "left_right_split"]) == 0


def test_segment_refuses_an_mri_before_looking_for_the_model(mri_case, tmp_path, capsys):
    _, mri, _ = mri_case
    out = tmp_path / "seg.nii.gz"
    code = main(["segment", str(mri), str(out), "--model", str(tmp_path / "no_such_model")])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not look like a CT" in err and "model" not in err.split("CT in Hounsfield")[0]
    assert not out.exists()


def test_segment_refuses_a_truncated_ct(tmp_path, capsys):
    path = write_volume(phantom("RAS").ct, tmp_path / "ct.nii.gz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code = main(["segment", str(path), str(tmp_path / "seg.nii.gz"), "--model", str(tmp_path / "none")])
    assert code == 2
    assert "truncated" in capsys.readouterr().err


def test_batch_records_a_non_ct_case_as_failed_and_goes_on(tmp_path):
    from DAPAtlasLib.batch import run_batch

    cases = tmp_path / "cases"
    cases.mkdir()
    write_volume(mri_like(phantom("LPS").ct), cases / "mri.nii.gz")
    report = run_batch([cases], tmp_path / "out", model=str(tmp_path / "no_model"), statistics=False)
    (case,) = report.cases
    assert case.status == "failed" and "ImplausibleCTError" in case.error


def test_postprocess_called_from_python_refuses_an_mri_as_ct_unless_forced():
    from DAPAtlasLib.postprocess import postprocess
    from DAPAtlasLib.postprocess.skull_from_ct import skull_from_ct

    p = phantom("LPS")
    mri = mri_like(p.ct)
    with pytest.raises(ImplausibleCTError, match="force"):
        postprocess(p.labels, ct=mri)
    with pytest.raises(ImplausibleCTError, match="force"):
        skull_from_ct(p.labels, mri)
    forced = postprocess(p.labels, ct=mri, force=True)
    assert any("does not look like a CT" in note and "--force" in note for note in forced.report.notes)
    assert "does not look like a CT" in forced.report.to_text()
    _, step_report = skull_from_ct(p.labels, mri, force=True)
    assert any("does not look like a CT" in w for w in step_report.warnings)
    # the CT of a run without the skull rule is never read as HU: accepted, nothing to warn about
    unread = postprocess(p.labels, ct=mri, steps=["left_right_split"])
    assert unread.report.notes == []
    # a real CT passes without a note
    assert postprocess(p.labels, ct=p.ct, steps=["skull_from_ct"]).report.notes == []


@pytest.mark.parametrize("kind", ["normal", "integers", "spikes", "exponential", "sorted"])
def test_the_99_9th_percentile_is_numpys_bit_for_bit(kind):
    from DAPAtlasLib import input_checks

    rng = np.random.default_rng(["normal", "integers", "spikes", "exponential", "sorted"].index(kind))
    for n in (5, 99_999, 100_000, 250_001, 1_200_000):
        if kind == "normal":
            values = rng.normal(0, 500, n).astype(np.float32)
        elif kind == "integers":
            values = rng.integers(-1000, 3000, n).astype(np.float32)
        elif kind == "spikes":  # a constant body with a few metal voxels
            values = np.full(n, 5.0, dtype=np.float32)
            values[rng.integers(0, n, 10)] = 9000.0
        elif kind == "exponential":
            values = rng.exponential(100.0, n)
        else:
            values = np.sort(rng.integers(-1100, 40, n)).astype(np.float32)
        assert input_checks._percentile_999(values) == float(np.percentile(values, 99.9)), n
