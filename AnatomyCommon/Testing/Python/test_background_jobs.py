"""The one background-job runner: thread jobs (one persistent worker) and process jobs (child Python).

Both kinds are driven the way the Slicer widgets drive them: a loop that calls ``poll()`` (the Qt
timer) and acts on what the update reports. Processes are real child processes; cancel must kill
the grandchildren too and leave no files behind.
"""

from __future__ import annotations

import sys
import textwrap
import threading
import time

import pytest

from AnatomyCommonLib.background_jobs import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    JobWorker,
    ProcessJob,
    parse_progress_line,
    progress_line,
    python_executable,
)
from AnatomyCommonLib.errors import CancelledError


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def poll_until_end(job, timeout_s: float = 60.0):
    """What a Qt timer does: poll, collect the updates, stop at the one that ends the job."""
    updates = []
    deadline = time.monotonic() + timeout_s
    while True:
        update = job.poll()
        updates.append(update)
        if update.ended:
            return updates
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def worker():
    worker = JobWorker("test worker")
    yield worker
    worker.stop(timeout_s=10)


# ---------------------------------------------------------------------------- thread jobs
def test_thread_job_reports_progress_in_order_and_delivers_its_result_once(worker):
    def work(job):
        for step in range(50):
            job.report_progress(step / 50, f"step {step}")
        return {"answer": 42}

    job = worker.submit(work, "counting")
    updates = poll_until_end(job)
    seen = [entry for update in updates for entry in update.progress]
    assert seen == [(step / 50, f"step {step}") for step in range(50)]  # every report, once, in order
    final = updates[-1]
    assert final.state == SUCCEEDED and final.fraction == 1.0 and final.result == {"answer": 42}
    assert [u.result for u in updates].count({"answer": 42}) == 1
    later = job.poll()
    assert later.finished and not later.ended and later.result is None and later.progress == ()


def test_thread_jobs_run_one_after_the_other_on_the_same_persistent_thread(worker):
    threads = []
    jobs = [
        worker.submit(lambda job: threads.append(threading.current_thread()), f"job {n}") for n in range(3)
    ]
    for job in jobs:
        assert job.wait(timeout_s=30).state == SUCCEEDED
    assert threads == [worker.thread] * 3 and worker.thread is not threading.main_thread()


def test_an_exception_in_a_thread_job_reaches_poll_with_its_message_and_traceback(worker):
    def fail(job):
        job.report_progress(0.5, "halfway")
        raise ValueError("the CT has no slices along k")

    job = worker.submit(fail, "failing job")
    update = poll_until_end(job)[-1]
    assert update.state == FAILED and update.result is None
    assert update.error == "the CT has no slices along k"
    assert isinstance(update.failure.exception, ValueError) and update.failure.type_name == "ValueError"
    assert "Traceback" in update.failure.traceback and "in fail" in update.failure.traceback
    assert job.poll().failure is None  # delivered once


def test_cancel_stops_a_cooperative_thread_job_and_keeps_what_it_returned(worker):
    started = threading.Event()
    steps_done = []

    def propagate(job):
        for step in range(100000):
            if job.should_cancel():
                return f"stopped after {len(steps_done)} steps"
            steps_done.append(step)
            job.report_progress(min(step / 1000, 0.99), f"slice {step}")
            started.set()
            time.sleep(0.001)
        return "never cancelled"

    job = worker.submit(propagate, "propagation")
    assert started.wait(30)
    assert job.cancel() in (RUNNING, CANCELLED)
    update = poll_until_end(job)[-1]
    count = len(steps_done)
    assert update.state == CANCELLED and update.result == f"stopped after {count} steps"
    time.sleep(0.05)
    assert len(steps_done) == count < 100000  # it really stopped


def test_a_job_that_raises_cancelled_error_ends_cancelled_without_a_result(worker):
    def work(job):
        while not job.should_cancel():
            time.sleep(0.001)
        raise CancelledError("stopped on request")

    job = worker.submit(work, "stoppable")
    job.cancel()
    update = job.wait(timeout_s=30)
    assert update.state == CANCELLED and update.result is None and update.failure is None


def test_cancelling_a_queued_thread_job_means_it_never_runs(worker):
    gate = threading.Event()
    ran = []
    blocker = worker.submit(lambda job: gate.wait(30), "blocker")
    queued = worker.submit(lambda job: ran.append(True), "queued")
    assert queued.cancel() == CANCELLED
    gate.set()
    assert blocker.wait(timeout_s=30).state == SUCCEEDED
    after = worker.submit(lambda job: "next", "next")
    assert after.wait(timeout_s=30).result == "next"  # the worker went past the cancelled job
    assert ran == [] and queued.poll().state == CANCELLED


def test_cancel_after_done_is_harmless(worker):
    job = worker.submit(lambda job: 7, "quick")
    update = poll_until_end(job)[-1]
    assert job.cancel() == SUCCEEDED and job.cancel() == SUCCEEDED
    assert update.result == 7 and job.poll().state == SUCCEEDED and not job.should_cancel()


