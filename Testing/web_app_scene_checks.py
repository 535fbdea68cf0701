"""The web app's MRML side, run in its own process by ``test_web_app_glue.py``.

trame-slicer loads VTK's OpenGL rendering (Mesa's LLVM); importing torch/triton later in the same
process crashes it, so the test suite (one process) runs these checks as a subprocess:

    python Testing/web_app_scene_checks.py limis|walk TMPDIR
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from pathlib import Path

import numpy as np
from anatomy_web.app import AnatomyWebApp, guess_role
from anatomy_web.scene import SceneDisplay
from anatomy_web.workbench import Workbench
from scipy import ndimage
from trame.app import get_server
from trame_slicer.core import SlicerApp

from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.anatomy.label_schema import label_id


def _liver_slice(bench):
    session = bench.limis_session()
    liver = bench.volumes["labels"].array == label_id("liver")
    areas = [session.geometry.extract(liver, k).sum() for k in range(session.geometry.n_slices)]
    return int(np.argmax(areas)), liver


def check_limis(tmp_path: Path) -> None:
    """A LIMIS mask lands in its segment on exactly its slice; the box is an ROI markup."""
    assert [guess_role(n) for n in ("ct.nii.gz", "labels.nii.gz", "prediction_x.nii.gz", "lesions.nii")] == [
        "ct",
        "labels",
        "prediction",
        "lesions",
    ]
    sample = Workbench(tmp_path, tmp_path / "out", sample_size="tiny")
    sample.load_sample()
    index, _ = _liver_slice(sample)
    status = sample.limis_command("segment the liver", slice_index=index)
    display = SceneDisplay(SlicerApp())
    display.show_ct(sample.volumes["ct"], sample.volumes["lesions"], sample.volumes["prediction"])
    display.show_limis(sample.limis, status.changed_masks)
    node = display.nodes["limis"]
    segment_id = node.GetSegmentation().GetNthSegmentID(0)
    written = slicer_bridge.segment_to_mask(node, segment_id, display.nodes["ct"], scene=display.scene)
    expected = np.zeros(sample.volumes["ct"].shape, dtype=np.uint8)
    sample.limis.geometry.insert(expected, index, status.changed_masks[index].astype(np.uint8))
    assert np.array_equal(written.array, expected)
    box = display.nodes["limis_box"]
    assert box.IsA("vtkMRMLMarkupsROINode")
    # the drag handles are off unless asked for (they slow every render down), for later boxes too
    assert not box.GetDisplayNode().GetHandlesInteractive()
    display.set_box_handles(True)
    assert box.GetDisplayNode().GetHandlesInteractive()
    display.show_limis(sample.limis, {})
    assert display.nodes["limis_box"].GetDisplayNode().GetHandlesInteractive()


class FakeArea:
    """Stands in for trame-slicer's RcaWindow: each capture is one render, logged by view name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self._vtk_render_window = object()  # what the coordinator names the view by

    @property
    def img_cols_rows(self):
        self.log.append(self.name)
        return np.full((6, 8, 3), 10 * len(self.log), dtype=np.uint8), 8, 6

    def process_resize_event(self, width, height) -> None:
        pass

    def process_interaction_event(self, event) -> None:
        pass


def check_render_order(tmp_path: Path) -> None:
    """Views asked to render together: the axial view renders first, the 3D view last, each once
    per request (the still frame is re-encoded, not rendered again); a request made while a view
    waits for its still frame is not lost; every view ends up pushing its current image."""
    from anatomy_web import rendering

    async def run():
        renders: list[str] = []
        pushed: list[tuple[str, int]] = []
        coordinator = rendering.RenderCoordinator(lazy_s=0.05)
        schedulers = {}
        for name in ("ThreeD", "Yellow", "Green", "Red"):  # created (and asked) in reverse priority
            area = FakeArea(name, renders)
            coordinator.name_window(area._vtk_render_window, name)
            scheduler = rendering.ViewRenderScheduler(area, coordinator=coordinator, target_fps=100.0)
            scheduler.set_push_callback(lambda img, meta, n=name: pushed.append((n, meta["quality"])))
            schedulers[name] = scheduler

        async def settle():
            for _ in range(200):  # until nothing renders or waits any more
                await asyncio.sleep(0.02)
                if not any(s.wants_render or s.rendering for s in schedulers.values()) and len(
                    [p for p in pushed if p[1] == 90]
                ) >= len(set(renders)):
                    await asyncio.sleep(0.2)
                    return

        renders.clear()  # isinstance() against trame-rca's protocol reads img_cols_rows once each
        for scheduler in schedulers.values():
            scheduler.schedule_render()
        await settle()
        assert renders[0] == "Red" and renders[-1] == "ThreeD", renders
        assert sorted(renders) == sorted(schedulers), renders
        for name in schedulers:  # one interactive and one still frame each, one render each
            assert (name, 50) in pushed and (name, 90) in pushed, pushed
        first = [n for n, q in pushed if q == 50]
        assert first[0] == "Red" and first[-1] == "ThreeD", pushed

        renders.clear()
        pushed.clear()
        schedulers["Red"].schedule_render()
        while not renders:  # until Red has rendered; it then waits for its still frame
            await asyncio.sleep(0.001)
        schedulers["Red"].schedule_render()
        schedulers["Green"].schedule_render()
        await settle()
        assert renders == ["Red", "Red", "Green"], renders
        for scheduler in schedulers.values():
            await scheduler.close()

    asyncio.run(run())


