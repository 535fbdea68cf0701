"""Segment a folder (or list) of CTs: one label map per case plus one statistics CSV, resumable.

``run_batch(["cts/"], "out/")`` writes ``out/<case>_dap.nii.gz`` for every CT, then
``out/statistics.csv`` (per case and structure: volume and HU statistics, from
:mod:`DAPAtlasLib.statistics`) and ``out/batch_report.json`` (status, error and time per case).

* Resumable: a case whose label map exists is skipped (label maps are written to a temporary
  file and renamed, so an existing file is always complete); re-run the same command after an
  interruption.
* Robust: an error in one case (unreadable file, a CT too large for memory, ...) is recorded in
  the report and the batch goes on; errors that concern every case (model missing or damaged)
  stop it at once.
* The model is loaded once, and only if some case still needs it (on Dask workers: once per
  worker, see ``cluster``).
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from AnatomyCommonLib.cluster import ClusterOptions, gpu_present, run_cases, worker_memory_limit
from AnatomyCommonLib.image_io import (
    SUPPORTED_SUFFIXES,
    image_suffix,
    read_labelmap,
    read_volume,
    write_volume,
)
from AnatomyCommonLib.volume import Volume

from .exceptions import (
    AnatomyToolkitError,
    CancelledError,
    CorruptWeightsError,
    InputNotFoundError,
    MissingDependencyError,
    MissingWeightsError,
    UnsupportedFormatError,
)
from .input_checks import check_ct
from .structure_selection import keep_structures

log = logging.getLogger(__name__)

OUTPUT_SUFFIX = "_dap.nii.gz"
STATISTICS_CSV = "statistics.csv"
REPORT_JSON = "batch_report.json"
#: Errors that would hit every case: the batch stops instead of recording them per case.
_FATAL = (MissingWeightsError, CorruptWeightsError, MissingDependencyError, CancelledError)


@dataclass
class CaseResult:
    """What happened to one case."""

    case_id: str
    input: str
    output: str
    status: str  # "done", "skipped" (label map existed), "failed"
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # e.g. a non-CT input segmented with force


@dataclass
class BatchReport:
    """All cases of a batch run and where its outputs are."""

    out_dir: str
    cases: list[CaseResult] = field(default_factory=list)
    statistics_csv: str | None = None
    statistics_error: str | None = None

    def with_status(self, status: str) -> list[CaseResult]:
        return [case for case in self.cases if case.status == status]

    @property
    def failed(self) -> list[CaseResult]:
        return self.with_status("failed")

    def to_json(self) -> dict:
        return {
            "out_dir": self.out_dir,
            "done": len(self.with_status("done")),
            "skipped": len(self.with_status("skipped")),
            "failed": len(self.failed),
            "statistics_csv": self.statistics_csv,
            "statistics_error": self.statistics_error,
            "cases": [asdict(case) for case in self.cases],
        }


def case_id_of(path: Path) -> str:
    """File name without its image suffix (``AutoPET_0011_10445.nii.gz`` -> ``AutoPET_0011_10445``)."""
    if path.is_dir():
        return path.name
    return path.name[: -len(image_suffix(path))]


def find_cases(inputs: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """``(case id, path)`` for every CT given: image files, and the image files inside folders.

    A folder without image files is taken as one DICOM series. Two inputs with the same case id
    raise :class:`UnsupportedFormatError` (their outputs would collide).
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise InputNotFoundError(f"Batch input not found: {path}")
        if path.is_dir():
            images = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and any(p.name.lower().endswith(s) for s in SUPPORTED_SUFFIXES)
            )
            found.extend(images if images else [path])
        else:
            image_suffix(path)  # raises for unsupported files
            found.append(path)
    cases: dict[str, Path] = {}
    for path in found:
        case = case_id_of(path)
        if case in cases and cases[case] != path:
            raise UnsupportedFormatError(
                f"Two inputs would both be called {case!r} ({cases[case]} and {path}); rename one."
            )
        cases[case] = path
    if not cases:
        raise InputNotFoundError(f"No CT images found in {', '.join(str(i) for i in inputs)}.")
    return list(cases.items())


def output_path(out_dir: str | Path, case_id: str) -> Path:
    return Path(out_dir) / f"{case_id}{OUTPUT_SUFFIX}"


