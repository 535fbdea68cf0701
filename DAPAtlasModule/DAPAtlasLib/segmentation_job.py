"""DAP Atlas inference as a background process that the Slicer widget polls.

The job runs ``python -m DAPAtlasLib segment ... --progress-lines`` through
:class:`AnatomyCommonLib.background_jobs.ProcessJob` (progress lines, result, a Cancel that kills the
process tree and deletes the job folder). Outputs are written inside the job folder through a
temporary file and a rename, so a cancelled or failed job leaves nothing behind, in the folder or in
the scene (nodes are created only from a finished result). No Qt or MRML here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from AnatomyCommonLib.background_jobs import ProcessJob
from AnatomyCommonLib.volume import Volume


def lib_folders() -> list[Path]:
    """The folders that make DAPAtlasLib and AnatomyCommonLib importable in a child process."""
    import AnatomyCommonLib

    from . import __file__ as lib_init

    return [Path(lib_init).resolve().parents[1], Path(AnatomyCommonLib.__file__).resolve().parents[1]]


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
    force: bool = False,
) -> ProcessJob:
    """Start ``python -m DAPAtlasLib segment`` on ``ct`` in the background; returns the running job.

    ``force`` passes ``--force``: an input that does not look like a CT is segmented anyway.

    A :class:`Volume` is first written into the job folder (``ct.nii``). The label map appears
    as ``<job folder>/labels.nii`` (the ending update's ``result_path``) when the job succeeded; read it,
    then call :meth:`~AnatomyCommonLib.background_jobs.ProcessJob.cleanup`. Both files are
    uncompressed: they live only for the job, and gzip costs seconds on the GUI thread for a
    whole-body CT (writing the input, reading the result) for no benefit.
    """
    from AnatomyCommonLib.image_io import write_volume

    folder = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="dap-atlas-job-"))
    if isinstance(ct, Volume):
        if sex is None:
            sex = ct.metadata.get("PatientSex") or None
        ct_path = write_volume(ct, folder / "ct.nii", overwrite=True)
    else:
        ct_path = Path(ct).resolve()
    out = folder / "labels.nii"
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
    if force:
        args.append("--force")
    env = {"CUDA_VISIBLE_DEVICES": "-1"} if device == "cpu" else {}
    job = ProcessJob(
        args,
        work_dir=folder,
        env=env,
        python=python,
        pythonpath=lib_folders(),
        result_path=out,
        description="DAP Atlas segmentation",
    )
    return job.start()


def start_segmentation_in_background(ct: Volume, model: str | Path, *, job=None, **options) -> ProcessJob:
    """The start of the Slicer module's *Segment* for its job runner: write the CT, start the process.

    Writing the whole-body CT for the child process is the slow part; here it runs off the GUI
    thread. ``job`` (a ThreadJob) may be cancelled meanwhile: the process started anyway is then
    killed and its folder deleted (CancelledError). ``options`` are those of
    :func:`start_segmentation_job`. Returns the running :class:`ProcessJob` (poll it).
    """
    from AnatomyCommonLib.errors import CancelledError

    message = "Segmentation cancelled; nothing was added to the scene."
    if job is not None:
        if job.should_cancel():
            raise CancelledError(message)
        job.report_progress(0.0, "writing the CT for the model process")
    process = start_segmentation_job(ct, model, **options)
    if job is not None and job.should_cancel():
        process.cancel()
        raise CancelledError(message)
    return process
