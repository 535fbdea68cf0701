"""Issue 16: ``python -m DAPAtlasLib batch`` on a real Dask LocalCluster of 2 worker processes:
the label maps, statistics and per-case statuses of the sequential run, a broken CT isolated and
named, errors that hit every case still stop the batch, one model load per worker process."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")
pytest.importorskip("distributed")

from dap_model_fixtures import write_coarse_random_v2_model  # noqa: E402

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.cluster import ClusterOptions  # noqa: E402
from AnatomyCommonLib.image_io import read_labelmap, read_volume, write_volume  # noqa: E402
from DAPAtlasLib.__main__ import main  # noqa: E402
from DAPAtlasLib.batch import SegmenterSettings, run_batch, worker_segmenter  # noqa: E402
from DAPAtlasLib.exceptions import MissingWeightsError  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_coarse_random_v2_model(tmp_path_factory.mktemp("batch_model") / "random")


@pytest.fixture
def cases(tmp_path):
    folder = tmp_path / "cts"
    write_volume(make_phantom("tiny", seed=0, orientation="LPS").ct, folder / "case_a.nii.gz")
    write_volume(make_phantom("tiny", seed=1, orientation="RAS").ct, folder / "case_b.nrrd")
    write_volume(make_phantom("tiny", seed=2, orientation="LPS").ct, folder / "case_d.nii.gz")
    (folder / "case_c.nii.gz").write_bytes(b"this is not an image")
    return folder


def test_two_workers_segment_what_the_sequential_run_segments(model_dir, cases, tmp_path, capsys):
    sequential = tmp_path / "sequential"
    here = run_batch([cases], sequential, model_dir, device="cpu")
    code = main(
        [
            *("batch", str(cases), "--out", str(tmp_path / "parallel")),
            *("--model", str(model_dir), "--device", "cpu", "--workers", "2"),
        ]
    )
    assert code == 1  # case_c failed
    out = capsys.readouterr().out
    assert "failed case_c: " in out and "could not be read" in out
    there = json.loads((tmp_path / "parallel" / "batch_report.json").read_text())
    assert [(c["case_id"], c["status"]) for c in there["cases"]] == [
        (c.case_id, c.status) for c in here.cases
    ]
    assert there["cases"][2]["error"] == here.cases[2].error
    for case in ("case_a", "case_b", "case_d"):
        mine = read_labelmap(tmp_path / "parallel" / f"{case}_dap.nii.gz")
        reference = read_labelmap(sequential / f"{case}_dap.nii.gz")
        assert mine.same_grid_as(reference) and np.array_equal(mine.array, reference.array)
    assert (tmp_path / "parallel" / "statistics.csv").read_bytes() == (
        sequential / "statistics.csv"
    ).read_bytes()


def test_a_missing_model_still_stops_a_batch_on_workers(cases, tmp_path, monkeypatch):
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(MissingWeightsError, match="models install"):
        run_batch([cases], tmp_path / "out", "dap-atlas-v2", device="cpu", cluster=ClusterOptions(workers=2))


def test_a_worker_loads_the_model_once(model_dir):
    settings = SegmenterSettings(str(model_dir), "cpu", None, None, True, "torch", True)
    first = worker_segmenter(settings)
    assert worker_segmenter(settings) is first
    other = SegmenterSettings(str(model_dir), "cpu", None, None, False, "torch", True)
    assert worker_segmenter(other) is not first


def test_a_case_larger_than_the_workers_memory_limit_is_refused_with_a_message(model_dir, cases):
    from DAPAtlasLib.exceptions import InsufficientMemoryError
    from DAPAtlasLib.inference import DAPSegmenter, plan_reorientation

    ct = make_phantom("tiny", seed=0, orientation="LPS").ct
    segmenter = DAPSegmenter(model_dir, device="cpu")
    reorientation = plan_reorientation(ct, segmenter.voxel_orientation)  # as segment() plans it
    array_shape = reorientation.apply(ct.array).shape
    needed = segmenter.estimate_memory(
        array_shape, reorientation.spacing_kji(ct.spacing_kji_mm)
    ).host_bytes_cpu_run
    segmenter.ram_limit_bytes = needed - 1  # as a worker with this memory limit sets it
    with pytest.raises(InsufficientMemoryError, match="RAM"):
        segmenter.segment(ct)
    segmenter.ram_limit_bytes = needed * 4
    assert segmenter.segment(ct).same_grid_as(ct)


def test_the_header_estimate_is_the_estimate_inference_makes(model_dir, cases):
    from DAPAtlasLib.batch import case_memory_bytes
    from DAPAtlasLib.inference import DAPSegmenter, plan_reorientation

    segmenter = DAPSegmenter(model_dir, device="cpu")
    for name in ("case_a.nii.gz", "case_b.nrrd"):  # LPS and RAS files
        ct = read_volume(cases / name)
        reorientation = plan_reorientation(ct, segmenter.voxel_orientation)  # as segment() plans it
        shape = reorientation.apply(ct.array).shape
        expected = segmenter.estimate_memory(shape, reorientation.spacing_kji(ct.spacing_kji_mm))
        assert case_memory_bytes(segmenter, cases / name) == expected.host_bytes_cpu_run
    assert case_memory_bytes(segmenter, cases / "case_c.nii.gz") is None  # not an image: no estimate


def test_a_ct_too_large_for_the_workers_is_refused_with_a_message_and_the_rest_segmented(
    model_dir, tmp_path, capsys
):
    import nibabel

    folder = tmp_path / "cts"
    write_volume(make_phantom("tiny", seed=0, orientation="LPS").ct, folder / "case_a.nii.gz")
    # a 512 x 512 x 2000 CT: only its header is written, which is all the check reads
    header = nibabel.Nifti1Header()
    header.set_data_shape((512, 512, 2000))
    header.set_data_dtype(np.int16)
    header.set_zooms((0.8, 0.8, 0.5))
    header.set_sform(np.diag([-0.8, -0.8, 0.5, 1.0]), code=1)
    (folder / "case_huge.nii").write_bytes(header.binaryblock + b"\0" * 4)
    code = main(
        [
            *("batch", str(folder), "--out", str(tmp_path / "out"), "--model", str(model_dir)),
            *("--device", "cpu", "--workers", "1", "--worker-memory", "4GB"),
        ]
    )
    assert code == 1
    report = {
        c["case_id"]: c for c in json.loads((tmp_path / "out" / "batch_report.json").read_text())["cases"]
    }
    assert report["case_a"]["status"] == "done"
    assert report["case_huge"]["status"] == "failed"
    assert "GB of memory (estimate" in report["case_huge"]["error"]
    assert "limit of 4.0 GB" in report["case_huge"]["error"]
    assert not (tmp_path / "out" / "case_huge_dap.nii.gz").exists()
    capsys.readouterr()
