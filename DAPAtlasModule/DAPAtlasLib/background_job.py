"""Long inference in a separate process that a GUI polls: progress, result, a Cancel that really stops.

The pattern of lassoan's SlicerMONAIAuto3DSeg: the work runs as ``python -m DAPAtlasLib segment
... --progress-lines`` in a child process (Slicer's ``PythonSlicer`` inside Slicer,
``sys.executable`` outside), which prints ``PROGRESS <fraction> <message>`` lines and finally
``RESULT <path>``. A reader thread moves stdout lines into a queue; the GUI calls :meth:`poll`
from a timer on its main thread, so it never blocks. :meth:`BackgroundJob.cancel` kills the
whole process tree (psutil) and deletes the job's temporary folder; outputs are written inside
that folder through a temporary file and a rename, so a cancelled or failed job leaves nothing
behind, in the folder or in the scene (nodes are created only from a finished result).

No Qt here: the module is used by the Slicer widget and by tests in plain Python.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from AnatomyCommonLib.volume import Volume

PROGRESS_PREFIX = "PROGRESS"
RESULT_PREFIX = "RESULT"


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
    """Python for the child process: Slicer's PythonSlicer inside Slicer, else this interpreter."""
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


def lib_pythonpath() -> str:
    """PYTHONPATH that makes DAPAtlasLib and AnatomyCommonLib importable in the child process."""
    import AnatomyCommonLib

    from . import __file__ as lib_init

    folders = [
        str(Path(lib_init).resolve().parents[1]),
        str(Path(AnatomyCommonLib.__file__).resolve().parents[1]),
    ]
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join(dict.fromkeys([*folders, *([existing] if existing else [])]))


@dataclass
class JobStatus:
    """A snapshot of a job for the GUI."""

    state: str  # "running", "succeeded", "failed", "cancelled"
    fraction: float
    message: str
    result_path: Path | None = None
    error: str | None = None
    returncode: int | None = None

    @property
    def finished(self) -> bool:
        return self.state != "running"


