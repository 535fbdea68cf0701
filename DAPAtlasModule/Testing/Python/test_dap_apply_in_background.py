"""DAP Apply's heavy half runs in the shared job runner: same result as a direct run, progress, Cancel.

Oracle: ``postprocess`` and ``structure_statistics`` called directly on the same input.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib.background_jobs import CANCELLED, SUCCEEDED, JobWorker
from DAPAtlasLib.mrml_nodes import apply_in_background
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.statistics import structure_statistics


@pytest.fixture
def worker():
    worker = JobWorker("test apply")
    yield worker
    worker.stop(timeout_s=30)


def test_the_background_apply_equals_the_direct_run_and_reports_each_rule(worker):
    p = phantom("LPS", "F")
    ran_on = []

    def work(job):
        ran_on.append(threading.current_thread())
        return apply_in_background(p.labels, p.ct, sex="F", steps=None, metadata={}, job=job)

    job = worker.submit(work, "apply")
    update = job.wait(timeout_s=300)
    assert update.state == SUCCEEDED and ran_on == [worker.thread]
    direct = postprocess(p.labels, ct=p.ct, sex="F")
    np.testing.assert_array_equal(update.result.result.labels.array, direct.labels.array)
    expected = structure_statistics(direct.labels, p.ct)
    assert [(s.name, round(s.volume_ml, 6)) for s in update.result.statistics] == [
        (s.name, round(s.volume_ml, 6)) for s in expected
    ]
    messages = [message for _, message in job.progress_log]
    assert [m for m in messages if m.startswith("rule ")] == [
        f"rule {i + 1}/{len(direct.report.steps)}: {step.step}" for i, step in enumerate(direct.report.steps)
    ]
    assert messages[-1] == "done"


def test_cancel_ends_the_job_between_rules_without_a_result(worker):
    p = phantom("RAS", "M")
    gate = threading.Event()

    def work(job):
        gate.wait(30)  # cancel is requested before the first rule starts
        return apply_in_background(p.labels, p.ct, sex="M", steps=None, metadata={}, job=job)

    job = worker.submit(work, "apply")
    job.cancel()
    gate.set()
    update = job.wait(timeout_s=120)
    assert update.state == CANCELLED and update.result is None
    assert not [m for _, m in job.progress_log if m.startswith("rule ")]
