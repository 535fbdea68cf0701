"""The web app's glue without a browser: file access limited to the data and output folders, the
sample case, and what each tool hands to the page, checked against computations made here.

The page itself (Chromium) is tested in ``Testing/web/``; these tests need no trame except the
ones marked for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from anatomy_web.data_folder import DataFolder, FileTooLargeError, PathOutsideFolderError, output_path
from anatomy_web.workbench import SAMPLE_FILES, NothingLoadedError, Workbench
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.errors import AnatomyToolkitError, GeometryMismatchError, UnsupportedFormatError
from AnatomyCommonLib.image_io import read_volume, write_volume
from AnatomyCommonLib.volume import Volume

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A workbench with the tiny sample loaded (fast: 6 mm voxels)."""
    out = tmp_path_factory.mktemp("out")
    data = tmp_path_factory.mktemp("data")
    bench = Workbench(data, out, sample_size="tiny")
    bench.load_sample()
    return bench


# ---------------------------------------------------------------- data folder
@pytest.mark.parametrize(
    "name", ["../secret.nii.gz", "sub/../../secret.nii.gz", "/etc/passwd", "..", "sub/../../../etc/passwd"]
)
def test_names_leading_out_of_the_data_folder_are_refused(tmp_path, name):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "secret.nii.gz").write_bytes(b"x")
    with pytest.raises(PathOutsideFolderError):
        DataFolder(tmp_path / "data").resolve(name)


def test_a_symlink_out_of_the_data_folder_is_refused_and_not_listed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "outside.nii.gz"
    outside.write_bytes(b"x")
    (data / "link.nii.gz").symlink_to(outside)
    folder = DataFolder(data)
    with pytest.raises(PathOutsideFolderError):
        folder.resolve("link.nii.gz")
    assert [f.name for f in folder.list_images()] == []


def test_listing_shows_image_files_only_sorted_with_sizes(tmp_path):
    (tmp_path / "case1").mkdir()
    for name, size in [
        ("b.nii.gz", 3),
        ("case1/a.nrrd", 5),
        ("notes.txt", 1),
        (".hidden.nii", 2),
        ("c.mha", 7),
    ]:
        (tmp_path / name).write_bytes(b"x" * size)
    listed = DataFolder(tmp_path).list_images()
    assert [(f.name, f.size_bytes) for f in listed] == [("b.nii.gz", 3), ("c.mha", 7), ("case1/a.nrrd", 5)]


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    (tmp_path / "big.nii.gz").write_bytes(b"x" * 2048)
    with pytest.raises(FileTooLargeError):
        DataFolder(tmp_path, max_bytes=1024).resolve("big.nii.gz")
    assert DataFolder(tmp_path, max_bytes=4096).resolve("big.nii.gz") == (tmp_path / "big.nii.gz").resolve()


@pytest.mark.parametrize("relative", ["../x.txt", "/tmp/x.txt", "a/../../x.txt"])
def test_output_paths_stay_in_the_output_folder(tmp_path, relative):
    with pytest.raises(PathOutsideFolderError):
        output_path(tmp_path / "out", relative)


def test_output_path_inside_is_created(tmp_path):
    path = output_path(tmp_path / "out", "sample/ct.nii.gz")
    assert path == (tmp_path / "out" / "sample" / "ct.nii.gz").resolve() and path.parent.is_dir()


# ---------------------------------------------------------------- loading
def test_sample_case_is_written_under_the_output_folder_and_on_one_grid(sample):
    written = sorted(p.relative_to(sample.output).as_posix() for p in sample.output.rglob("*") if p.is_file())
    assert written == sorted(f"sample/{name}" for name in SAMPLE_FILES.values())
    ct = sample.volumes["ct"]
    for role, volume in sample.volumes.items():
        assert volume.shape == ct.shape and np.allclose(volume.ijk_to_ras, ct.ijk_to_ras), role
        on_disk = read_volume(sample.output / "sample" / SAMPLE_FILES[role])
        assert np.array_equal(on_disk.array, volume.array), role
    # the prediction and the DAP model output carry errors: they differ from the references
    assert not np.array_equal(sample.volumes["prediction"].array > 0, sample.volumes["lesions"].array > 0)
    assert not np.array_equal(sample.volumes["dap_input"].array, sample.volumes["labels"].array)