def _kill_process_tree(pid: int, timeout_s: float) -> None:
    """Terminate ``pid`` and all its descendants; kill what survives ``timeout_s``."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the [dap] extra
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


class BackgroundJob:
    """A child Python process running ``args`` (``[python, *args]``) with a private temporary folder.

    ``work_dir`` (created if None) belongs to the job: it is the child's current and temporary
    folder and is deleted by :meth:`cancel` and :meth:`cleanup`. ``result_path`` is what the job
    is expected to produce; a ``RESULT <path>`` line from the child overrides it.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        work_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        python: str | None = None,
        result_path: str | Path | None = None,
        description: str = "background job",
    ) -> None:
        self.work_dir = (
            Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="dap-atlas-job-"))
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.command = [python or python_executable(), *[str(a) for a in args]]
        self.env = {**os.environ, **(env or {})}
        if "PYTHONPATH" not in (env or {}):
            self.env["PYTHONPATH"] = lib_pythonpath()  # ours first, then the caller's
        self.env["PYTHONUNBUFFERED"] = "1"
        temp = self.work_dir / "tmp"
        temp.mkdir(exist_ok=True)
        for name in ("TMPDIR", "TEMP", "TMP"):  # whatever the child writes with tempfile stays in the job
            self.env[name] = str(temp)
        self.description = description
        self.expected_result = Path(result_path) if result_path is not None else None
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._status = JobStatus("running", 0.0, "starting")
        self._cancelled = False
        self._stdout_closed = False
        self.output_lines: list[str] = []  # stdout lines that were not progress/result (for logs)
        self.progress_log: collections.deque[tuple[float, str]] = collections.deque(maxlen=10000)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> BackgroundJob:
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
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
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
                self._stdout_closed = True
                return
            parsed = parse_progress_line(line)
            if parsed is not None:
                self._status.fraction, self._status.message = parsed
                self.progress_log.append(parsed)
            elif line.startswith(f"{RESULT_PREFIX} "):
                self.expected_result = Path(line[len(RESULT_PREFIX) + 1 :].strip())
            else:
                self.output_lines.append(line)

    def poll(self) -> JobStatus:
        """Drain the child's output (never blocks for long) and return the current status."""
        if self._status.finished or self._process is None:
            return self._status
        self._drain()
        if self._process.poll() is None:
            return self._status
        self._threads[0].join(timeout=5)  # the process ended: let the reader reach end of file
        self._drain()
        return self._finish()

    def _finish(self) -> JobStatus:
        assert self._process is not None
        for thread in self._threads:
            thread.join(timeout=5)
        code = self._process.wait()
        self._status.returncode = code
        if self._cancelled:
            self._status.state = "cancelled"
        elif code == 0 and (self.expected_result is None or self.expected_result.exists()):
            self._status.state = "succeeded"
            self._status.fraction = 1.0
            self._status.result_path = self.expected_result
        else:
            self._status.state = "failed"
            self._status.error = self._error_text(code)
        return self._status

    def _error_text(self, code: int) -> str:
        errors = [line[len("error: ") :] for line in self._stderr_tail if line.startswith("error: ")]
        if errors:
            return errors[-1]
        if code == 0:
            return f"The {self.description} finished without writing its result {self.expected_result}."
        tail = "\n".join(list(self._stderr_tail)[-8:])
        return f"The {self.description} stopped with exit code {code}.\n{tail}".strip()

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.05) -> JobStatus:
        """Block until the job ends (for scripts and tests; a GUI calls :meth:`poll` from a timer)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.poll().finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"The {self.description} did not finish within {timeout_s} s.")
            time.sleep(poll_interval_s)
        return self._status

    def cancel(self, timeout_s: float = 5.0) -> JobStatus:
        """Stop the job: kill its process tree, then delete its temporary folder."""
        if self._process is not None and self._process.poll() is None:
            self._cancelled = True
            _kill_process_tree(self._process.pid, timeout_s)
        if self._process is not None:
            self._process.wait()
            for thread in self._threads:
                thread.join(timeout=timeout_s)
            if not self._status.finished:
                self._cancelled = True
                self._finish()
        else:
            self._status.state = "cancelled"
        self.cleanup()
        return self._status

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

    def __enter__(self) -> BackgroundJob:
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self.cancel()
        else:
            self.cleanup()


def start_segmentation_job(
    ct: Volume | str | Path,
    model: str | Path,
    *,
    device: str = "auto",
    folds: Sequence[int | str] | None = None,
    checkpoint: str | None = None,
    postprocess: bool | None = None,
    sex: str | None = None,
    use_mirroring: bool = True,
    export_resampling: str = "torch",
    work_dir: str | Path | None = None,
    python: str | None = None,
) -> BackgroundJob:
    """Start ``python -m DAPAtlasLib segment`` on ``ct`` in the background; returns the running job.

    A :class:`Volume` is first written into the job folder (``ct.nii.gz``). The label map appears
    as ``<job folder>/labels.nii.gz`` (``status.result_path``) when the job succeeded; read it,
    then call :meth:`BackgroundJob.cleanup`.
    """
    from AnatomyCommonLib.image_io import write_volume

    folder = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="dap-atlas-job-"))
    if isinstance(ct, Volume):
        if sex is None:
            sex = ct.metadata.get("PatientSex") or None
        ct_path = write_volume(ct, folder / "ct.nii.gz", overwrite=True)
    else:
        ct_path = Path(ct).resolve()
    out = folder / "labels.nii.gz"
    args = ["-m", "DAPAtlasLib", "segment", str(ct_path), str(out), "--model", str(model), "--device", device]
    args.append("--progress-lines")
    if folds:
        args += ["--folds", *[str(f) for f in folds]]
    if checkpoint:
        args += ["--checkpoint", checkpoint]
    if postprocess is not None:
        args.append("--postprocess" if postprocess else "--no-postprocess")
    if sex:
        args += ["--sex", sex]
    if not use_mirroring:
        args.append("--no-mirroring")
    args += ["--export-resampling", export_resampling]
    env = {"CUDA_VISIBLE_DEVICES": "-1"} if device == "cpu" else {}
    job = BackgroundJob(
        args, work_dir=folder, env=env, python=python, result_path=out, description="DAP Atlas segmentation"
    )
    return job.start()