def test_progress_after_the_end_is_ignored_and_fractions_are_clipped(worker):
    holder = {}

    def work(job):
        holder["job"] = job
        job.report_progress(-3, "before")
        job.report_progress(7, "multi\nline   text")
        return None

    job = worker.submit(work, "clipping")
    updates = poll_until_end(job)
    assert [e for u in updates for e in u.progress] == [(0.0, "before"), (1.0, "multi line text")]
    holder["job"].report_progress(0.3, "too late")
    assert job.poll().progress == () and job.poll().message == "multi line text"


# ---------------------------------------------------------------------------- process jobs
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

#: Reports progress, writes its result into the job folder and names it on a RESULT line.
GOOD_JOB = textwrap.dedent(
    """
    from pathlib import Path

    for step in range(20):
        print(f"PROGRESS {step / 20:.4f} step {step}")
        print(f"log line {step}")
    (Path.cwd() / "out.txt").write_text("done")
    print(f"RESULT {Path.cwd() / 'out.txt'}")
    """
)


def process_job(tmp_path, source: str, **kwargs) -> ProcessJob:
    script = tmp_path / "job_script.py"
    script.write_text(source)
    return ProcessJob([str(script)], python=sys.executable, description="test job", **kwargs).start()


def is_gone(psutil, pid: int) -> bool:
    if not psutil.pid_exists(pid):
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting to be reaped
    except psutil.NoSuchProcess:
        return True


def test_progress_lines_round_trip():
    assert parse_progress_line(progress_line(0.4237, "predicting\npatch 3")) == (0.4237, "predicting patch 3")
    assert parse_progress_line(progress_line(1.7, "done")) == (1.0, "done")
    assert parse_progress_line("nnU-Net says hello") is None
    assert parse_progress_line("PROGRESS abc x") is None


def test_outside_slicer_the_child_runs_this_interpreter():
    assert python_executable() == sys.executable


def test_process_job_reports_progress_in_order_and_its_result_once(tmp_path):
    job = process_job(tmp_path, GOOD_JOB)
    updates = poll_until_end(job)
    seen = [entry for update in updates for entry in update.progress]
    assert seen == [(step / 20, f"step {step}") for step in range(20)]
    final = updates[-1]
    assert final.state == SUCCEEDED and final.returncode == 0 and final.fraction == 1.0
    assert final.result_path == job.work_dir / "out.txt" and final.result_path.read_text() == "done"
    assert job.output_lines == [f"log line {step}" for step in range(20)]
    assert job.poll().result is None and job.cancel() == SUCCEEDED  # delivered once; cancel harmless
    assert final.result_path.exists()  # cancel after the end did not delete the result
    job.cleanup()
    assert not job.work_dir.exists()


def test_cancel_kills_the_whole_process_tree_and_removes_the_job_folder(tmp_path):
    psutil = pytest.importorskip("psutil")
    job = process_job(tmp_path, SLOW_JOB)
    folder = job.work_dir
    wait_for(lambda: job.poll().fraction > 0 and any(line.startswith("CHILD") for line in job.output_lines))
    grandchild = int(next(line for line in job.output_lines if line.startswith("CHILD")).split()[1])
    assert (folder / "labels.nii.gz.partial").exists() and any((folder / "tmp").iterdir())
    update = job.poll()
    assert update.state == RUNNING and update.message.startswith("working on step")

    assert job.cancel() == CANCELLED
    assert is_gone(psutil, job.pid) and is_gone(psutil, grandchild)
    assert not folder.exists()
    final = job.poll()
    assert final.ended and final.state == CANCELLED and final.result is None and final.failure is None
    assert job.cancel() == CANCELLED  # again: harmless


def test_a_child_exception_reaches_poll_with_its_message_and_traceback(tmp_path):
    source = "print('PROGRESS 0.5 loading')\nraise RuntimeError('weights file is truncated')\n"
    job = process_job(tmp_path, source)
    final = poll_until_end(job)[-1]
    assert final.state == FAILED and final.returncode == 1 and final.result is None
    assert "weights file is truncated" in final.error
    assert "Traceback" in final.failure.traceback and "RuntimeError" in final.failure.traceback
    job.cleanup()


def test_a_cli_error_line_becomes_the_one_line_message(tmp_path):
    source = "import sys\nprint('error: no such file: ct.nii.gz', file=sys.stderr)\nsys.exit(2)\n"
    job = process_job(tmp_path, source)
    final = job.wait(timeout_s=60)
    assert final.state == FAILED and final.returncode == 2
    assert final.error == "no such file: ct.nii.gz"
    job.cleanup()


def test_exit_zero_without_the_expected_result_is_a_failure(tmp_path):
    job = process_job(tmp_path, "print('PROGRESS 1 done')\n", result_path=tmp_path / "never_written.nii.gz")
    final = job.wait(timeout_s=60)
    assert final.state == FAILED and "without writing its result" in final.error
    job.cleanup()
