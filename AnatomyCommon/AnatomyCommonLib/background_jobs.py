"""Background work that a GUI polls: progress, cancel, errors and the result, in one interface.

Two kinds of job share the bookkeeping of :class:`BackgroundJob` (progress queue, state,
cancel request, error capture, delivering the result exactly once):

* :class:`ThreadJob`, run by a :class:`JobWorker`: one persistent worker thread per tool. Every
  model run of a tool goes through the same thread because GPU libraries (torch's CUDA context,
  cuDNN autotuning, per-thread allocator caches) keep per-thread state: a fresh thread per run would
  rebuild it. Cancel is cooperative: the job function checks :meth:`BackgroundJob.should_cancel`.
* :class:`ProcessJob`: a child Python process (Slicer's ``PythonSlicer`` inside Slicer) that prints
  ``PROGRESS <fraction> <message>`` lines and finally ``RESULT <path>`` (the pattern of
  SlicerMONAIAuto3DSeg). Cancel kills the whole process tree: inference libraries start worker
  processes of their own, which a plain ``terminate()`` of the child would leave running.

The GUI calls :meth:`BackgroundJob.poll` from a timer on its main thread; it never blocks and returns
a :class:`JobUpdate` with what happened since the previous poll. MRML and Qt are never touched here:
this module runs in plain Python (tests) and inside Slicer alike.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CancelledError

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

PROGRESS_PREFIX = "PROGRESS"
RESULT_PREFIX = "RESULT"


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: a one-line ``message``, the ``traceback`` text and (thread jobs) the exception."""

    message: str
    type_name: str = ""
    traceback: str = ""
    exception: BaseException | None = None


@dataclass(frozen=True)
class JobUpdate:
    """What :meth:`BackgroundJob.poll` saw: the state now plus what happened since the last poll.

    ``progress`` holds the ``(fraction, message)`` reports since the previous poll, in order.
    ``ended`` is True on exactly one update, the first that sees the job finished; only that
    update carries ``result`` (and ``failure``), so a timer that acts on ``ended`` acts once.
    """

    state: str
    fraction: float
    message: str
    progress: tuple[tuple[float, str], ...] = ()
    ended: bool = False
    result: Any = None
    failure: JobFailure | None = None
    returncode: int | None = None

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    @property
    def cancelled(self) -> bool:
        return self.state == CANCELLED

    @property
    def error(self) -> str | None:
        """The failure's one-line message (None unless this update reports a failure)."""
        return None if self.failure is None else self.failure.message

    @property
    def result_path(self) -> Path | None:
        """The result when it is a path (process jobs), else None."""
        return self.result if isinstance(self.result, Path) else None


