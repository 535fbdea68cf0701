"""Benchmark of the Dask path of the folder commands (issue 16): throughput with 1 vs 2 local
workers, and the overhead of the Dask path with 1 worker against the sequential loop.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:CCMetricsModule .venv/bin/python bench/bench_batch_cluster.py``
(``--quick``: small CC cases and tiny DAP phantoms, one round; ``--data DIR`` keeps the written
cases for the next run; the default, realistic sizes, 3 rounds, takes 20-40 minutes on 2 cores).

Workloads (written once, read from disk by every run as on shared storage):
- CC-Metrics folder mode: ``--cc-cases`` cases (default 20), each a reference of 12 spheres (3-12 mm)
  and a perturbed prediction (dilated, shifted, missed, false positives) on a 512 x 512 x
  ``--cc-slices`` (default 300) grid at 0.8 x 0.8 x 2 mm (``--quick``: 6 spheres on 96 x 96 x 48);
- DAP post-processing: ``--dap-cases`` phantoms (default 8) of the "realistic" grid (512 x 512 x 510
  at 0.8 x 0.8 x 2 mm) with every simulated model error, ``--dap-distinct`` (default 2: a male and
  a female) built and copied in turn, since one takes minutes to build (``--quick``: the "tiny"
  grid, left/right swap, gonads in the orbit and a stray fragment, all distinct).
Each round runs the sequential loop, then the command against a LocalCluster of 1 and of 2 workers
started beforehand (``--scheduler``; the workers preload the case function's module as
``--workers`` does), whose start is timed apart and added in the "with the start" lines. Printed
per round and as median [min-max] over rounds: ``speed-up 2 vs 1 worker = t(1) / t(2)`` and
``overhead of the Dask path = t(1 worker) / t(sequential) - 1`` (goal <= 10 %), in wall-clock time
and in CPU time (this process and its worker processes, user + system), which a machine shared
with other work disturbs far less than the wall clock. On a shared machine the speed-up is bounded
by the free cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))

from AnatomyCommonLib import Volume, write_volume  # noqa: E402
from AnatomyCommonLib.cluster import ClusterOptions  # noqa: E402


def write_cc_cases(folder: Path, count: int, quick: bool, slices: int = 300) -> None:
    from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask

    spacing_ijk = (0.8, 0.8, 2.0)
    spacing_kji = spacing_ijk[::-1]
    shape_kji, n, radii = ((48, 96, 96), 6, (2.5, 6.0)) if quick else ((slices, 512, 512), 12, (3.0, 12.0))
    for seed in range(count):
        spheres = random_spheres(shape_kji, n, radii, 6.0, spacing_kji, seed)
        reference = sphere_mask(shape_kji, spheres, spacing_kji)
        prediction, _ = perturb_prediction(
            reference, dilated=2, shifted=1, missed=1, false_positives=1, spacing=spacing_kji, seed=seed
        )
        volume = Volume.from_geometry(reference.astype(np.uint8), spacing_ijk)
        write_volume(volume, folder / "refs" / f"case{seed:03d}.nii.gz")
        write_volume(
            volume.with_array(prediction.astype(np.uint8)), folder / "model" / f"case{seed:03d}.nii.gz"
        )


def write_dap_cases(folder: Path, count: int, size: str, distinct: int) -> None:
    """``count`` cases: ``distinct`` phantoms (seeds 0, 1, ...; male, female alternately) with
    simulated model errors, copied in turn to fill ``count`` files (a realistic phantom takes
    minutes to build on a busy machine; every case is read and post-processed on its own)."""
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.simulated_model_errors import inject_model_errors

    labels = folder / "labels"
    for seed in range(min(distinct, count)):
        target = labels / f"case{seed:03d}.nii.gz"
        if target.exists():
            continue
        sex = "F" if seed % 2 else "M"
        phantom = make_phantom(size, seed=seed, sex=sex, orientation="LPS")
        kinds = ["left_right_swap", "gonads_in_orbit", "stray_fragment"] if size == "tiny" else None
        corrupted = inject_model_errors(phantom.labels, kinds, sex=sex)
        write_volume(corrupted.labels, target)
    for number in range(min(distinct, count), count):
        shutil.copyfile(labels / f"case{number % distinct:03d}.nii.gz", labels / f"case{number:03d}.nii.gz")


def time_cc(folder: Path, out: Path, options: ClusterOptions) -> float:
    from CCMetricsLib.batch import evaluate_folder

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    rows = evaluate_folder(folder / "refs", [folder / "model"], out, bootstrap_resamples=200, cluster=options)
    seconds = time.perf_counter() - started
    assert all(row["status"] == "ok" for row in rows), "a CC case failed"
    return seconds


def time_dap(folder: Path, out: Path, options: ClusterOptions) -> float:
    from DAPAtlasLib.__main__ import main

    shutil.rmtree(out, ignore_errors=True)
    argv = ["postprocess", str(folder / "labels"), str(out), "--sex", "auto"]
    argv += ["--scheduler", options.scheduler] if options.scheduler else []
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    seconds = time.perf_counter() - started
    assert code == 0, "DAP post-processing failed"
    return seconds


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its (worker) processes so far."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


def worker_peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one_round(workload, preload: tuple[str, ...]) -> dict[str, float]:
    """Sequential, then on a running LocalCluster of 1 and of 2 workers (its start timed apart)."""
    from AnatomyCommonLib.cluster import start_client

    cpu = cpu_seconds()
    result = {"sequential": workload(ClusterOptions())}
    result["sequential cpu"] = cpu_seconds() - cpu
    for workers in (1, 2):
        name = f"{workers} worker{'s' if workers > 1 else ''}"
        started = time.perf_counter()
        client, cluster = start_client(ClusterOptions(workers=workers, preload=preload))
        result[f"{name} start"] = time.perf_counter() - started
        try:
            cpu = cpu_seconds()
            result[name] = workload(ClusterOptions(scheduler=cluster.scheduler_address))
            result[f"{name} cpu"] = cpu_seconds() - cpu
            peaks = client.run(worker_peak_rss)
            result[f"{name} peak GB"] = max(peaks.values()) / 1e9
        finally:
            client.close()
            cluster.close()
    return result


def spread(values: list[float], fmt: str) -> str:
    values = sorted(values)
    median = values[len(values) // 2] if len(values) % 2 else sum(values[len(values) // 2 - 1 :][:2]) / 2
    return f"{fmt.format(median)} [{fmt.format(values[0])} - {fmt.format(values[-1])}]"


def report(name: str, rounds: list[dict[str, float]]) -> None:
    print(f"\n{name}: {len(rounds)} round(s); median [min - max]")
    for key in ("sequential", "1 worker", "2 workers", "1 worker start", "2 workers start"):
        print(
            f"  {key:18s} {spread([r[key] for r in rounds], '{:.2f}')} s   (rounds: "
            + ", ".join(f"{r[key]:.2f}" for r in rounds)
            + ")"
        )
    for key in ("sequential cpu", "1 worker cpu", "2 workers cpu"):
        print(f"  {key:18s} {spread([r[key] for r in rounds], '{:.2f}')} CPU s")
    peak = max(max(r["1 worker peak GB"], r["2 workers peak GB"]) for r in rounds)
    print(f"  worker peak RSS    {peak:.2f} GB")
    ratio = {
        "speed-up 2 vs 1 worker (running cluster)": [r["1 worker"] / r["2 workers"] for r in rounds],
        "speed-up 2 vs 1 worker, with the start": [
            (r["1 worker"] + r["1 worker start"]) / (r["2 workers"] + r["2 workers start"]) for r in rounds
        ],
    }
    for key, values in ratio.items():
        print(f"  {key:44s} {spread(values, '{:.2f}')}x")
    overhead = {
        "overhead 1 worker vs sequential, wall": [
            100 * (r["1 worker"] / r["sequential"] - 1) for r in rounds
        ],
        "overhead 1 worker vs sequential, CPU": [
            100 * (r["1 worker cpu"] / r["sequential cpu"] - 1) for r in rounds
        ],
        "overhead with the start, wall": [
            100 * ((r["1 worker"] + r["1 worker start"]) / r["sequential"] - 1) for r in rounds
        ],
    }
    for key, values in overhead.items():
        print(f"  {key:44s} {spread(values, '{:+.1f}')} %")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases, one round, a few minutes")
    parser.add_argument("--cc-cases", type=int, default=20)
    parser.add_argument("--cc-slices", type=int, default=300)
    parser.add_argument("--dap-cases", type=int, default=8)
    parser.add_argument(
        "--dap-distinct", type=int, help="distinct DAP phantoms, copied to fill --dap-cases (default 2)"
    )
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 3, --quick 1)")
    parser.add_argument("--data", help="folder for the written cases, kept and reused (default: temporary)")
    parser.add_argument("--only", choices=["cc", "dap"], help="run one workload")
    args = parser.parse_args(argv)
    rounds = args.repeat or (1 if args.quick else 3)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.ExitStack() as stack:
        root = Path(args.data) if args.data else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.only != "dap" and not (root / "cc" / "model").is_dir():
            write_cc_cases(root / "cc", args.cc_cases, args.quick, args.cc_slices)
        if args.only != "cc":
            distinct = args.dap_distinct or (args.dap_cases if args.quick else 2)
            write_dap_cases(root / "dap", args.dap_cases, "tiny" if args.quick else "realistic", distinct)
        workloads = {}
        if args.only != "dap":
            workloads[f"CC-Metrics folder mode, {args.cc_cases} cases"] = (
                lambda options: time_cc(root / "cc", root / "cc_out", options),
                ("CCMetricsLib.batch",),
            )
        if args.only != "cc":
            workloads[f"DAP post-processing, {args.dap_cases} phantoms"] = (
                lambda options: time_dap(root / "dap", root / "dap_out", options),
                ("DAPAtlasLib.cli_postprocess",),
            )
        results = {name: [] for name in workloads}
        for number in range(rounds):
            for name, (workload, preload) in workloads.items():
                results[name].append(one_round(workload, preload))
                print(
                    f"round {number + 1}: {name}: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in results[name][-1].items()),
                    flush=True,
                )
        for name, measured in results.items():
            report(name, measured)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
