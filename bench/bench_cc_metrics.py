"""Benchmark of CCMetricsLib against the authors' CCMetrics package and MONAI's global metrics.

Run: ``PYTHONPATH=AnatomyCommon:CCMetricsModule .venv/bin/python bench/bench_cc_metrics.py``
(options: ``--skip-reference-large`` to leave out the slow reference run on the large case,
``--cases small`` / ``large``, ``--quick``: only the large case, only ours (metrics and region
map), one repeat).

How long it takes (2 shared CPU cores): ``--quick`` 1-3 minutes (the region map is most of it);
the full run about 25 minutes, most of it the reference package on the large case
(``--skip-reference-large``: about 6 minutes).

Cases
- small: the case of shared/reference/notes_cc_metrics_reference.md: 256x256x200 voxels (1 mm),
  20 spheres (radius 3-18, gaps >= 6), prediction with 3 missed, 4 dilated by 2, 3 eroded by 1,
  3 shifted by (2, 1, 0), 7 unchanged components and 3 false-positive spheres (radius 6).
- large: whole-body size, 512x512x500 voxels at 0.8x0.8x2 mm, 60 spheres of 3-60 mm diameter
  (gaps >= 8 mm), the same mix of errors scaled to 60 lesions (9 missed, 12 dilated, 9 eroded,
  9 shifted, 9 false positives of radius 5 mm).

Timings (one process, same run, so the ratios compare like with like):
- ours: ``CCMetricsLib.evaluate`` with all six metrics (Dice, IoU, NSD, HD95, HD, ASSD), per
  component, their CC means, the global metrics, Panoptic Quality and Lesion Dice together;
- reference: CCMetrics 0.0.3 ``CCDiceMetric``, ``CCSurfaceDiceMetric``, ``CCHausdorffDistance95Metric``
  and ``CCSurfaceDistanceMetric`` each called separately, as a user runs them (it has no spacing:
  voxel units);
- MONAI: global ``DiceMetric``, ``SurfaceDiceMetric``, ``HausdorffDistanceMetric(percentile=95)``
  with ``spacing=``.
- region map: ``CCMetricsLib.voronoi_regions`` (the ``--regions`` output, the Slicer overlay), timed
  against the metrics run of the same case (target <= 5x) with its own peak memory growth (target
  < 1.5 GB over the input masks on the large case).
Peak memory growth of ours: the larger of the resident set size growth (sampled every 2 ms by a
thread, inputs already allocated, first call of the process) and tracemalloc's peak of the
allocations made during the call.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

#: what a run costs, printed at the start and in --help
DURATION = (
    "How long: --quick 1-3 minutes; the full run about 25 minutes on 2 CPU cores, most of it the "
    "reference package on the large case (--skip-reference-large: about 6 minutes)."
)

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))

from CCMetricsLib import evaluate, voronoi_regions  # noqa: E402
from CCMetricsLib.synthetic import benchmark_case, perturb_prediction, random_spheres, sphere_mask  # noqa: E402

warnings.filterwarnings("ignore")


class PeakRss:
    """Peak resident memory growth (bytes) while the ``with`` block runs."""

    def __init__(self, interval_s: float = 0.002):
        import psutil

        self.process = psutil.Process()
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval_s)

    def __enter__(self):
        gc.collect()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.growth = self.peak - self.baseline


def large_case(seed: int = 0):
    shape = (500, 512, 512)
    spacing = (2.0, 0.8, 0.8)
    spheres = random_spheres(shape, 60, radius_mm=(1.5, 30.0), gap_mm=8.0, spacing=spacing, seed=seed)
    reference = sphere_mask(shape, spheres, spacing)
    prediction, _ = perturb_prediction(
        reference,
        missed=9,
        dilated=12,
        eroded=9,
        shifted=9,
        false_positives=9,
        false_positive_radius_mm=5.0,
        spacing=spacing,
        seed=seed,
    )
    return reference, prediction, spacing


def time_ours(reference, prediction, spacing, repeats: int):
    """Memory first (a fresh process has not cached freed memory yet): RSS growth sampled by a
    thread and the tracemalloc peak of numpy's allocations; then the median time of ``repeats``
    runs without the sampler (its thread would slow them down)."""
    import tracemalloc

    tracemalloc.start()
    with PeakRss() as memory:
        result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=50.0)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times, cpu_times = [], []
    for _ in range(repeats):
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=50.0)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return (float(np.median(times)), float(np.median(cpu_times))), result, max(memory.growth, traced_peak)


def time_region_map(reference, spacing, corner_block=None):
    """Peak memory growth and wall/CPU time of one full region map (a fresh call, like the metrics).

    ``corner_block=1``: the previous method (the octree split down to single voxels, each decided
    by exact k-d tree distances), for a before/after comparison in the same run.
    """

    from CCMetricsLib import voronoi

    default = voronoi.CORNER_BLOCK
    if corner_block is not None:
        voronoi.CORNER_BLOCK = corner_block
    try:
        return _time_region_map(reference, spacing)
    finally:
        voronoi.CORNER_BLOCK = default


def _time_region_map(reference, spacing):
    """Memory first (sampler thread and tracemalloc), then the time of a second call without them
    (they slow the call down: the sampler takes the GIL every 2 ms), as for the metrics."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    with PeakRss() as memory:
        regions, n = voronoi_regions(reference, spacing, spacing_order="kji")
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del regions
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    regions, n = voronoi_regions(reference, spacing, spacing_order="kji")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    del regions
    return seconds, cpu, max(memory.growth, traced_peak), n