class BackgroundJob:
    """State shared by every kind of job; subclasses say how the work runs and stops.

    Thread-safe: :meth:`report_progress` and :meth:`_end` may be called from any thread,
    :meth:`poll`, :meth:`cancel` and :meth:`wait` belong to the thread that owns the job (the GUI).
    """

    def __init__(self, description: str = "background job") -> None:
        self.description = description
        self._lock = threading.Lock()
        self._cancel_requested = threading.Event()
        self._pending: list[tuple[float, str]] = []
        self._state = RUNNING
        self._fraction = 0.0
        self._message = "starting"
        self._result: Any = None
        self._failure: JobFailure | None = None
        self._returncode: int | None = None
        self._delivered = False
        #: Every progress report of the job (for logs and tests), newest last.
        self.progress_log: collections.deque[tuple[float, str]] = collections.deque(maxlen=10000)

    # ------------------------------------------------------------------ called by the work
    def report_progress(self, fraction: float, message: str = "") -> None:
        """Record progress (``fraction`` is clipped to 0..1); shown by the next :meth:`poll`."""
        entry = (min(1.0, max(0.0, float(fraction))), " ".join(str(message).split()))
        with self._lock:
            if self._state != RUNNING:
                return
            self._fraction, self._message = entry
            self._pending.append(entry)
            self.progress_log.append(entry)

    def should_cancel(self) -> bool:
        """True once :meth:`cancel` was called: cooperative work stops at its next check."""
        return self._cancel_requested.is_set()

    def _end(
        self,
        state: str,
        *,
        result: Any = None,
        failure: JobFailure | None = None,
        returncode: int | None = None,
    ) -> None:
        with self._lock:
            if self._state != RUNNING:
                return
            self._state = state
            self._result = result
            self._failure = failure
            self._returncode = returncode
            if state == SUCCEEDED:
                self._fraction = 1.0

    # ------------------------------------------------------------------ called by the GUI
    def _collect(self) -> None:
        """Subclass hook: move what the work produced into the job state (never blocks long)."""

    def _stop(self) -> None:
        """Subclass hook: make the work stop after :meth:`cancel` set the request."""

    @property
    def state(self) -> str:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state != RUNNING

    def poll(self) -> JobUpdate:
        """What happened since the last poll (progress, the end with result or failure); never blocks."""
        self._collect()
        with self._lock:
            progress, self._pending = tuple(self._pending), []
            ended = self._state != RUNNING and not self._delivered
            if ended:
                self._delivered = True
            return JobUpdate(
                state=self._state,
                fraction=self._fraction,
                message=self._message,
                progress=progress,
                ended=ended,
                result=self._result if ended else None,
                failure=self._failure if ended else None,
                returncode=self._returncode,
            )

    def cancel(self) -> str:
        """Ask the job to stop; returns the state afterwards. Harmless on a finished job."""
        if self.finished:
            return self._state
        self._cancel_requested.set()
        self._stop()
        return self._state

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.02) -> JobUpdate:
        """Block until the job ends and return the update that ends it (scripts and tests only).

        A GUI calls :meth:`poll` from a timer instead. Progress polled here is not seen again.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            update = self.poll()
            if update.finished:
                return update
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"The {self.description} did not finish within {timeout_s} s.")
            time.sleep(poll_interval_s)


# ---------------------------------------------------------------------------- threads
class ThreadJob(BackgroundJob):
    """``function(job)`` run by a :class:`JobWorker`; ``job`` offers report_progress and should_cancel.

    The function's return value is the result. If it returns after a cancel request the job ends as
    cancelled but the value is still delivered: cooperative work returns what it has done (e.g. the
    slices propagated so far), which the GUI must show. Raising
    :class:`~AnatomyCommonLib.errors.CancelledError` ends it as cancelled without a result; any other
    exception fails the job with its message and traceback.
    """

    def __init__(self, function: Callable[[ThreadJob], Any], description: str = "background job") -> None:
        super().__init__(description)
        self.function = function
        self._started = False

    def _run(self) -> None:
        with self._lock:
            if self._state != RUNNING:  # cancelled while waiting in the queue
                return
            self._started = True
        try:
            result = self.function(self)
        except CancelledError:
            self._end(CANCELLED)
        except Exception as error:  # reported through poll() on the GUI thread
            self._end(FAILED, failure=failure_of(error))
        else:
            self._end(CANCELLED if self.should_cancel() else SUCCEEDED, result=result)

    def _stop(self) -> None:
        with self._lock:
            queued = not self._started
        if queued:
            self._end(CANCELLED)


def failure_of(error: BaseException) -> JobFailure:
    """A :class:`JobFailure` keeping the exception, its message and its formatted traceback."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return JobFailure(str(error) or type(error).__name__, type(error).__name__, text, error)