def run_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    model: str | Path = "dap-atlas-v2",
    *,
    device: str = "auto",
    folds: Sequence[int | str] | None = None,
    checkpoint: str | None = None,
    postprocess: bool | None = None,
    sex: str | None = None,
    use_mirroring: bool = True,
    export_resampling: str = "torch",
    check_memory: bool = True,
    overwrite: bool = False,
    statistics: bool = True,
    progress: Callable[[float, str], None] | None = None,
    segmenter=None,
    force: bool = False,
    structures: Sequence[int] | None = None,
    cluster: ClusterOptions | None = None,
) -> BatchReport:
    """Segment every CT of ``inputs`` into ``out_dir`` (see the module docstring).

    ``progress(fraction, message)`` covers the whole batch. ``segmenter`` reuses an existing
    :class:`~DAPAtlasLib.inference.DAPSegmenter` (otherwise one is created when first needed).
    A case that does not look like a CT fails (``ImplausibleCTError``) unless ``force``, which
    records the warning in the case's ``warnings``. ``structures`` (label ids) limits the label
    maps and the statistics to those structures. ``cluster`` (``--workers``/``--scheduler``)
    segments the cases on Dask workers, one task per case, each worker loading the model once;
    with ``cluster.gpu_resource`` every task needs a worker with a ``GPU`` resource.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cases = find_cases(inputs)
    report = BatchReport(out_dir=str(out))
    if cluster is not None and cluster.distributed:
        settings = SegmenterSettings(
            str(model),
            device,
            tuple(folds) if folds else None,
            checkpoint,
            use_mirroring,
            export_resampling,
            check_memory,
        )
        task = _SegmentCase(settings, postprocess, sex, force, overwrite, structures)
        _run_on_cluster(report, cases, task, cluster, overwrite)
        if statistics:
            _write_statistics(report, out, structures)
        _write_report(report, out)
        return report
    for number, (case_id, path) in enumerate(cases):
        target = output_path(out, case_id)
        result = CaseResult(case_id, str(path), str(target), "skipped")
        report.cases.append(result)
        if target.exists() and not overwrite:
            continue

        def case_progress(
            fraction: float, message: str, number: int = number, case_id: str = case_id
        ) -> None:
            if progress is not None:
                progress((number + fraction) / len(cases), f"{case_id}: {message}")

        started = time.perf_counter()
        try:
            ct = read_volume(path, name=case_id)
            result.warnings = check_ct(ct, name=case_id, force=force)
            if segmenter is None:
                from .inference import DAPSegmenter

                segmenter = DAPSegmenter(
                    model,
                    device=device,
                    folds=folds,
                    checkpoint=checkpoint,
                    use_mirroring=use_mirroring,
                    export_resampling=export_resampling,
                    check_memory=check_memory,
                )
            labels = segmenter.segment(
                ct, postprocess=postprocess, sex=sex, progress=case_progress, force=force
            )
            write_volume(keep_structures(labels, structures), target, overwrite=overwrite)
            result.status = "done"
        except _FATAL:
            raise
        except (AnatomyToolkitError, OSError, ValueError, MemoryError, RuntimeError) as error:
            result.status = "failed"
            result.error = f"{type(error).__name__}: {error}"
            log.warning("Case %s failed: %s", case_id, result.error)
        result.seconds = round(time.perf_counter() - started, 3)
        _write_report(report, out)
    if statistics:
        _write_statistics(report, out, structures)
    _write_report(report, out)
    if progress is not None:
        progress(
            1.0,
            f"{len(report.with_status('done'))} done, {len(report.with_status('skipped'))} skipped, "
            f"{len(report.failed)} failed",
        )
    return report


def header_grid(path: str | Path) -> Volume | None:
    """The grid of an image file read from its header alone (the array is a zero-stride view,
    no voxel is read); None where that is not possible (a DICOM folder, an unreadable file)."""
    import SimpleITK as sitk

    if Path(path).is_dir():
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None  # the case's own task reports why
    if reader.GetDimension() != 3:
        return None
    array = np.broadcast_to(np.zeros((), np.int16), tuple(reversed(reader.GetSize())))
    direction = np.reshape(reader.GetDirection(), (3, 3))
    return Volume.from_lps_geometry(array, reader.GetSpacing(), reader.GetOrigin(), direction)


def case_memory_bytes(segmenter, path: str | Path) -> int | None:
    """Peak RAM of segmenting the CT at ``path``, from its header: the estimate inference makes
    before allocating (:meth:`DAPAtlasLib.inference.DAPSegmenter.estimate_memory`) for the run on
    the CPU, or on a GPU when the segmenter's device is one (or "auto" and a GPU is present)."""
    from .voxel_orientation import plan_reorientation

    grid = header_grid(path)
    if grid is None:
        return None
    reorientation = plan_reorientation(grid, segmenter.voxel_orientation)
    shape = reorientation.apply(grid.array).shape
    estimate = segmenter.estimate_memory(shape, reorientation.spacing_kji(grid.spacing_kji_mm))
    device = str(segmenter.device)
    on_gpu = device.startswith("cuda") or (device == "auto" and gpu_present())
    return estimate.host_bytes_gpu_run if on_gpu else estimate.host_bytes_cpu_run


@dataclass(frozen=True)
class SegmenterSettings:
    """What makes two segmenters the same: the key of a worker's cached model."""

    model: str
    device: str
    folds: tuple | None
    checkpoint: str | None
    use_mirroring: bool
    export_resampling: str
    check_memory: bool


#: The segmenters this process loaded, by settings: on a Dask worker, one model load per worker.
_WORKER_SEGMENTERS: dict[SegmenterSettings, object] = {}
_WORKER_LOCK = threading.Lock()