def test_a_garbage_file_gives_a_typed_error_and_keeps_what_was_loaded(tmp_path, sample):
    bench = Workbench(tmp_path, tmp_path / "out", sample_size="tiny")
    bench.volumes, bench.sources = dict(sample.volumes), dict(sample.sources)
    (tmp_path / "broken.nii.gz").write_bytes(b"this is not an image" * 50)
    with pytest.raises(UnsupportedFormatError):
        bench.open_file("broken.nii.gz", "ct")
    assert bench.volumes["ct"] is sample.volumes["ct"]


def test_a_label_map_on_another_grid_is_refused(tmp_path, sample):
    bench = Workbench(tmp_path, tmp_path / "out", sample_size="tiny")
    write_volume(sample.volumes["ct"], tmp_path / "ct.nii.gz")
    labels = sample.volumes["labels"]
    cropped = Volume(array=labels.array[:, :, :-2].copy(), ijk_to_ras=labels.ijk_to_ras)
    write_volume(cropped, tmp_path / "labels_cropped.nii.gz")
    bench.open_file("ct.nii.gz", "ct")
    with pytest.raises(GeometryMismatchError):
        bench.open_file("labels_cropped.nii.gz", "labels")
    assert set(bench.volumes) == {"ct"}


def test_tools_before_loading_say_what_to_do(tmp_path):
    bench = Workbench(tmp_path, tmp_path / "out")
    for call in (bench.dap_postprocess, bench.cc_evaluate, lambda: bench.limis_command("segment the liver")):
        with pytest.raises(NothingLoadedError, match="Load sample"):
            call()


def test_opening_a_ct_then_its_labels_from_the_data_folder(tmp_path, sample):
    bench = Workbench(tmp_path, tmp_path / "out")
    write_volume(sample.volumes["ct"], tmp_path / "ct.nii.gz")
    write_volume(sample.volumes["labels"], tmp_path / "labels.nii.gz")
    bench.open_file("ct.nii.gz", "ct")
    bench.open_file("labels.nii.gz", "labels")
    assert np.array_equal(bench.volumes["labels"].array, sample.volumes["labels"].array)
    assert bench.sources == {"ct": "ct.nii.gz", "labels": "labels.nii.gz"}


# ---------------------------------------------------------------- tools
def _liver_slice(bench):
    session = bench.limis_session()
    liver = bench.volumes["labels"].array == label_id("liver")
    areas = [session.geometry.extract(liver, k).sum() for k in range(session.geometry.n_slices)]
    return int(np.argmax(areas)), liver


