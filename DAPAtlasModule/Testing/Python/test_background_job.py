"""Background jobs: progress through a pipe, a Cancel that kills the process tree and leaves no files."""

from __future__ import annotations

import sys
import textwrap
import time

import numpy as np
import pytest

psutil = pytest.importorskip("psutil")

from AnatomyCommonLib.image_io import read_labelmap  # noqa: E402
from DAPAtlasLib.background_job import (  # noqa: E402
    BackgroundJob,
    parse_progress_line,
    progress_line,
    start_segmentation_job,
)

#: A stand-in for a long inference: writes a partial output and a temporary file, starts a
#: grandchild process, then reports progress forever.
SLOW_JOB = textwrap.dedent(
    """
    import subprocess, sys, tempfile, time
    from pathlib import Path

    (Path.cwd() / "labels.nii.gz.partial").write_bytes(b"half-written")
    with tempfile.NamedTemporaryFile(delete=False) as scratch:
        scratch.write(b"scratch")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(f"CHILD {child.pid}", flush=True)
    for step in range(100000):
        print(f"PROGRESS {min(step / 1000, 0.99):.3f} working on step {step}", flush=True)
        time.sleep(0.02)
    """
)


def is_gone(pid: int) -> bool:
    if not psutil.pid_exists(pid):
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting to be reaped
    except psutil.NoSuchProcess:
        return True


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_progress_lines_round_trip():
    assert parse_progress_line(progress_line(0.4237, "predicting\npatch 3")) == (0.4237, "predicting patch 3")
    assert parse_progress_line(progress_line(1.7, "done")) == (1.0, "done")
    assert parse_progress_line("nnU-Net says hello") is None
    assert parse_progress_line("PROGRESS abc x") is None


def test_cancel_kills_the_whole_process_tree_and_removes_the_job_folder(tmp_path):
    script = tmp_path / "slow_job.py"
    script.write_text(SLOW_JOB)
    job = BackgroundJob([str(script)], python=sys.executable, description="test job").start()
    folder = job.work_dir
    wait_for(lambda: job.poll().fraction > 0 and any(line.startswith("CHILD") for line in job.output_lines))
    grandchild = int(next(line for line in job.output_lines if line.startswith("CHILD")).split()[1])
    assert (folder / "labels.nii.gz.partial").exists() and any((folder / "tmp").iterdir())
    status = job.poll()
    assert status.state == "running" and status.message.startswith("working on step")

    status = job.cancel(timeout_s=5)
    assert status.state == "cancelled"
    assert is_gone(job.pid) and is_gone(grandchild)
    assert not folder.exists()


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
    from DAPAtlasLib.model_conversion import InferenceSettings
    from DAPAtlasLib.nnunet.random_model import write_random_v2_model
    from DAPAtlasLib.phantom import make_phantom

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
    labels = read_labelmap(status.result_path)
    assert labels.same_grid_as(ct) and labels.array.max() < 16 and len(np.unique(labels.array)) > 1
    job.cleanup()
    assert not job.work_dir.exists()


@pytest.mark.torch
def test_cancelling_a_real_segmentation_leaves_nothing_behind(tmp_path):
    from DAPAtlasLib.phantom import make_phantom

    ct = make_phantom("tiny", seed=0).ct
    job = start_segmentation_job(ct, tmp_path / "no-model-needed-yet", device="cpu", python=sys.executable)
    assert (job.work_dir / "ct.nii.gz").exists()
    status = job.cancel()
    assert status.state == "cancelled" and is_gone(job.pid)
    assert not job.work_dir.exists()


@pytest.mark.torch
@pytest.mark.mrml
def test_a_finished_job_imports_as_a_dap_segmentation_on_the_ct_node(tmp_path, mrml_scene):
    """What the Slicer widget does when the job ends: read the result, build the DAP segmentation."""
    pytest.importorskip("nnunetv2")
    from AnatomyCommonLib import slicer_bridge
    from DAPAtlasLib.model_conversion import InferenceSettings
    from DAPAtlasLib.mrml_nodes import create_dap_segmentation, dap_labels_from_node
    from DAPAtlasLib.nnunet.random_model import write_random_v2_model
    from DAPAtlasLib.phantom import make_phantom

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
