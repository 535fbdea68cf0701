"""Whole datasets, one task per case: in this process, on a local Dask cluster or on any cluster.

:func:`run_cases` runs a per-case function over case ids. The function must be picklable (a
module-level function or an instance of a module-level class), read its inputs from and write
its outputs atomically to paths every worker can reach (shared storage), and return a small
record: only case ids, paths and such records travel through the Dask scheduler, never images.

* ``workers=0`` and no ``scheduler`` (the default): the cases run one after the other in this
  process, exactly as a plain loop would.
* ``workers=N``: a ``distributed.LocalCluster`` of N single-threaded worker processes, closed
  when the run ends (also on errors and Ctrl+C); its dashboard link is printed.
* ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` + ``dask worker``).

A case whose function raises is a failed :class:`CaseOutcome` naming the reason; the others
complete. On a cluster an unexpected error is retried ``retries`` times, and a case whose worker
died is rescheduled by Dask on another worker (``distributed.scheduler.allowed-failures``);
errors of the toolkit's own types (bad input) are not retried, they would fail again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import AnatomyToolkitError, MissingDependencyError

__all__ = [
    "CaseOutcome",
    "ClusterOptions",
    "add_cluster_arguments",
    "cluster_options",
    "gpu_present",
    "plan_local_workers",
    "run_cases",
    "too_large_for_workers",
    "worker_memory_limit",
]

#: Retries of a case that raised an unexpected error on a cluster (not counting the first try).
DEFAULT_RETRIES = 2


class InvalidClusterOptionError(AnatomyToolkitError, ValueError):
    """--workers/--scheduler/--retries that cannot work together."""


@dataclass(frozen=True)
class CaseOutcome:
    """What became of one case: ``status`` "ok" or "failed", the reason, the function's record."""

    case: str
    status: str
    error: str = ""
    record: Any = None