class JobWorker:
    """One persistent daemon thread that runs submitted :class:`ThreadJob` s one after the other."""

    def __init__(self, name: str = "background worker") -> None:
        self._queue: queue.Queue[ThreadJob | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def submit(self, function: Callable[[ThreadJob], Any], description: str = "background job") -> ThreadJob:
        """Queue ``function(job)`` and return its job (poll it)."""
        job = ThreadJob(function, description)
        self._queue.put(job)
        return job

    def stop(self, timeout_s: float | None = None) -> None:
        """End the thread after the queued jobs (``timeout_s``: wait that long for it)."""
        self._queue.put(None)
        if timeout_s is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job._run()


# ---------------------------------------------------------------------------- processes
def progress_line(fraction: float, message: str) -> str:
    """The line a child process prints to report progress (one line, no newline inside)."""
    text = " ".join(str(message).split())
    return f"{PROGRESS_PREFIX} {min(1.0, max(0.0, float(fraction))):.4f} {text}"


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """``(fraction, message)`` of a progress line, None for any other line."""
    parts = line.strip().split(" ", 2)
    if len(parts) < 2 or parts[0] != PROGRESS_PREFIX:
        return None
    try:
        fraction = float(parts[1])
    except ValueError:
        return None
    return min(1.0, max(0.0, fraction)), parts[2] if len(parts) > 2 else ""


def python_executable() -> str:
    """Python for a child process: Slicer's PythonSlicer inside Slicer, else this interpreter.

    Inside Slicer ``sys.executable`` is the Slicer application itself, which would open a second
    Slicer window instead of running the script.
    """
    slicer = sys.modules.get("slicer")
    app = getattr(slicer, "app", None) if slicer is not None else None
    if app is not None:
        folder = Path(app.applicationDirPath())
        for name in ("PythonSlicer", "PythonSlicer.exe"):
            if (folder / name).is_file():
                return str(folder / name)
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return sys.executable


def pythonpath_with(folders: Sequence[str | Path]) -> str:
    """A PYTHONPATH with ``folders`` first, then the current one (duplicates dropped)."""
    existing = os.environ.get("PYTHONPATH")
    entries = [str(f) for f in folders] + ([existing] if existing else [])
    return os.pathsep.join(dict.fromkeys(entries))


def kill_process_tree(pid: int, timeout_s: float) -> None:
    """Terminate ``pid`` and all its descendants; kill what survives ``timeout_s``."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with Slicer and the extras
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
        return
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    processes = [*parent.children(recursive=True), parent]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout_s)


class ProcessJob(BackgroundJob):
    """A child Python process running ``[python, *args]`` in a private temporary folder.

    ``work_dir`` (created if None) belongs to the job: it is the child's current and temporary
    folder and is deleted by :meth:`cancel` and :meth:`cleanup`. ``result_path`` is what the job is
    expected to produce; a ``RESULT <path>`` line from the child overrides it. The job fails when
    the child exits non-zero or without writing its result; the failure message is the child's last
    ``error: ...`` line (the CLIs' one-line reason), its traceback the end of the child's stderr.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        work_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        python: str | None = None,
        pythonpath: Sequence[str | Path] = (),
        result_path: str | Path | None = None,
        description: str = "background job",
        temp_prefix: str = "anatomy-job-",
    ) -> None:
        super().__init__(description)
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix=temp_prefix))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.command = [python or python_executable(), *[str(a) for a in args]]
        self.env = {**os.environ, **(env or {})}
        if "PYTHONPATH" not in (env or {}):
            self.env["PYTHONPATH"] = pythonpath_with(pythonpath)
        self.env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive when printed, not when a buffer fills
        temp = self.work_dir / "tmp"
        temp.mkdir(exist_ok=True)
        for name in ("TMPDIR", "TEMP", "TMP"):  # whatever the child writes with tempfile stays in the job
            self.env[name] = str(temp)
        self.expected_result = Path(result_path) if result_path is not None else None
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._readers: list[threading.Thread] = []
        self.output_lines: list[str] = []  # stdout lines that were not progress/result (for logs)
        self._killed = False

    def start(self) -> ProcessJob:
        """Start the child process and its output readers; returns the job."""
        kwargs: dict = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # the tree can be killed without touching the GUI process
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        self._process = subprocess.Popen(
            self.command,
            cwd=self.work_dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            **kwargs,
        )
        # Reader threads: a pipe the child fills while nobody reads would block the child.
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._readers:
            thread.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _read_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip("\n"))

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                return
            parsed = parse_progress_line(line)
            if parsed is not None:
                self.report_progress(*parsed)
            elif line.startswith(f"{RESULT_PREFIX} "):
                self.expected_result = Path(line[len(RESULT_PREFIX) + 1 :].strip())
            else:
                self.output_lines.append(line)

    def _collect(self) -> None:
        if self.finished or self._process is None:
            return
        self._drain()
        if self._process.poll() is None:
            return
        self._finish_process()

    def _finish_process(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        for thread in self._readers:  # the process ended: let the readers reach end of file
            thread.join(timeout=5)
        self._drain()
        if self._killed:
            self._end(CANCELLED, returncode=code)
        elif code == 0 and (self.expected_result is None or self.expected_result.exists()):
            self._end(SUCCEEDED, result=self.expected_result, returncode=code)
        else:
            self._end(FAILED, failure=self._failure_of_exit(code), returncode=code)

    def _failure_of_exit(self, code: int) -> JobFailure:
        tail = "\n".join(self._stderr_tail)
        errors = [line[len("error: ") :] for line in self._stderr_tail if line.startswith("error: ")]
        if errors:
            message = errors[-1]
        elif code == 0:
            message = f"The {self.description} finished without writing its result {self.expected_result}."
        else:
            last = "\n".join(list(self._stderr_tail)[-8:])
            message = f"The {self.description} stopped with exit code {code}.\n{last}".strip()
        return JobFailure(message, f"exit code {code}", tail)

    def _stop(self, timeout_s: float = 5.0) -> None:
        if self._process is None:  # never started
            self._end(CANCELLED)
        else:
            if self._process.poll() is None:  # one that ended by itself keeps its own outcome
                self._killed = True
                kill_process_tree(self._process.pid, timeout_s)
            self._finish_process()
        self.cleanup()

    def cleanup(self) -> None:
        """Delete the job's folder (call after reading a finished result)."""
        for attempt in range(5):  # Windows may hold a file briefly after the process ended
            try:
                shutil.rmtree(self.work_dir)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.2 * (attempt + 1))
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> ProcessJob:
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self.cancel()
        else:
            self.cleanup()


__all__ = [
    "CANCELLED",
    "FAILED",
    "RUNNING",
    "SUCCEEDED",
    "BackgroundJob",
    "JobFailure",
    "JobUpdate",
    "JobWorker",
    "ProcessJob",
    "ThreadJob",
    "failure_of",
    "kill_process_tree",
    "parse_progress_line",
    "progress_line",
    "python_executable",
    "pythonpath_with",
]
