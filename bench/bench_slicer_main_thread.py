"""Main-thread milliseconds of every Slicer module callback, before and after the job-runner split.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:CCMetricsModule .venv/bin/python
bench/bench_slicer_main_thread.py`` (options: ``--size tiny|small|medium|realistic``, default
realistic; ``--steps`` the DAP rules Apply runs, default one, since the main-thread cost of Apply
does not depend on which rules ran; ``--regions`` also builds the Voronoi overlay, about a minute
and 3.4 GB more on the realistic grid; ``--agreement`` also runs CC-Metrics *Compute agreement*
with three raters and one model, twice: before = all of it on the calling thread).

How long (2 shared CPU cores, realistic phantom 512x512x510): 5-15 minutes depending on the load,
most of it the reference import and the background work; peak memory about 3 GB.

What is timed: the modules' own Logic methods (loaded with the PyPI slicer-core package, see
``Testing/slicer_module_logic.py``) that the widgets call on Slicer's main thread, one at a time,
with the job runner idle (each background job has finished before the next callback is timed).
Each callback is timed once (they are deterministic and take long enough for one run).

Reference, measured in the same run on the same data: what the same step cost on the main thread
before the split. For the imports that is Slicer's ``ImportLabelmapToSegmentationNode`` of the
label map through a colour table (the previous ``labelmap_to_segmentation_node``); for the reads,
copying the voxels out of the nodes (``node_to_volume``, ``dap_labels_from_node``, ``node_mask``;
Segment start: plus writing ``ct.nii``); for Show statistics and CC-Metrics Compute, the
computation that ran in the callback (statistics, metrics), timed here on the main thread too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "CCMetricsModule", "Testing"):
    sys.path.insert(0, str(ROOT / folder))

DURATION = "How long: 5-15 minutes on 2 shared CPU cores for the realistic phantom (tiny: seconds)."


def timed(rows: list, label: str, function, *args, before_ms: float | None = None, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    ms = 1000 * (time.perf_counter() - start)
    rows.append((label, ms, before_ms))
    print(f"  {label}: {ms:.0f} ms", flush=True)
    return result


def finished(job):
    update = job.wait(timeout_s=3600)
    if update.state != "succeeded":
        raise SystemExit(f"background job failed: {update.error}")
    return update.result


def ms_of(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return 1000 * (time.perf_counter() - start)


def old_import_ms(labels, scene) -> float:
    """The import as it was: label-map node + colour table + ImportLabelmapToSegmentationNode."""
    import slicer

    from AnatomyCommonLib import slicer_bridge
    from AnatomyCommonLib.anatomy.label_schema import segment_descriptions

    with slicer_bridge.scratch_nodes(scene):
        start = time.perf_counter()
        label_node = slicer_bridge.volume_to_node(labels, "import", labelmap=True)
        present = set(slicer_bridge.present_label_values(labels.array))
        colors = slicer_bridge.color_table_node(
            [d for d in segment_descriptions() if d.value in present], "colors"
        )
        label_node.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "old import")
        node.SetLabelmapConversionColorTableNodeID(colors.GetID())
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(label_node, node):
            raise SystemExit("Slicer's import failed")
        ms = 1000 * (time.perf_counter() - start)
        segments = node.GetSegmentation().GetNumberOfSegments()
    print(
        f"  reference: Slicer's ImportLabelmapToSegmentationNode, {segments} segments: {ms:.0f} ms",
        flush=True,
    )
    return ms


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=DURATION)
    parser.add_argument("--size", default="realistic", choices=["tiny", "small", "medium", "realistic"])
    parser.add_argument("--steps", nargs="+", default=["left_right_split"], help="DAP rules for Apply")
    parser.add_argument("--regions", action="store_true", help="also the Voronoi region overlay")
    parser.add_argument("--lesions", type=int, default=12, help="phantom lesions (CC-Metrics reference)")
    parser.add_argument("--agreement", action="store_true", help="also the multi-rater Compute agreement")
    args = parser.parse_args(argv)
    print(DURATION, flush=True)

    import slicer
    from slicer_module_logic import load_module_file

    from AnatomyCommonLib import slicer_bridge
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from AnatomyCommonLib.background_jobs import ProcessJob
    from AnatomyCommonLib.image_io import write_volume
    from CCMetricsLib import compare
    from CCMetricsLib.mrml_nodes import evaluation_grid, node_mask
    from CCMetricsLib.synthetic import perturb_prediction
    from DAPAtlasLib import mrml_nodes as dap_mrml
    from DAPAtlasLib.mrml_nodes import dap_labels_from_node
    from DAPAtlasLib.statistics import structure_statistics

    # The libraries' own imports (scipy, the rules package ...) happen once per Slicer session, on
    # the first use; they are imported here first so that each callback is timed for its work.
    start = time.perf_counter()
    import DAPAtlasLib.postprocess
    import DAPAtlasLib.statistics  # noqa: F401
    from AnatomyCommonLib import image_io  # noqa: F401

    print(f"library imports (once per session): {1000 * (time.perf_counter() - start):.0f} ms", flush=True)
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()  # registers converters, as in Slicer
    segmentations_logic.SetMRMLScene(scene)

    start = time.perf_counter()
    phantom = make_phantom(args.size, seed=0, sex="M", n_lesions=args.lesions)
    print(f"phantom {args.size} {phantom.ct.shape} in {time.perf_counter() - start:.0f} s", flush=True)
    dap = load_module_file("DAPAtlasModule/DAPAtlasModule.py").DAPAtlasModuleLogic()
    cc = load_module_file("CCMetricsModule/CCMetricsModule.py").CCMetricsModuleLogic()
    ct_node = slicer_bridge.volume_to_node(phantom.ct, "CT")
    model_output = slicer_bridge.volume_to_node(phantom.labels, "model output", labelmap=True)
    rows: list = []

    def check_ms() -> float:  # the requirement check, part of the read callbacks before and now
        return ms_of(dap.checkRequirements, dap.postprocessRequirements())

    print("DAP Atlas Segment (start; the model itself is not run)", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-main-thread-"))
    before = ms_of(lambda: write_volume(slicer_bridge.node_to_volume(ct_node), folder / "ct.nii"))
    started = timed(
        rows,
        "Segment: read the CT, submit",
        dap.startSegmentation,
        ct_node,
        str(ROOT / "no-model"),
        "cpu",
        before_ms=before,
    )
    finished(started).cancel()
    print("DAP Atlas Segment (end: import of the model output)", flush=True)
    before = old_import_ms(phantom.labels, scene)
    write_volume(phantom.labels, folder / "labels.nii")
    process = ProcessJob(
        ["-c", "pass"], work_dir=folder, python=sys.executable, result_path=folder / "labels.nii"
    )
    finished(process.start())
    prepared = finished(dap.startImportModelOutput(process))
    segmentation = timed(
        rows,
        "Segment: attach the model output",
        dap.attachModelOutput,
        ct_node,
        prepared,
        "model",
        before_ms=before,
    )

    print("DAP Atlas Apply", flush=True)
    before_read = (
        check_ms()
        + ms_of(slicer_bridge.node_to_volume, ct_node)
        + ms_of(dap_labels_from_node, model_output, ct_node)
    )
    inputs = timed(
        rows,
        "Apply: read the nodes",
        dap.readApplyInputs,
        ct_node,
        model_output,
        sex="M",
        steps=args.steps,
        before_ms=before_read,
    )
    computed = finished(dap.startApply(inputs, steps=args.steps))
    timed(
        rows,
        "Apply: attach the result + statistics nodes",
        dap.importApplyResult,
        inputs,
        computed,
        before_ms=before,
    )
    # Apply again on the same model output: the result node is refilled (its segments replaced).
    # Before, Slicer erased each old segment's label from the shared layer, then imported again.
    scratch = dap_mrml.attach_dap_segments(dap_mrml.prepare_dap_segments(computed.result.labels), "scratch")
    erase_ms = ms_of(scratch.GetSegmentation().RemoveAllSegments)
    scene.RemoveNode(scratch)
    print(f"  reference: removing the 120 segments the way Slicer does: {erase_ms:.0f} ms", flush=True)
    computed = finished(dap.startApply(inputs, steps=args.steps))
    timed(
        rows,
        "Apply again: attach, replacing the previous result",
        dap.importApplyResult,
        inputs,
        computed,
        before_ms=before + erase_ms,
    )

    print("DAP Atlas Show statistics", flush=True)
    start = time.perf_counter()
    structure_statistics(phantom.labels, phantom.ct)
    before = 1000 * (time.perf_counter() - start)
    before_read = (
        check_ms()
        + ms_of(slicer_bridge.node_to_volume, ct_node)
        + ms_of(dap_labels_from_node, segmentation, ct_node)
    )
    inputs = timed(
        rows,
        "Show statistics: read the nodes",
        dap.readStatisticsInputs,
        ct_node,
        segmentation,
        before_ms=before_read,
    )
    statistics = finished(dap.startStatistics(inputs))
    timed(
        rows,
        "Show statistics: table + chart nodes",
        dap.importStatistics,
        inputs,
        statistics,
        before_ms=before,
    )

    print("CC-Metrics Compute", flush=True)
    reference = phantom.lesions.with_array((phantom.lesions.array > 0).astype(np.uint8))
    prediction, _ = perturb_prediction(
        reference.array, missed=2, dilated=2, eroded=2, shifted=2, spacing=reference.spacing_kji_mm, seed=1
    )
    reference_node = slicer_bridge.volume_to_node(reference, "reference", labelmap=True)
    prediction_node = slicer_bridge.volume_to_node(
        reference.with_array(prediction), "prediction", labelmap=True
    )
    start = time.perf_counter()
    compare(reference, {"prediction": reference.with_array(prediction)})
    before = 1000 * (time.perf_counter() - start)
    grid = evaluation_grid(reference_node)
    before_read = check_ms() + ms_of(
        lambda: [node_mask(node, grid) for node in (reference_node, prediction_node)]
    )
    cc_inputs = timed(
        rows,
        "Compute: read the masks",
        cc.readInputs,
        reference_node,
        [prediction_node],
        before_ms=before_read,
    )
    cc_computed = finished(cc.startCompute(cc_inputs))
    timed(rows, "Compute: tables", cc.showComputed, cc_computed, before_ms=before)
    if args.regions:
        evaluation, prepared_regions, n = finished(cc.startRegions())
        timed(rows, f"Show regions: attach {n} regions", cc.showRegionMap, evaluation, prepared_regions, n)
    if args.agreement:
        print("CC-Metrics Compute agreement (3 raters, 1 model)", flush=True)
        rater_nodes = [reference_node]
        for seed in (2, 3):
            rater, _ = perturb_prediction(
                reference.array, dilated=3, eroded=3, shifted=2, spacing=reference.spacing_kji_mm, seed=seed
            )
            rater_nodes.append(
                slicer_bridge.volume_to_node(reference.with_array(rater), f"rater {seed}", labelmap=True)
            )
        # before: everything in the callback, as the module did it (same nodes, result nodes refilled)
        before = ms_of(cc.processMultiRater, rater_nodes, [prediction_node])
        agreement_inputs = timed(
            rows,
            "Compute agreement: read the nodes",
            cc.readMultiRaterInputs,
            rater_nodes,
            [prediction_node],
            before_ms=before,
        )
        agreement = finished(cc.startMultiRater(agreement_inputs))
        timed(
            rows,
            "Compute agreement: tables + consensus node",
            cc.showMultiRater,
            agreement,
            before_ms=before,
        )

    for worker_owner in (dap, cc):
        worker_owner._worker.stop(timeout_s=60)
    print(f"\nMain-thread time per callback ({args.size} phantom {phantom.ct.shape}, one run each):")
    print("| callback | main thread (ms) | before, same run (ms) | before / now |")
    print("|---|---|---|---|")
    for label, ms, before_ms in rows:
        ratio = f"{before_ms / ms:.0f}x" if before_ms else "-"
        print(f"| {label} | {ms:.0f} | {f'{before_ms:.0f}' if before_ms else '-'} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
