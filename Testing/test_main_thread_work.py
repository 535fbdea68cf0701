"""What each module action runs on the main thread: no heavy computation, only prepared objects attached.

The actions run as the widgets run them: the module's own Logic methods (loaded with slicer-core,
see ``slicer_module_logic``) read the nodes, submit the work to the module's job runner, and attach
the job's result. The heavy library functions (rules, statistics, metrics, Voronoi regions, file
reading and writing, building segments from a label map) are wrapped to record the thread that
runs them. Oracles: ``threading.main_thread()``; object identity of the segments in the scene with
the ones the job built; the table rows equal the rows the job computed. No timings (see
``bench/bench_slicer_main_thread.py`` for the milliseconds).
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict

import numpy as np
import pytest
from slicer_module_logic import load_module_file

import AnatomyCommonLib.image_io as image_io
import CCMetricsLib.mrml_nodes as cc_mrml
import CCMetricsLib.multirater as cc_multirater
import DAPAtlasLib.input_checks as dap_input_checks
import DAPAtlasLib.mrml_nodes as dap_mrml
import DAPAtlasLib.postprocess as dap_postprocess
import DAPAtlasLib.statistics as dap_statistics
from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.background_jobs import ProcessJob
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.mrml

#: (module, function name) of the heavy work; none of it may run on the main thread.
HEAVY = [
    (dap_postprocess, "postprocess"),
    (dap_statistics, "structure_statistics"),
    (cc_mrml, "compare"),
    (cc_mrml, "voronoi_regions"),
    (cc_mrml, "multirater_agreement"),
    (cc_multirater, "staple_consensus"),
    (cc_multirater, "compare"),  # CC-Dice of each pair and model (same key as the metrics' compare)
    (image_io, "read_labelmap"),
    (image_io, "write_volume"),
    (slicer_bridge, "prepare_segments"),
    (slicer_bridge, "prepare_volume"),  # the consensus voxels into a vtkImageData
    (dap_input_checks, "check_ct"),
    # copies of voxels out of nodes: planned on the main thread, made in the job
    (slicer_bridge.VolumeSnapshot, "to_volume"),
    (slicer_bridge.LabelmapRead, "read"),
    (dap_mrml.DapLabelsRead, "read"),
]


@pytest.fixture
def calls(monkeypatch):
    """Function name -> the threads that ran it (recorded from here on)."""
    record: dict[str, list[threading.Thread]] = defaultdict(list)
    for module, name in HEAVY:
        original = getattr(module, name)
        key = f"{module.__name__}.{name}" if isinstance(module, type) else name

        def wrapper(*args, _original=original, _key=key, **kwargs):
            record[_key].append(threading.current_thread())
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
    return record


@pytest.fixture
def dap_logic(mrml_scene, monkeypatch):
    logic = load_module_file("DAPAtlasModule/DAPAtlasModule.py", monkeypatch).DAPAtlasModuleLogic()
    yield logic
    if getattr(logic, "_worker", None) is not None:
        logic._worker.stop(timeout_s=60)


@pytest.fixture
def cc_logic(mrml_scene, monkeypatch):
    logic = load_module_file("CCMetricsModule/CCMetricsModule.py", monkeypatch).CCMetricsModuleLogic()
    yield logic
    if getattr(logic, "_worker", None) is not None:
        logic._worker.stop(timeout_s=60)


def run(job):
    """The widget's timer: poll until the job ends (on this, the main thread); the ending update."""
    update = job.wait(timeout_s=600)
    assert update.state == "succeeded", update.error
    return update


def assert_only_in(calls, worker, *expected):
    assert set(expected) <= set(calls), f"not run at all: {set(expected) - set(calls)}"
    ran_on = {name: {t.name for t in threads} for name, threads in calls.items()}
    assert all(t is worker for threads in calls.values() for t in threads), ran_on
    assert threading.main_thread() is threading.current_thread()


def assert_attached(segmentation_node, prepared):
    """The node holds exactly the prepared vtkSegment objects, all on the prepared layer."""
    segmentation = segmentation_node.GetSegmentation()
    import slicer

    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    in_scene = [segmentation.GetNthSegment(n) for n in range(segmentation.GetNumberOfSegments())]
    assert len(in_scene) == len(prepared) > 0
    assert all(a is b for a, (_, b) in zip(in_scene, prepared.segments, strict=True))
    assert all(segment.GetRepresentation(representation) is prepared.layer for segment in in_scene)