def time_reference_package(reference, prediction):
    import torch
    from CCMetrics import (
        CCDiceMetric,
        CCHausdorffDistance95Metric,
        CCSurfaceDiceMetric,
        CCSurfaceDistanceMetric,
    )

    y = np.stack([~reference, reference])[None].astype(np.float32)
    y_pred = np.stack([~prediction, prediction])[None].astype(np.float32)
    rows = {}
    for name, make in (
        ("dice", lambda: CCDiceMetric()),
        ("nsd", lambda: CCSurfaceDiceMetric(class_thresholds=[1.0])),
        ("hd95", lambda: CCHausdorffDistance95Metric(metric_worst_score=50)),
        ("assd", lambda: CCSurfaceDistanceMetric(metric_worst_score=50, symmetric=True)),
    ):
        metric = make()
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        metric(y_pred, y)
        value = float(metric.cc_aggregate().mean())
        rows[name] = (time.perf_counter() - start, time.process_time() - cpu_start, value)
        print(
            f"  reference package {name}: {rows[name][0]:.1f} s, CPU {rows[name][1]:.1f} s ({value:.5f})",
            flush=True,
        )
        del metric
    del y, y_pred, torch
    return rows


def time_monai(reference, prediction, spacing):
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDiceMetric

    y = torch.from_numpy(np.stack([~reference, reference])[None].astype(np.float32))
    y_pred = torch.from_numpy(np.stack([~prediction, prediction])[None].astype(np.float32))
    rows = {}
    for name, call in (
        ("dice", lambda: DiceMetric(include_background=False)(y_pred, y)),
        ("nsd", lambda: SurfaceDiceMetric([1.0], include_background=False)(y_pred, y, spacing=list(spacing))),
        (
            "hd95",
            lambda: HausdorffDistanceMetric(include_background=False, percentile=95)(
                y_pred, y, spacing=list(spacing)
            ),
        ),
    ):
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        value = float(call())
        rows[name] = (time.perf_counter() - start, time.process_time() - cpu_start, value)
    return rows