@dataclass(frozen=True)
class ClusterOptions:
    """Where cases run: ``workers`` local processes (0: this process) or an existing ``scheduler``."""

    workers: int = 0
    scheduler: str | None = None
    retries: int = DEFAULT_RETRIES
    gpu_resource: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Modules local workers import when they start (the case function's module by default), so
    #: that the first case does not pay the toolkit's import.
    preload: tuple[str, ...] = ()

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or bool(self.scheduler)


def one_line_reason(error: BaseException) -> str:
    """The error as one line: the message for the toolkit's and OS errors, else the type too."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    if not isinstance(error, (AnatomyToolkitError, OSError, ValueError)):
        text = f"{type(error).__name__}: {text}"
    return " ".join(text.split())


@dataclass(frozen=True)
class _ExpectedFailure:
    """A bad-input failure returned (not raised) from a worker so that Dask does not retry it."""

    reason: str


#: Tests only: a folder. Every case a Dask worker starts is appended to ``calls.log`` there
#: (``case pid``), and a file ``die-<case>`` makes the worker running that case exit abruptly
#: once (as an OOM kill would; the file is removed), so the command-line tests can kill a worker.
TEST_HOOKS_ENV = "ANATOMY_TOOLKIT_TEST_HOOKS"


def _test_hooks(case: str) -> None:
    folder = os.environ.get(TEST_HOOKS_ENV)
    if not folder or not _on_worker():  # never in the command's own process
        return
    with open(os.path.join(folder, "calls.log"), "a", encoding="utf-8") as log:
        log.write(f"{case} {os.getpid()}\n")
    try:
        os.remove(os.path.join(folder, f"die-{case}"))
    except FileNotFoundError:
        return
    os._exit(1)


def _on_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _call_case(
    function: Callable[[str, Any], Any], case: str, job: Any, done_key: tuple[str, str] | None = None
) -> Any:
    # module-level, so that workers unpickle it by reference
    client = _worker_client() if done_key else None
    if client is not None:
        done = client.get_metadata(list(done_key), default=None)
        if done is not None:  # computed again because its worker died before we fetched the result
            return _loads(done)
    _test_hooks(case)
    try:
        value = function(case, job)
    except AnatomyToolkitError as error:
        value = _ExpectedFailure(one_line_reason(error))
    if client is not None:
        # the small result kept on the scheduler: Dask computes a result lost with its worker
        # again while the client still waits for it, which must not run a finished case again
        client.set_metadata(list(done_key), _dumps(value))
    return value


def _worker_client():
    from distributed import get_client

    return get_client()


def _dumps(value: Any) -> bytes:
    from distributed.protocol import pickle

    return pickle.dumps(value)


def _loads(data: bytes) -> Any:
    from distributed.protocol import pickle

    return pickle.loads(data)


class _ProgressLine:
    """``cases: 12/40 done, 1 failed, 4 running, 23 queued`` rewritten in place on stderr."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled and total > 0
        self._last = 0.0

    def show(self, done: int, failed: int, running: int, queued: int = 0, *, final: bool = False) -> None:
        if not self.enabled or (not final and time.monotonic() - self._last < 0.2):
            return
        self._last = time.monotonic()
        line = f"{self.desc}: {done}/{self.total} done, {failed} failed, {running} running"
        if queued:
            line += f", {queued} queued"
        print(f"\r{line}", end="\n" if final else "", file=sys.stderr, flush=True)


def run_cases(
    jobs: Mapping[str, Any],
    function: Callable[[str, Any], Any],
    options: ClusterOptions | None = None,
    *,
    desc: str = "cases",
    progress: bool | Callable[[Iterable, int, str], Iterable] = True,
    resources: Mapping[str, float] | None = None,
    memory: Mapping[str, int] | None = None,
) -> dict[str, CaseOutcome]:
    """Run ``function(case, job)`` for every ``{case: job}``; {case: outcome} in the order of ``jobs``.

    A job is what the case needs (its paths): small, it travels to the worker with the task.
    ``resources`` (e.g. ``{"GPU": 1}``) is what each task requires of a worker on a cluster.
    ``memory``: {case: estimated peak bytes} (cases without an estimate are not checked). On a
    cluster, a case above every worker's memory limit fails at once with a message instead of
    getting its worker killed; a local cluster without ``--worker-memory`` starts as many of the
    N workers as the machine's RAM holds with the largest case (:func:`plan_local_workers`).
    Skipping finished cases (``--resume``) is the caller's job: it passes only the cases to do.
    ``progress``: True for the progress line on stderr, or, in this process, a wrapper
    ``progress(iterable, total, desc)`` such as a tqdm bar.
    """
    options = options or ClusterOptions()
    jobs = dict(jobs)
    bar = _ProgressLine(len(jobs), desc, bool(progress))
    if not options.distributed:
        return _run_here(jobs, function, bar, progress if callable(progress) else None, desc)
    if options.workers and not options.preload:
        options = replace(options, preload=function_modules(function))
    memory = {case: int(n) for case, n in (memory or {}).items() if case in jobs}
    if options.workers and memory and "memory_limit" not in options.extra:
        workers, note = plan_local_workers(options.workers, max(memory.values()), _total_ram_bytes())
        if note:
            print(note, file=sys.stderr)
        options = replace(options, workers=workers)
    return _run_on_cluster(jobs, function, options, bar, dict(resources or {}), memory)


#: A worker's memory limit must exceed a case's estimated peak by this factor: Dask's nanny
#: restarts a worker at 95 % of its limit, and unmanaged memory comes on top of the estimate.
MEMORY_HEADROOM = 1.25
_GB = 1e9


def plan_local_workers(workers: int, largest_case_bytes: int, total_ram_bytes: int) -> tuple[int, str | None]:
    """How many of ``workers`` local workers to start so that each one's memory limit (the RAM
    divided among them, Dask's default) holds the largest case with :data:`MEMORY_HEADROOM`;
    and the note saying why, when fewer."""
    need = largest_case_bytes * MEMORY_HEADROOM
    if need * workers <= total_ram_bytes:
        return workers, None
    fit = max(1, int(total_ram_bytes // need))
    if fit >= workers:
        return workers, None
    return fit, (
        f"the largest case needs about {largest_case_bytes / _GB:.1f} GB (estimate) and each worker "
        f"{need / _GB:.1f} GB with headroom: {total_ram_bytes / _GB:.1f} GB of RAM hold {fit} such "
        f"worker(s), so {fit} start instead of {workers}."
    )


def _total_ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:  # psutil comes with distributed; without it, Dask's own default applies
        return 1 << 62


def _largest_worker_limit(client) -> int | None:
    """The largest memory limit among the cluster's workers; None when any has none."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info().get("workers", {}).values()]
    return None if not limits or 0 in limits else max(limits)


def too_large_for_workers(memory: Mapping[str, int], limit: int | None) -> dict[str, str]:
    """{case: reason} of the cases whose estimated peak exceeds ``limit`` (a worker's memory limit)."""
    if limit is None:
        return {}
    return {
        case: (
            f"needs about {need / _GB:.1f} GB of memory (estimate; {need * MEMORY_HEADROOM / _GB:.1f} GB "
            f"with headroom), more than a worker's limit of {limit / _GB:.1f} GB: give the workers "
            "more (--worker-memory, dask worker "
            "--memory-limit) or run this case on a larger machine"
        )
        for case, need in memory.items()
        if need * MEMORY_HEADROOM > limit
    }


def function_modules(function: Callable) -> tuple[str, ...]:
    """The toolkit module defining ``function`` (or its class), for workers to import when they
    start; none for other code (a test's or script's function travels by value)."""
    module = getattr(function, "__module__", None) or type(function).__module__ or ""
    return (module,) if module.split(".")[0] in _TOOLKIT_PACKAGES else ()


_TOOLKIT_PACKAGES = ("AnatomyCommonLib", "CCMetricsLib", "DAPAtlasLib", "LIMISLib")


def _outcome(case: str, value: Any) -> CaseOutcome:
    if isinstance(value, _ExpectedFailure):
        return CaseOutcome(case, "failed", value.reason)
    return CaseOutcome(case, "ok", record=value)


def _run_here(jobs: dict[str, Any], function, bar: _ProgressLine, wrap, desc) -> dict[str, CaseOutcome]:
    outcomes: dict[str, CaseOutcome] = {}
    failed = 0
    if wrap is not None:
        bar.enabled = False
    cases = wrap(list(jobs), len(jobs), desc) if wrap is not None else list(jobs)
    for index, case in enumerate(cases):
        bar.show(index - failed, failed, 1)
        try:
            outcomes[case] = _outcome(case, _call_case(function, case, jobs[case]))
        except KeyboardInterrupt:
            raise
        except Exception as error:  # each case on its own: name it with its reason, go on
            outcomes[case] = CaseOutcome(case, "failed", one_line_reason(error))
        failed += outcomes[case].status == "failed"
    bar.show(len(jobs) - failed, failed, 0, final=True)
    return outcomes


def gpu_present() -> bool:
    """An NVIDIA GPU visible to this process, without importing PyTorch just to ask."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            return bool(torch.cuda.is_available())
        except Exception:
            return False
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/gpus")


def worker_memory_limit() -> int | None:
    """The memory limit (bytes) of the Dask worker running this code; None outside a worker or
    when the worker has none. Per-case memory estimates are checked against it, so that a case
    too large for its worker is refused with a message instead of the worker being killed."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return int(limit) if limit else None


#: Dask settings of the local clusters ``--workers`` starts. Dask's defaults (a stack-sampling
#: profiler every 10 ms, an event-loop tick every 20 ms, system and GIL monitors twice a second,
#: work stealing) keep an idle 1-worker cluster at 5-7 % of a core, measured in
#: bench/bench_batch_cluster.py as +27 % CPU time against the sequential loop on a busy machine;
#: with these about 1 %. Cases are long and alike, so neither the profile nor stealing helps.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}


def start_client(options: ClusterOptions):
    """A ``distributed.Client`` for ``options`` and the LocalCluster it started (or None)."""
    try:
        import distributed
    except ImportError as error:
        raise MissingDependencyError(
            "--workers/--scheduler need Dask distributed; install it with "
            "pip install 'slicer-anatomy-toolkit[cluster]' (or pip install 'dask[distributed]')."
        ) from error
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # Dask's INFO lines unless --verbose
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if options.scheduler:
        return distributed.Client(options.scheduler), None
    import dask

    worker_resources = {"GPU": 1} if (options.gpu_resource or gpu_present()) else None
    # a case whose worker died is rescheduled until it took this many workers down with it
    allowed = max(int(dask.config.get("distributed.scheduler.allowed-failures")), options.retries + 1)
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed, **LOCAL_CLUSTER_CONFIG}):
        cluster = distributed.LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,
            processes=True,
            resources=worker_resources,
            dashboard_address=":0",
            preload=list(options.preload),
            **dict(options.extra),
        )
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


def _run_on_cluster(jobs, function, options, bar, resources, memory=None) -> dict[str, CaseOutcome]:
    import distributed

    client, cluster = start_client(options)
    try:
        if cluster is not None:
            link = getattr(client, "dashboard_link", None)
            print(
                f"local Dask cluster: {options.workers} worker processes, dashboard {link}",
                file=sys.stderr,
            )
        refused = too_large_for_workers(memory or {}, _largest_worker_limit(client)) if memory else {}
        outcomes: dict[str, CaseOutcome] = {c: CaseOutcome(c, "failed", why) for c, why in refused.items()}
        failed = len(outcomes)
        futures = {}
        every_case = list(jobs)
        cases = [case for case in every_case if case not in refused]
        run = uuid.uuid4().hex
        done_keys = [(f"anatomy-toolkit-{run}", str(index)) for index in range(len(cases))]
        for case, done_key in zip(cases, done_keys, strict=True):
            future = client.submit(
                _call_case,
                function,
                case,
                jobs[case],
                done_key,
                key=f"case-{case}-{run}",
                pure=False,
                retries=options.retries,
                resources=resources or None,
            )
            futures[future] = case
        slots = max(1, sum(client.nthreads().values()))  # one case per worker thread at a time
        bar.show(0, failed, min(slots, len(cases)), max(0, len(cases) - slots))
        finished = distributed.as_completed(list(futures))
        for future in finished:
            case = futures.pop(future)
            if future.status == "finished":
                outcomes[case] = _outcome(case, future.result())
            else:
                outcomes[case] = CaseOutcome(case, "failed", one_line_reason(future.exception()))
            # let go of the result at once: a result still wanted when its worker dies is computed
            # again, which would redo a finished case
            future.release()
            del future
            failed += outcomes[case].status == "failed"
            pending = len(every_case) - len(outcomes)
            bar.show(len(outcomes) - failed, failed, min(slots, pending), max(0, pending - slots))
        bar.show(len(outcomes) - failed, failed, 0, final=True)
        client.set_metadata([f"anatomy-toolkit-{run}"], None)  # forget the run's results
        return {case: outcomes[case] for case in every_case}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def add_cluster_arguments(parser, *, gpu: bool = False) -> None:
    """``--workers N``, ``--scheduler ADDRESS`` and ``--retries K`` (and ``--gpu-resource``)."""
    group = parser.add_argument_group("cluster (Dask distributed; inputs and outputs on shared storage)")
    group.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run the cases on a local Dask cluster of N worker processes (default: 0 = one after "
        "the other in this process)",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the cases on an existing Dask cluster, e.g. tcp://host:8786",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="K",
        help="on a cluster, retry a case that raised an unexpected error K times "
        f"(default {DEFAULT_RETRIES})",
    )
    group.add_argument(
        "--worker-memory",
        metavar="SIZE",
        help="memory limit of each local worker, e.g. 8GB (default: the machine's memory / N; DAP "
        "batch starts no more workers than hold its largest case); DAP batch refuses a case whose "
        "memory estimate exceeds it",
    )
    if gpu:
        group.add_argument(
            "--gpu-resource",
            action="store_true",
            help="each case needs a worker started with --resources GPU=1 (local workers get it)",
        )


def cluster_options(args) -> ClusterOptions:
    """:class:`ClusterOptions` of parsed :func:`add_cluster_arguments` flags (checked)."""
    workers = getattr(args, "workers", 0) or 0
    scheduler = getattr(args, "scheduler", None)
    retries = getattr(args, "retries", DEFAULT_RETRIES)
    if workers < 0:
        raise InvalidClusterOptionError(f"--workers must be 0 or more, not {workers}.")
    if workers and scheduler:
        raise InvalidClusterOptionError("Give either --workers (a local cluster) or --scheduler, not both.")
    if retries < 0:
        raise InvalidClusterOptionError(f"--retries must be 0 or more, not {retries}.")
    memory = getattr(args, "worker_memory", None)
    if memory and not workers:
        raise InvalidClusterOptionError(
            "--worker-memory sets the limit of local workers: give --workers N too."
        )
    return ClusterOptions(
        workers=workers,
        scheduler=scheduler,
        retries=retries,
        gpu_resource=bool(getattr(args, "gpu_resource", False)),
        extra={"memory_limit": memory} if memory else {},
    )