def test_dap_apply_statistics_and_segment_import_do_their_work_off_the_main_thread(
    dap_logic, mrml_scene, calls, tmp_path
):
    p = make_phantom("tiny", seed=0, sex="M")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT")
    label_node = slicer_bridge.volume_to_node(p.labels, "model output", labelmap=True)
    calls.clear()

    # Apply: read the nodes (main), rules + statistics + segments (worker), attach (main)
    inputs = dap_logic.readApplyInputs(ct_node, label_node, sex="M")
    computed = run(dap_logic.startApply(inputs)).result
    result = dap_logic.importApplyResult(inputs, computed)
    worker = dap_logic._worker.thread
    assert_only_in(
        calls,
        worker,
        "postprocess",
        "structure_statistics",
        "prepare_segments",
        "check_ct",
        "VolumeSnapshot.to_volume",  # the CT and the label-map model output
    )
    assert_attached(result["segmentationNode"], computed.segments)
    assert result["tableNode"].GetNumberOfRows() == len(computed.statistics)

    # Show statistics
    calls.clear()
    inputs = dap_logic.readStatisticsInputs(ct_node, result["segmentationNode"])
    statistics = run(dap_logic.startStatistics(inputs)).result
    table, _ = dap_logic.importStatistics(inputs, statistics)
    assert_only_in(
        calls,
        worker,
        "structure_statistics",
        "VolumeSnapshot.to_volume",
        "LabelmapRead.read",
        "DapLabelsRead.read",
    )
    rows = slicer_bridge.table_node_to_rows(table)
    assert [row["name"] for row in rows] == [s.name for s in statistics]

    # end of Segment: a finished model process's label map is read and built into segments
    folder = tmp_path / "job"
    folder.mkdir()
    image_io.write_volume(p.labels, folder / "labels.nii")
    process = ProcessJob(
        ["-c", "pass"], work_dir=folder, python=sys.executable, result_path=folder / "labels.nii"
    )
    run(process.start())
    calls.clear()
    prepared = run(dap_logic.startImportModelOutput(process)).result
    node = dap_logic.attachModelOutput(ct_node, prepared, "model output")
    assert_only_in(calls, worker, "read_labelmap", "prepare_segments")
    assert_attached(node, prepared)
    assert not folder.exists()  # the job folder is removed in the worker after reading
    labels, _ = slicer_bridge.segmentation_node_to_labelmap(node, ct_node)
    np.testing.assert_array_equal(labels.array, p.labels.array)


def test_dap_segment_start_writes_the_ct_off_the_main_thread(dap_logic, mrml_scene, calls, tmp_path):
    p = make_phantom("tiny", seed=0, sex="M")
    ct_node = slicer_bridge.volume_to_node(p.ct, "CT")
    calls.clear()
    process = run(dap_logic.startSegmentation(ct_node, str(tmp_path / "no-model"), "cpu")).result
    try:
        assert_only_in(calls, dap_logic._worker.thread, "write_volume", "VolumeSnapshot.to_volume")
        assert isinstance(process, ProcessJob) and (process.work_dir / "ct.nii").is_file()
    finally:
        process.cancel()
    assert not process.work_dir.exists()


def _lesion_masks():
    reference = np.zeros((24, 30, 36), np.uint8)
    reference[4:9, 5:10, 4:10] = 1
    reference[14:20, 18:25, 22:30] = 1
    prediction = reference.copy()
    prediction[14:20] = 0  # the second lesion is missed
    prediction[2:5, 2:4, 2:4] = 1  # a false positive
    matrix = np.diag([0.8, 0.7, 2.0, 1.0])
    return Volume(reference, matrix), Volume(prediction, matrix)


def test_cc_metrics_compute_and_regions_do_their_work_off_the_main_thread(cc_logic, mrml_scene, calls):
    reference, prediction = _lesion_masks()
    reference_node = slicer_bridge.volume_to_node(reference, "Reference", labelmap=True)
    # a segmentation prediction: its segment is exported (planned here, read in the job)
    prediction_node = slicer_bridge.labelmap_to_segmentation_node(
        prediction, name="Prediction", reference_volume_node=reference_node
    )
    calls.clear()

    inputs = cc_logic.readInputs(reference_node, [prediction_node])
    computed = run(cc_logic.startCompute(inputs)).result
    result = cc_logic.showComputed(computed)
    worker = cc_logic._worker.thread
    assert_only_in(calls, worker, "compare", "VolumeSnapshot.to_volume", "LabelmapRead.read")
    shown = slicer_bridge.table_node_to_rows(result.component_table)
    assert (
        [row["detected"] for row in shown]
        == [row["detected"] for row in computed.component_rows]
        == [1.0, 0.0]
    )

    calls.clear()
    evaluation, prepared, n = run(cc_logic.startRegions()).result
    cc_logic.showRegionMap(evaluation, prepared, n)
    assert_only_in(calls, worker, "voronoi_regions", "prepare_segments")
    assert n == 2
    assert_attached(result.regions, prepared)


