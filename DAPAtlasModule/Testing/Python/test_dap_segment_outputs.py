"""segment/batch end to end with a tiny random model: DICOM in -> DICOM SEG, .seg.nrrd, --force."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from dicom_series_fixtures import write_ct_series  # noqa: E402
from test_dap_input_checks import mri_like  # noqa: E402

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.image_io import read_labelmap, read_volume, write_volume  # noqa: E402
from DAPAtlasLib.__main__ import main  # noqa: E402
from DAPAtlasLib.model_conversion import InferenceSettings  # noqa: E402
from DAPAtlasLib.nnunet.random_model import write_random_v2_model  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs_model") / "random"
    return write_random_v2_model(
        folder,
        spacing_mm=(18.0, 18.0, 18.0),
        num_classes=16,
        settings=InferenceSettings("random", False, "LAS"),
    )


@pytest.fixture(scope="module")
def dicom_ct(tmp_path_factory):
    ct = make_phantom("tiny", seed=0, orientation="LPS").ct
    return write_ct_series(ct, tmp_path_factory.mktemp("dicom") / "series")


def test_a_dicom_series_in_gives_a_dicom_seg_that_matches_the_label_map(model_dir, dicom_ct, tmp_path):
    highdicom = pytest.importorskip("highdicom")
    common = ["--model", str(model_dir), "--device", "cpu"]
    assert main(["segment", str(dicom_ct), str(tmp_path / "labels.nii.gz"), *common]) == 0
    assert main(["segment", str(dicom_ct), str(tmp_path / "seg.dcm"), *common]) == 0
    labels = read_labelmap(tmp_path / "labels.nii.gz").array
    seg = highdicom.seg.segread(tmp_path / "seg.dcm")
    present = [int(v) for v in np.unique(labels) if v]
    numbers = {seg.get_segment_description(n).tracking_id: n for n in seg.get_segment_numbers()}
    assert sorted(numbers) == sorted(f"DAP Atlas label {v}" for v in present)
    import pydicom

    sources = sorted(
        (pydicom.dcmread(f) for f in dicom_ct.iterdir()), key=lambda d: d.ImagePositionPatient[2]
    )
    pixels = seg.get_pixels_by_source_instance([d.SOPInstanceUID for d in sources], combine_segments=True)
    for value in present:
        assert np.array_equal(pixels == numbers[f"DAP Atlas label {value}"], labels == value)


def test_seg_nrrd_and_structures_from_segment(model_dir, tmp_path):
    ct = write_volume(make_phantom("tiny", seed=1).ct, tmp_path / "ct.nii.gz")
    common = ["--model", str(model_dir), "--device", "cpu"]
    assert main(["segment", str(ct), str(tmp_path / "all.nii.gz"), *common]) == 0
    labels = read_labelmap(tmp_path / "all.nii.gz").array
    keep = [int(v) for v in np.unique(labels) if v][:2]
    from AnatomyCommonLib.anatomy.label_schema import label_by_id

    chosen = [label_by_id(v).name.replace(" ", "_") for v in keep]
    out = tmp_path / "two.seg.nrrd"
    assert main(["segment", str(ct), str(out), *common, "--structures", *chosen]) == 0
    header = out.read_bytes().split(b"\n\n", 1)[0].decode()
    assert "Segment1_LabelValue" in header and "Segment2_" not in header
    written = read_volume(out).array
    assert np.array_equal(written, np.where(np.isin(labels, keep), labels, 0))


def test_force_segments_a_non_ct_and_batch_records_the_warning(model_dir, tmp_path, capsys):
    cases = tmp_path / "cases"
    write_volume(mri_like(make_phantom("tiny", seed=0).ct), cases / "mri.nii.gz")
    common = ["--model", str(model_dir), "--device", "cpu"]
    assert main(["batch", str(cases), "--out", str(tmp_path / "refused"), *common]) == 1
    assert main(["batch", str(cases), "--out", str(tmp_path / "forced"), *common, "--force"]) == 0
    report = json.loads((tmp_path / "forced" / "batch_report.json").read_text())
    (case,) = report["cases"]
    assert case["status"] == "done" and "--force" in case["warnings"][0]
    capsys.readouterr()
    assert main(["segment", str(cases / "mri.nii.gz"), str(tmp_path / "m.nii.gz"), *common, "--force"]) == 0
    assert "warning:" in capsys.readouterr().err