def walk(tmp_path: Path) -> None:
    """The server's handlers as the page calls them: contract hooks in the page, errors in the status
    line, and each tool's result in the MRML scene the views show."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage, not an image" * 20)
    (tmp_path / "secret.nii.gz").write_bytes(b"x")
    app = AnatomyWebApp(
        get_server("anatomy-web-handlers", client_type="vue3"), data_dir=data, output_dir=tmp_path / "out"
    )
    app.workbench.sample_size = "tiny"
    hooks = set(re.findall(r'data-testid="([^"]+)"', app.ui.html))
    assert hooks >= {
        "load-sample", "slice-view", "threed-view", "tab-limis", "tab-dap", "tab-cc", "limis-command",
        "limis-history", "limis-reply", "limis-accept", "limis-reject", "dap-postprocess", "dap-stats",
        "cc-run", "cc-table", "cc-summary", "status", "file-select",
    }  # fmt: skip
    assert [f["value"] for f in app.state.files] == ["broken.nii.gz"]
    state, scene = app.state, app.slicer_app.scene
    # segments are built in the worker and only attached on the loop's (here: the main) thread
    threads: dict[str, set[str]] = {"prepare_segments": set(), "attach_segments": set()}
    for name in threads:
        original = getattr(slicer_bridge, name)

        def record(*args, _original=original, _name=name, **kwargs):
            threads[_name].add(threading.current_thread().name)
            return _original(*args, **kwargs)

        setattr(slicer_bridge, name, record)

    async def walk():
        await app.on_open_file("broken.nii.gz")
        assert state.status_error and "broken.nii.gz" in state.status_text
        await app.on_open_file("../secret.nii.gz")
        assert state.status_error and "inside the data folder" in state.status_text
        assert scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0

        await app.on_load_sample()
        assert "Loaded" in state.status_text and not state.status_error
        ct_node = app.display.nodes["ct"]

        await app.on_limis_command("segment the liver")
        assert "baseline" in state.limis_reply and [h["index"] for h in state.limis_history] == [0]
        session = app.workbench.limis
        limis = app.display.nodes["limis"]
        written = slicer_bridge.segment_to_mask(limis, limis.GetSegmentation().GetNthSegmentID(0), ct_node)
        assert int(written.array.sum()) == int(session.slice_mask(session.active_slice).sum())
        # the box's drag handles follow the "move box" click mode (off otherwise: they slow renders)
        box_display = app.display.nodes["limis_box"].GetDisplayNode()
        assert not box_display.GetHandlesInteractive()
        state.ready()  # as when a page connects: from here on, state changes run their listeners
        with state:
            state.limis_click_mode = "box"
        assert box_display.GetHandlesInteractive()
        with state:
            state.limis_click_mode = ""
        assert not box_display.GetHandlesInteractive()
        await app.on_limis_command("accept")
        await app.on_limis_revert(0)
        assert [h["current"] for h in state.limis_history] == [True, False]
        # a sentence no rule knows goes to the semantic matcher (torch): the server must survive it
        await app.on_limis_command("could you kindly make the outline hug the organ more tightly")
        assert "LIMIS:" in state.status_text and state.limis_history

        state.active_tab = "dap"
        await app.on_dap_postprocess()
        assert "liver" in [row["structure"] for row in state.dap_rows]
        labels = app.workbench.dap_result.labels.array
        assert app.display.nodes["dap"].GetSegmentation().GetNumberOfSegments() == len(
            np.unique(labels[labels > 0])
        )
        app.on_dap_system("digestive", False)
        shown = {row["name"]: row["visible"] for row in state.dap_systems}
        assert shown["digestive"] is False and shown["urinary"] is True

        state.active_tab = "cc"
        await app.on_cc_run()
        _, n = ndimage.label(app.workbench.volumes["lesions"].array > 0, structure=np.ones((3, 3, 3)))
        assert len(state.cc_rows) == n and state.cc_summary[0]["metric"] == "Dice"
        assert app.display.nodes["cc_regions"].GetSegmentation().GetNumberOfSegments() == n
        last = app.workbench.cc_component_rows()[-1]
        app.on_cc_row(n - 1)  # the views jump to the lesion's centroid
        centre = np.array([last["centroid_r"], last["centroid_a"], last["centroid_s"]])
        normal = np.array([app.display.red_slice_node().GetSliceToRAS().GetElement(r, 2) for r in range(3)])
        assert abs(float((app.display.red_slice_ras() - centre) @ normal)) < 1e-3
        assert not app.display.nodes["dap"].GetDisplayNode().GetVisibility()  # each tab its own overlays

    asyncio.run(walk())
    assert state.jobs_done == 10
    # lesion masks at load, the DAP map, the Voronoi regions: all built in the worker
    assert threads["prepare_segments"] and all(
        t.startswith("anatomy-web") for t in threads["prepare_segments"]
    )
    assert threads["attach_segments"] == {threading.main_thread().name}
    app.executor.shutdown()


if __name__ == "__main__":
    {"limis": check_limis, "walk": walk, "render_order": check_render_order}[sys.argv[1]](Path(sys.argv[2]))
    print("ok")