def test_cc_metrics_cancel_before_the_first_prediction_changes_no_table(cc_logic, mrml_scene):
    reference, prediction = _lesion_masks()
    reference_node = slicer_bridge.volume_to_node(reference, "Reference", labelmap=True)
    prediction_node = slicer_bridge.volume_to_node(prediction, "Prediction", labelmap=True)
    inputs = cc_logic.readInputs(reference_node, [prediction_node])
    gate = threading.Event()
    blocker = cc_logic.submit(lambda job: gate.wait(30), "hold the worker")
    job = cc_logic.startCompute(inputs)
    job.cancel()  # still queued behind the blocker: ends at once, never runs
    gate.set()
    blocker.wait(timeout_s=60)
    update = job.wait(timeout_s=60)
    assert update.state == "cancelled" and update.result is None
    assert mrml_scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 0


def _rater_nodes():
    """Three raters (a segmentation and two label maps), a repeat session and a model, one grid."""
    reference, _ = _lesion_masks()
    a = reference.array.astype(bool)
    b = np.roll(a, 1, axis=2)
    c = a.copy()
    c[4:9, 5:10, 4:6] = False  # rater C leaves out part of the first lesion
    ct_node = slicer_bridge.volume_to_node(reference.with_array(np.zeros(a.shape, np.int16)), "CT")
    rater_a = slicer_bridge.labelmap_to_segmentation_node(
        reference.with_array(a.astype(np.uint8)),
        [slicer_bridge.LabelDescription(1, "lesions")],
        "Rater A",
        reference_volume_node=ct_node,
    )
    label_nodes = [
        slicer_bridge.volume_to_node(reference.with_array(mask.astype(np.uint8)), name, labelmap=True)
        for name, mask in (("Rater B", b), ("Rater C", c), ("A again", np.roll(a, 1, axis=1)), ("Model", a))
    ]
    return ct_node, [rater_a, *label_nodes[:2]], label_nodes[2], label_nodes[3]


def test_cc_metrics_agreement_does_its_work_off_the_main_thread(cc_logic, mrml_scene, calls):
    ct_node, raters, repeat, model = _rater_nodes()
    calls.clear()

    # Compute agreement: read the nodes (main), masks + agreement + STAPLE + consensus image (worker),
    # tables and consensus node (main)
    inputs = cc_logic.readMultiRaterInputs(raters, [model], [repeat], gridNode=ct_node)
    assert not calls, f"ran on the main thread while reading the nodes: {set(calls)}"
    job = cc_logic.startMultiRater(inputs)
    update = run(job)
    computed = update.result
    out = cc_logic.showMultiRater(computed)
    worker = cc_logic._worker.thread
    assert_only_in(
        calls,
        worker,
        "multirater_agreement",
        "staple_consensus",
        "compare",
        "prepare_volume",
        "VolumeSnapshot.to_volume",  # the label-map raters, repeat and model
        "LabelmapRead.read",  # the segmentation rater's segment
    )
    # progress went through the job: one report per pair (3 inter + 1 intra), STAPLE and the model
    steps = [message for _, message in job.progress_log]
    assert sum("pair" in m for m in steps) == 4 and any("STAPLE" in m for m in steps)
    assert any("Model" in m for m in steps)

    # the scene holds what the job built: the very consensus image, the job's rows and result
    assert out.result is computed.result
    assert out.consensus.GetImageData() is computed.consensus.image
    assert slicer_bridge.table_node_to_rows(out.pair_table) == computed.pair_rows
    shown_models = slicer_bridge.table_node_to_rows(out.model_table)
    assert [row["model"] for row in shown_models] == [row["model"] for row in computed.model_rows]
    assert [row["model"] for row in shown_models] == ["Model"]
    assert shown_models[0]["dice"] == computed.model_rows[0]["dice"]


def test_cc_metrics_agreement_cancel_stops_at_the_next_pair_and_changes_nothing(
    cc_logic, mrml_scene, calls, monkeypatch
):
    ct_node, raters, repeat, model = _rater_nodes()
    inputs = cc_logic.readMultiRaterInputs(raters, [model], [repeat], gridNode=ct_node)
    nodes_before = mrml_scene.GetNumberOfNodes()
    recorded_compare = cc_multirater.compare  # the fixture's recording wrapper

    def cancel_during_the_first_pair(*args, **kwargs):
        result = recorded_compare(*args, **kwargs)
        job.cancel()  # as the Cancel button would, while the first pair is being scored
        return result

    monkeypatch.setattr(cc_multirater, "compare", cancel_during_the_first_pair)
    gate = threading.Event()
    blocker = cc_logic.submit(lambda job: gate.wait(30), "hold the worker until `job` is bound")
    calls.clear()
    job = cc_logic.startMultiRater(inputs)
    gate.set()
    blocker.wait(timeout_s=60)
    update = job.wait(timeout_s=600)
    assert update.state == "cancelled" and update.result is None
    # the first pair ends (both CC-Dice directions), then no further pair, no STAPLE, no model
    assert len(calls["compare"]) == 2 and "staple_consensus" not in calls
    assert mrml_scene.GetNumberOfNodes() == nodes_before