def test_limis_without_weights_segments_the_liver_with_the_baseline_and_reverts(sample):
    index, liver = _liver_slice(sample)
    status = sample.limis_command("segment the liver", slice_index=index)
    assert status.ok and "baseline" in status.reply and status.slice_index == index
    assert [h["index"] for h in status.history] == [0] and status.history[0]["command"] == "segment the liver"
    # shown: the pending proposal (default adaptation) as a preview
    mask = status.changed_masks[index]
    assert status.pending == "proposal"
    assert np.array_equal(mask, sample.limis.active.displayed.mask)
    truth = sample.limis.geometry.extract(liver, index)
    dice = 2 * np.logical_and(mask, truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.6, dice
    step0 = sample.limis.active.steps[0].mask.copy()
    accepted = sample.limis_command("accept")
    assert [h["current"] for h in accepted.history] == [False, True]
    reverted = sample.limis_revert(0)
    assert [h["current"] for h in reverted.history][:2] == [True, False]
    assert np.array_equal(reverted.changed_masks[index], step0)


def test_a_dragged_box_is_a_new_step_segmented_inside_it(sample):
    index, _ = _liver_slice(sample)
    sample.limis_command("segment the liver", slice_index=index)
    steps = len(sample.limis_history())
    rows, columns = sample.limis.geometry.image_shape
    box = (columns * 0.25, rows * 0.25, columns * 0.6, rows * 0.7)
    status = sample.limis_set_box(box, index)
    assert status.ok and len(status.history) == steps + 1 and status.history[-1]["current"]
    mask = status.changed_masks[index]
    x0, y0, x1, y1 = (
        int(np.floor(box[0])),
        int(np.floor(box[1])),
        int(np.ceil(box[2])),
        int(np.ceil(box[3])),
    )
    outside = mask.copy()
    outside[y0:y1, x0:x1] = False
    assert mask.any() and not outside.any()  # the model only sees the box


def test_a_click_in_the_view_lands_on_its_pixel_and_slice(sample):
    index, _ = _liver_slice(sample)
    status = sample.limis_command("segment the liver", slice_index=index)
    rows, columns = np.nonzero(status.changed_masks[index])
    x, y = columns[len(columns) // 2] + 0.5, rows[len(rows) // 2] + 0.5  # a pixel of the mask
    ras = sample.limis.geometry.pixel_to_ras([(x, y)], index)[0]
    clicked = sample.limis_click(ras, positive=False)
    assert clicked.ok and clicked.slice_index == index and "negative click" in clicked.history[-1]["command"]
    assert not clicked.changed_masks[index][int(y), int(x)]


def test_a_limis_command_that_fails_changes_nothing(sample):
    before = sample.limis_history()
    status = sample.limis_command("revert to step 99")
    assert not status.ok and status.history == before


def test_dap_rules_give_statistics_that_match_a_voxel_count(sample):
    result = sample.dap_postprocess()
    liver_id = label_id("liver")
    row = next(r for r in sample.dap_stats if r["label"] == liver_id)
    voxel_ml = float(np.prod(sample.volumes["ct"].spacing_mm)) / 1000.0
    expected = np.count_nonzero(result.labels.array == liver_id) * voxel_ml
    assert row["name"].lower() == "liver" and row["volume_ml"] == pytest.approx(expected, rel=1e-3)
    table = {r["structure"]: r for r in sample.dap_table_rows()}
    assert table["liver"]["volume_ml"] == row["volume_ml"] and "kidney left" in table
    # after the rules, LIMIS takes its boxes from the post-processed map
    assert sample.atlas_labels() is result.labels


def test_cc_metrics_counts_and_regions_match_scipy_components(sample):
    sample.cc_evaluate()
    reference = sample.volumes["lesions"].array > 0
    _, n_components = ndimage.label(reference, structure=np.ones((3, 3, 3)))
    summary = sample.cc_summary_rows()[0]
    assert summary["n_reference_components"] == n_components
    rows = sample.cc_component_rows()
    assert [r["component_id"] for r in rows] == list(range(1, n_components + 1))
    regions, n = sample.cc_regions
    assert n == n_components and set(np.unique(regions.array)) == set(range(1, n + 1))
    # each lesion lies in its own region
    labelled, _ = ndimage.label(reference, structure=np.ones((3, 3, 3)))
    for component in range(1, n + 1):
        assert len(np.unique(regions.array[labelled == component])) == 1


# ---------------------------------------------------------------- command line
def _run(*args, timeout=60):
    env = dict(os.environ)
    roots = ["WebApp", "AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"]
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / r) for r in roots)
    return subprocess.run(
        [sys.executable, "-m", "anatomy_web", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_help_shows_the_defaults():
    result = _run("--help")
    assert result.returncode == 0
    for text in ("--port", "8765", "--host", "127.0.0.1", "--data", "--output", "--sample-size", "small"):
        assert text in result.stdout


@pytest.mark.parametrize("args", [["--port", "70000"], ["--data", "/nonexistent/folder"]])
def test_bad_options_are_one_line_errors(tmp_path, args):
    result = _run(*args, "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "error" in result.stderr


def test_errors_are_toolkit_errors():
    assert issubclass(PathOutsideFolderError, AnatomyToolkitError)
    assert issubclass(FileTooLargeError, AnatomyToolkitError)


# ---------------------------------------------------------------- MRML display (trame-slicer)
def _scene_check(name: str, tmp_path: Path) -> None:
    """``Testing/web_app_scene_checks.py <name>`` in its own process (trame-slicer's OpenGL and torch's
    triton cannot share one)."""
    pytest.importorskip("trame_slicer")
    env = dict(os.environ)
    roots = ["WebApp", "AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"]
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / r) for r in roots)
    script = ROOT / "Testing" / "web_app_scene_checks.py"
    result = subprocess.run(
        [sys.executable, str(script), name, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_limis_mask_lands_in_the_segment_of_the_scene(tmp_path):
    _scene_check("limis", tmp_path)


def test_views_render_by_priority_once_per_request(tmp_path):
    _scene_check("render_order", tmp_path)


@pytest.mark.slow
def test_the_page_handlers_walk_the_three_tools_without_a_browser(tmp_path):
    """Contract hooks in the page, errors in the status line, each tool's result in the scene."""
    _scene_check("walk", tmp_path)