def run_case(
    name,
    reference,
    prediction,
    spacing,
    *,
    with_reference: bool,
    repeats: int,
    with_monai: bool = True,
    region_map_before: bool = False,
):
    print(f"\n== {name}: {reference.shape} voxels, spacing {spacing} mm (array order)")
    (ours_s, ours_cpu), result, growth = time_ours(reference, prediction, spacing, repeats)
    print(
        f"ours (6 metrics + CC means + global + PQ + LD): {ours_s:.2f} s (CPU {ours_cpu:.2f} s), "
        f"peak memory growth {growth / 2**20:.0f} MiB"
    )
    cc, std = result.mean, result.standard
    print(
        f"  CC-Dice {cc['dice']:.5f}  CC-NSD {cc['nsd']:.5f}  CC-HD95 {cc['hd95']:.4f}  "
        f"CC-ASSD {cc['assd']:.4f}  "
        f"| Dice {std['dice']:.5f}  NSD {std['nsd']:.5f}  HD95 {std['hd95']:.3f}  "
        f"({result.counts['n_reference_components']} components)"
    )
    region_s, region_cpu, region_growth, n = time_region_map(reference, spacing)
    print(
        f"region map ({n} regions): {region_s:.2f} s (CPU {region_cpu:.2f} s), "
        f"peak memory growth {region_growth / 2**20:.0f} MiB; "
        f"{region_s / ours_s:.1f}x the metrics run, CPU {region_cpu / ours_cpu:.1f}x "
        "(target <= 5x, < 1536 MiB)"
    )
    before_s = before_mib = float("nan")
    if region_map_before:
        before_s, before_cpu, before_growth, _ = time_region_map(reference, spacing, corner_block=1)
        before_mib = before_growth / 2**20
        print(
            f"region map, previous method (octree to single voxels): {before_s:.2f} s "
            f"(CPU {before_cpu:.2f} s), peak memory growth {before_mib:.0f} MiB; "
            f"{before_s / ours_s:.1f}x the metrics run, CPU {before_cpu / ours_cpu:.1f}x; "
            f"now {before_s / region_s:.1f}x faster"
        )
    monai_s = monai_cpu = float("nan")
    if with_monai:
        monai = time_monai(reference, prediction, spacing)
        monai_s = sum(row[0] for row in monai.values())
        monai_cpu = sum(row[1] for row in monai.values())
        print(
            "MONAI global: "
            + ", ".join(f"{k} {t:.2f} s ({v:.5f})" for k, (t, _, v) in monai.items())
            + f"; sum {monai_s:.2f} s (CPU {monai_cpu:.2f} s)"
        )
    summary = {
        "case": name,
        "ours_s": ours_s,
        "ours_cpu_s": ours_cpu,
        "monai_s": monai_s,
        "monai_cpu_s": monai_cpu,
        "memory_mib": growth / 2**20,
        "regions_s": region_s,
        "regions_cpu_s": region_cpu,
        "regions_mib": region_growth / 2**20,
        "regions_before_s": before_s,
        "regions_before_mib": before_mib,
    }
    if with_reference:
        reference_rows = time_reference_package(reference, prediction)
        summary["reference_s"] = sum(row[0] for row in reference_rows.values())
        summary["reference_cpu_s"] = sum(row[1] for row in reference_rows.values())
        print(
            f"reference package (voxel units): sum {summary['reference_s']:.1f} s "
            f"(CPU {summary['reference_cpu_s']:.1f} s)"
        )
    print(
        f"ratio ours / MONAI global: {ours_s / monai_s:.2f} wall, "
        f"{ours_cpu / monai_cpu:.2f} CPU (target <= 2)"
    )
    if with_reference:
        print(
            f"speed-up over the reference package: {summary['reference_s'] / ours_s:.0f}x wall, "
            f"{summary['reference_cpu_s'] / ours_cpu:.0f}x CPU (target >= 30)"
        )
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " " + DURATION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cases", nargs="+", default=["small", "large"], choices=["small", "large"])
    parser.add_argument(
        "--skip-reference-large", action="store_true", help="do not run the package on the large case"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per case (the large case: one less)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="large case, ours only (metrics, region map), one repeat"
    )
    parser.add_argument(
        "--region-map-before",
        action="store_true",
        help="also time the previous region-map method (octree to single voxels) in the same run "
        "(about a minute more on the large case)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.quick:
        args.cases, args.skip_reference_large, args.repeats = ["large"], True, 1
        print("quick mode: large case, ours only, one repeat (about 1-3 minutes on 2 CPU cores)")
    elif "large" in args.cases and not args.skip_reference_large:
        print(
            f"full run: the reference package runs {max(1, args.repeats - 1)} time(s) on the large case; "
            "expect about 25 minutes on 2 CPU cores (--quick: 1-3 minutes, --skip-reference-large: about 6)"
        )
    else:
        print("expect a few minutes on 2 CPU cores (--quick: 1-3 minutes)")
    summaries = []
    if "small" in args.cases:
        reference, prediction, _ = benchmark_case()
        summaries.append(
            run_case(
                "small", reference, prediction, (1.0, 1.0, 1.0), with_reference=True, repeats=args.repeats
            )
        )
        del reference, prediction
    if "large" in args.cases:
        start = time.perf_counter()
        reference, prediction, spacing = large_case()
        print(f"\n(large case built in {time.perf_counter() - start:.0f} s)")
        summaries.append(
            run_case(
                "large",
                reference,
                prediction,
                spacing,
                with_reference=not args.skip_reference_large,
                repeats=max(1, args.repeats - 1),
                with_monai=not args.quick,
                region_map_before=args.region_map_before,
            )
        )
    print("\nwall seconds (CPU seconds in brackets; CPU time is less disturbed by other processes)")
    print(
        "case      ours          MONAI          ours/MONAI    reference         speed-up       peak_MiB"
        "  regions_s  regions_MiB"
    )
    for s in summaries:
        ref, ref_cpu = s.get("reference_s"), s.get("reference_cpu_s")
        ours = f"{s['ours_s']:6.2f} ({s['ours_cpu_s']:5.2f})"
        monai = f"{s['monai_s']:6.2f} ({s['monai_cpu_s']:6.2f})"
        ratio = f"{s['ours_s'] / s['monai_s']:5.2f} ({s['ours_cpu_s'] / s['monai_cpu_s']:4.2f})"
        if ref:
            reference = f"{ref:7.1f} ({ref_cpu:7.1f})"
            speedup = f"{ref / s['ours_s']:5.0f}x ({ref_cpu / s['ours_cpu_s']:4.0f}x)"
        else:
            reference, speedup = f"{'-':>17}", f"{'-':>13}"
        print(
            f"{s['case']:6s} {ours}  {monai}  {ratio}  {reference}  {speedup}  {s['memory_mib']:9.0f}"
            f"  {s['regions_s']:9.2f}  {s['regions_mib']:11.0f}"
        )
    print(f"\nthe benchmark took {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
