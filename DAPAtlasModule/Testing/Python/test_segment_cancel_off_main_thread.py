"""The Segment Cancel path of the widget: the process job is cancelled from a helper thread.

The widget hands the job to a thread and forgets it, so the button returns at once; the child
process that ignores SIGTERM (a busy inference library can) must still be gone afterwards, with its
folder. Oracle: psutil's view of the process, and the file system.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

psutil = pytest.importorskip("psutil")

from AnatomyCommonLib.background_jobs import ProcessJob  # noqa: E402

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('PROGRESS 0.1 started', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_cancel_on_a_helper_thread_kills_the_tree_and_removes_the_folder():
    job = ProcessJob(["-c", STUBBORN], python=sys.executable, description="stubborn").start()
    deadline = time.monotonic() + 60
    while not any("started" in message for _, message in job.progress_log):
        job.poll()
        assert job.state == "running" and time.monotonic() < deadline
        time.sleep(0.02)
    pid, folder = job.pid, job.work_dir
    helper = threading.Thread(target=job.cancel, daemon=True)
    helper.start()  # what the widget's Cancel does; it does not join
    helper.join(timeout=60)
    assert not helper.is_alive()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists()
    assert job.state == "cancelled"
