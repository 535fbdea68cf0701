"""DAP Atlas segmentation as a background process (the runner itself: test_background_jobs.py)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

psutil = pytest.importorskip("psutil")

from AnatomyCommonLib.image_io import read_labelmap, read_volume  # noqa: E402
from DAPAtlasLib.segmentation_job import start_segmentation_job  # noqa: E402


def is_gone(pid: int) -> bool:
    if not psutil.pid_exists(pid):
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting to be reaped
    except psutil.NoSuchProcess:
        return True


def test_a_failing_job_reports_the_commands_one_line_reason(tmp_path):
    job = start_segmentation_job(
        tmp_path / "missing_ct.nii.gz", "dap-atlas-v2", device="cpu", python=sys.executable
    )
    status = job.wait(timeout_s=120)
    assert status.state == "failed" and status.returncode == 2
    assert "no such file" in status.error and "Traceback" not in status.error
    job.cleanup()
    assert not job.work_dir.exists()


@pytest.mark.torch
def test_segmentation_runs_in_a_child_process_and_returns_labels_on_the_input_grid(tmp_path):
    pytest.importorskip("nnunetv2")
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.model_conversion import InferenceSettings
    from DAPAtlasLib.nnunet.random_model import write_random_v2_model

    model = write_random_v2_model(
        tmp_path / "model",
        spacing_mm=(18.0, 18.0, 18.0),
        num_classes=16,
        settings=InferenceSettings("random", False, "LAS"),
    )
    ct = make_phantom("tiny", seed=0, orientation="LPS").ct
    job = start_segmentation_job(ct, model, device="cpu", python=sys.executable)
    deadline = time.monotonic() + 240
    while not (status := job.poll()).finished:  # what the Slicer widget's timer does
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status.state == "succeeded", status.error
    fractions = [fraction for fraction, _ in job.progress_log]
    assert status.fraction == 1.0 and fractions == sorted(fractions)
    assert any(message.startswith("predicting patch") for _, message in job.progress_log)
    assert status.result_path.read_bytes()[:2] != b"\x1f\x8b"  # uncompressed for a fast import
    labels = read_labelmap(status.result_path)
    assert labels.same_grid_as(ct) and labels.array.max() < 16 and len(np.unique(labels.array)) > 1
    job.cleanup()
    assert not job.work_dir.exists()


@pytest.mark.torch
def test_cancelling_a_real_segmentation_leaves_nothing_behind(tmp_path):
    from AnatomyCommonLib.anatomy.phantom import make_phantom

    ct = make_phantom("tiny", seed=0).ct
    job = start_segmentation_job(ct, tmp_path / "no-model-needed-yet", device="cpu", python=sys.executable)
    written = job.work_dir / "ct.nii"
    assert written.read_bytes()[:2] != b"\x1f\x8b"  # uncompressed: no gzip magic
    assert read_volume(written).same_grid_as(ct)
    assert job.cancel() == "cancelled" and is_gone(job.pid)
    assert not job.work_dir.exists()


@pytest.mark.torch
@pytest.mark.mrml
def test_a_finished_job_imports_as_a_dap_segmentation_on_the_ct_node(tmp_path, mrml_scene):
    """What the Slicer widget does when the job ends: read the result, build the DAP segmentation."""
    pytest.importorskip("nnunetv2")
    from AnatomyCommonLib import slicer_bridge
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.model_conversion import InferenceSettings
    from DAPAtlasLib.mrml_nodes import create_dap_segmentation, dap_labels_from_node
    from DAPAtlasLib.nnunet.random_model import write_random_v2_model

    model = write_random_v2_model(
        tmp_path / "model",
        spacing_mm=(18.0, 18.0, 18.0),
        num_classes=16,
        settings=InferenceSettings("random", False, "LAS"),
    )
    ct_node = slicer_bridge.volume_to_node(make_phantom("tiny", seed=0, orientation="LPS").ct, "CT")
    job = start_segmentation_job(
        slicer_bridge.node_to_volume(ct_node), model, device="cpu", python=sys.executable
    )
    status = job.wait(timeout_s=240)
    assert status.state == "succeeded", status.error
    labels = read_labelmap(status.result_path)
    job.cleanup()
    node = create_dap_segmentation(labels, "CT DAP Atlas", reference_volume_node=ct_node)
    names = {
        node.GetSegmentation().GetNthSegment(n).GetName()
        for n in range(node.GetSegmentation().GetNumberOfSegments())
    }
    present = {int(v) for v in np.unique(labels.array)} - {0}
    assert len(names) == len(present) and ("Liver" in names) == (13 in present)
    back = dap_labels_from_node(node, ct_node)
    assert np.array_equal(back.array, labels.array)
    assert not job.work_dir.exists()


def test_the_modules_force_option_reaches_the_segment_command(tmp_path):
    """The module's 'Accept an input that does not look like a CT' check box starts the job with
    --force: without it an MRI-like volume is refused by the input check, with it the command
    gets past that check (and fails later, here on the model that does not exist)."""
    from postprocess_cases import phantom
    from test_dap_input_checks import mri_like

    mri = mri_like(phantom("LPS").ct)
    refused = start_segmentation_job(mri, tmp_path / "no_model", device="cpu", python=sys.executable)
    status = refused.wait(timeout_s=120)
    assert status.state == "failed" and "does not look like a CT" in status.error
    refused.cleanup()
    forced = start_segmentation_job(
        mri, tmp_path / "no_model", device="cpu", python=sys.executable, force=True
    )
    assert "--force" in forced.command
    status = forced.wait(timeout_s=120)
    assert status.state == "failed" and "does not look like a CT" not in status.error
    forced.cleanup()
