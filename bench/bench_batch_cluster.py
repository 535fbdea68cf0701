"""Benchmark of the Dask path of the folder commands (issue 16): throughput with 1 vs 2 local
workers, and the overhead of the Dask path with 1 worker against the sequential loop.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:CCMetricsModule .venv/bin/python bench/bench_batch_cluster.py``
(``--quick``: small CC cases and tiny DAP phantoms, one repeat; a few minutes on 2 shared cores).

Workloads (written once to a temporary folder, read from disk by every run as on shared storage):
- CC-Metrics folder mode: ``--cc-cases`` cases (default 20), each a reference of 12 spheres and a
  perturbed prediction (dilated, shifted, missed, false positives) on a 160 x 256 x 256 grid at
  0.8 x 0.8 x 2 mm (``--quick``: 6 spheres on 48 x 96 x 96);
- DAP post-processing: ``--dap-cases`` phantoms (default 8) of the "realistic" grid with every
  simulated model error (``--quick``: the "tiny" grid, left/right swap, gonads in the orbit and a
  stray fragment).
Timings are wall clock of the whole command: the sequential loop, then the command run against a
LocalCluster of 1 and of 2 workers started beforehand (``--scheduler``), whose start is timed apart
and added in the "with the cluster start" line (what ``--workers N`` costs on top). Printed as ratios:
``speed-up 2 vs 1 worker = t(1 worker) / t(2 workers)`` and ``overhead of the Dask path =
t(1 worker) / t(sequential) - 1`` (goal <= 10 %). On a shared machine the speed-up is bounded by
the free cores; on small cases the start (worker processes importing the toolkit) dominates.
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


def write_cc_cases(folder: Path, count: int, quick: bool) -> None:
    from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask

    spacing_ijk = (0.8, 0.8, 2.0)
    spacing_kji = spacing_ijk[::-1]
    shape_kji, n, radii = ((48, 96, 96), 6, (2.5, 6.0)) if quick else ((160, 256, 256), 12, (3.0, 12.0))
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


def write_dap_cases(folder: Path, count: int, size: str) -> None:
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.simulated_model_errors import inject_model_errors

    for seed in range(count):
        sex = "F" if seed % 2 else "M"
        phantom = make_phantom(size, seed=seed, sex=sex, orientation="LPS")
        kinds = ["left_right_swap", "gonads_in_orbit", "stray_fragment"] if size == "tiny" else None
        corrupted = inject_model_errors(phantom.labels, kinds, sex=sex)
        write_volume(corrupted.labels, folder / "labels" / f"case{seed:03d}.nii.gz")


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


def report(name: str, times: dict[str, float], start: dict[int, float]) -> None:
    sequential, one, two = times["sequential"], times["1 worker"], times["2 workers"]
    print(f"\n{name}")
    for key, seconds in times.items():
        print(f"  {key:10s} {seconds:8.2f} s")
    print(f"  speed-up 2 vs 1 worker      {one / two:6.2f}x (running cluster)")
    print(f"  overhead of the Dask path   {100 * (one / sequential - 1):+6.1f} % (1 worker vs sequential)")
    print(
        f"  with the cluster start      {100 * ((one + start[1]) / sequential - 1):+6.1f} % "
        f"(1 worker); speed-up {(one + start[1]) / (two + start[2]):.2f}x"
    )


def run_all(root: Path, workload, start: dict[int, float]) -> dict[str, float]:
    """Sequential, then on a running LocalCluster of 1 and of 2 workers (its start timed apart)."""

    from AnatomyCommonLib.cluster import start_client

    times = {"sequential": workload(ClusterOptions())}
    for workers in (1, 2):
        started = time.perf_counter()
        client, cluster = start_client(ClusterOptions(workers=workers))
        start.setdefault(workers, time.perf_counter() - started)
        try:
            address = cluster.scheduler_address
            times[f"{workers} worker{'s' if workers > 1 else ''}"] = workload(
                ClusterOptions(scheduler=address)
            )
        finally:
            client.close()
            cluster.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases, a few minutes")
    parser.add_argument("--cc-cases", type=int, default=20)
    parser.add_argument("--dap-cases", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        root = Path(tmp)
        write_cc_cases(root / "cc", args.cc_cases, args.quick)
        write_dap_cases(root / "dap", args.dap_cases, "tiny" if args.quick else "realistic")
        start: dict[int, float] = {}
        cc = run_all(root, lambda options: time_cc(root / "cc", root / "cc_out", options), start)
        dap = run_all(root, lambda options: time_dap(root / "dap", root / "dap_out", options), start)
        print(f"start of the LocalCluster: 1 worker {start[1]:.2f} s, 2 workers {start[2]:.2f} s")
        report(f"CC-Metrics folder mode, {args.cc_cases} cases", cc, start)
        report(f"DAP post-processing, {args.dap_cases} phantoms", dap, start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
