"""Batch segmentation: label maps + one statistics CSV, resumable, per-case errors reported."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from dap_model_fixtures import write_coarse_random_v2_model  # noqa: E402

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.image_io import read_labelmap, write_volume  # noqa: E402
from DAPAtlasLib.__main__ import main  # noqa: E402
from DAPAtlasLib.batch import find_cases, run_batch  # noqa: E402
from DAPAtlasLib.exceptions import MissingWeightsError, UnsupportedFormatError  # noqa: E402
from DAPAtlasLib.statistics import structure_statistics  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_coarse_random_v2_model(tmp_path_factory.mktemp("batch_model") / "random")


@pytest.fixture
def cases(tmp_path):
    folder = tmp_path / "cts"
    write_volume(make_phantom("tiny", seed=0, orientation="LPS").ct, folder / "case_a.nii.gz")
    write_volume(make_phantom("tiny", seed=1, orientation="RAS").ct, folder / "case_b.nrrd")
    (folder / "case_c.nii.gz").write_bytes(b"this is not an image")
    return folder


def test_batch_segments_every_case_reports_the_broken_one_and_writes_one_csv(model_dir, cases, tmp_path):
    out = tmp_path / "out"
    report = run_batch([cases], out, model_dir, device="cpu")
    status = {case.case_id: case.status for case in report.cases}
    assert status == {"case_a": "done", "case_b": "done", "case_c": "failed"}
    assert "could not be read" in report.failed[0].error
    for case_id, ct_name in (("case_a", "case_a.nii.gz"), ("case_b", "case_b.nrrd")):
        labels = read_labelmap(out / f"{case_id}_dap.nii.gz")
        from AnatomyCommonLib.image_io import read_volume

        ct = read_volume(cases / ct_name)
        assert labels.same_grid_as(ct)
    with open(out / "statistics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["case"] for row in rows} == {"case_a", "case_b"}
    # the CSV holds what the statistics module computes from each label map and CT
    expected = structure_statistics(
        read_labelmap(out / "case_a_dap.nii.gz"), read_volume(cases / "case_a.nii.gz")
    )
    ours = [row for row in rows if row["case"] == "case_a"]
    assert [int(row["label"]) for row in ours] == [s.label for s in expected]
    assert [float(row["volume_ml"]) for row in ours] == pytest.approx(
        [s.volume_ml for s in expected], abs=1e-3
    )
    saved = json.loads((out / "batch_report.json").read_text())
    assert (saved["done"], saved["skipped"], saved["failed"]) == (2, 0, 1)


def test_a_rerun_skips_finished_cases_and_retries_the_failed_ones(model_dir, cases, tmp_path):
    out = tmp_path / "out"
    run_batch([cases], out, model_dir, device="cpu")
    first = (out / "case_a_dap.nii.gz").stat().st_mtime_ns
    write_volume(make_phantom("tiny", seed=2).ct, cases / "case_c.nii.gz", overwrite=True)  # repaired
    report = run_batch([cases], out, model_dir, device="cpu")
    status = {case.case_id: case.status for case in report.cases}
    assert status == {"case_a": "skipped", "case_b": "skipped", "case_c": "done"}
    assert (out / "case_a_dap.nii.gz").stat().st_mtime_ns == first
    with open(out / "statistics.csv", newline="") as handle:
        assert {row["case"] for row in csv.DictReader(handle)} == {"case_a", "case_b", "case_c"}


def test_a_finished_batch_does_not_even_load_the_model(model_dir, cases, tmp_path):
    out = tmp_path / "out"
    (cases / "case_c.nii.gz").unlink()
    run_batch([cases], out, model_dir, device="cpu")
    report = run_batch([cases], out, tmp_path / "model-deleted-meanwhile", device="cpu")
    assert [case.status for case in report.cases] == ["skipped", "skipped"]


def test_a_missing_model_stops_the_batch_at_once(cases, tmp_path, monkeypatch):
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(MissingWeightsError, match="models install"):
        run_batch([cases / "case_a.nii.gz"], tmp_path / "out", "dap-atlas-v2", device="cpu")


def test_inputs_that_would_write_the_same_output_are_refused(tmp_path):
    ct = make_phantom("tiny", seed=0).ct
    write_volume(ct, tmp_path / "a" / "case.nii.gz")
    write_volume(ct, tmp_path / "b" / "case.nrrd")
    with pytest.raises(UnsupportedFormatError, match="both be called 'case'"):
        find_cases([tmp_path / "a", tmp_path / "b"])


def test_batch_command_exits_non_zero_when_a_case_failed(model_dir, cases, tmp_path, capsys):
    code = main(
        ["batch", str(cases), "--out", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu"]
    )
    output = capsys.readouterr().out
    assert code == 1
    assert "2 done, 0 skipped (already segmented), 1 failed" in output and "failed case_c" in output
    labels = read_labelmap(tmp_path / "out" / "case_b_dap.nii.gz")
    assert labels.array.max() < 16 and np.unique(labels.array).size > 1