def worker_segmenter(settings: SegmenterSettings):
    """The segmenter of ``settings`` loaded once in this process and reused by every case."""
    with _WORKER_LOCK:
        segmenter = _WORKER_SEGMENTERS.get(settings)
        if segmenter is None:
            from .inference import DAPSegmenter

            segmenter = DAPSegmenter(
                settings.model,
                device=settings.device,
                folds=list(settings.folds) if settings.folds else None,
                checkpoint=settings.checkpoint,
                use_mirroring=settings.use_mirroring,
                export_resampling=settings.export_resampling,
                check_memory=settings.check_memory,
            )
            # a case larger than this worker's memory limit is refused (InsufficientMemoryError)
            segmenter.ram_limit_bytes = worker_memory_limit()
            _WORKER_SEGMENTERS[settings] = segmenter
        return segmenter


class _SegmentCase:
    """One case of a batch on a Dask worker (picklable): reads the CT from shared storage, writes
    the label map atomically next to the others, returns the :class:`CaseResult` as a dict (or
    ``{"fatal": ...}`` for an error that would hit every case)."""

    def __init__(self, settings, postprocess, sex, force, overwrite, structures) -> None:
        self.settings, self.postprocess, self.sex = settings, postprocess, sex
        self.force, self.overwrite, self.structures = force, overwrite, structures

    def __call__(self, case_id: str, job) -> dict:
        path, target = job
        result = CaseResult(case_id, path, target, "failed")
        started = time.perf_counter()
        try:
            ct = read_volume(Path(path), name=case_id)
            result.warnings = check_ct(ct, name=case_id, force=self.force)
            labels = worker_segmenter(self.settings).segment(
                ct, postprocess=self.postprocess, sex=self.sex, force=self.force
            )
            write_volume(keep_structures(labels, self.structures), Path(target), overwrite=self.overwrite)
            result.status = "done"
        except _FATAL as error:
            return {"fatal": type(error).__name__, "message": str(error)}
        except (AnatomyToolkitError, OSError, ValueError, MemoryError, RuntimeError) as error:
            result.error = f"{type(error).__name__}: {error}"
        result.seconds = round(time.perf_counter() - started, 3)
        return asdict(result)


def _run_on_cluster(report: BatchReport, cases, task: _SegmentCase, cluster: ClusterOptions, overwrite):
    jobs = {}
    for case_id, path in cases:
        target = output_path(report.out_dir, case_id)
        report.cases.append(CaseResult(case_id, str(path), str(target), "skipped"))
        if overwrite or not target.exists():
            jobs[case_id] = (str(path), str(target))
    memory = {}
    if jobs and task.settings.check_memory:  # checked against the workers' limits before sending
        segmenter = worker_segmenter(task.settings)  # here: the model's plans, not its weights
        for case_id, (path, _) in jobs.items():
            need = case_memory_bytes(segmenter, path)
            if need is not None:
                memory[case_id] = need
    outcomes = run_cases(
        jobs,
        task,
        cluster,
        desc="segmenting",
        resources={"GPU": 1} if cluster.gpu_resource else None,
        memory=memory,
    )
    fatal = next((o.record for o in outcomes.values() if o.status == "ok" and "fatal" in o.record), None)
    if fatal is not None:
        error_type = next(e for e in _FATAL if e.__name__ == fatal["fatal"])
        raise error_type(fatal["message"])
    for index, result in enumerate(report.cases):
        outcome = outcomes.get(result.case_id)
        if outcome is None:
            continue
        if outcome.status == "ok":
            report.cases[index] = CaseResult(**outcome.record)
        else:  # the task itself failed (e.g. its worker died more often than allowed)
            result.status, result.error = "failed", outcome.error
        if report.cases[index].status == "failed":
            log.warning("Case %s failed: %s", result.case_id, report.cases[index].error)


def _write_report(report: BatchReport, out: Path) -> None:
    path = out / REPORT_JSON
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    tmp.replace(path)


def _write_statistics(report: BatchReport, out: Path, structures: Sequence[int] | None = None) -> None:
    """One CSV over every case that has a label map (done now or in an earlier run): a ``case``
    column, then :data:`DAPAtlasLib.statistics.COLUMNS` (volume, HU and centroid per structure)."""
    from .statistics import COLUMNS, statistics_rows, structure_statistics

    rows: list[dict] = []
    for case in report.cases:
        if case.status == "failed" or not Path(case.output).exists():
            continue
        try:
            labels = read_labelmap(case.output, name=f"{case.case_id} labels")
            ct = read_volume(case.input, name=case.case_id)
            stats = [
                s for s in structure_statistics(labels, ct) if structures is None or s.label in structures
            ]
            rows.extend({"case": case.case_id, **row} for row in statistics_rows(stats))
        except (AnatomyToolkitError, OSError, ValueError) as error:
            report.statistics_error = f"{case.case_id}: {type(error).__name__}: {error}"
            log.warning("Statistics of %s failed: %s", case.case_id, error)
    path = out / STATISTICS_CSV
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["case", *COLUMNS])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    tmp.replace(path)
    report.statistics_csv = str(path)
