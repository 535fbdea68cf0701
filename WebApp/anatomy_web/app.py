"""The page: trame-slicer slice and 3D views on the left, the three tools on tabs on the right.

Long work (loading, LIMIS commands, the DAP rules, CC-Metrics) runs in one worker thread
(:class:`concurrent.futures.ThreadPoolExecutor` with one thread, so the workbench sees one call at
a time) while the server's event loop keeps answering; MRML nodes are changed on the loop's thread
only. Every failure ends as a message in the status line, never as a dead server.
"""

from __future__ import annotations

from . import torch_first  # noqa: F401  (before trame_slicer: see its docstring)

# isort: split
import asyncio
import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trame.app import TrameApp, asynchronous
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
from trame_vuetify.ui.vuetify3 import SinglePageLayout

from AnatomyCommonLib.errors import AnatomyToolkitError

from . import rendering
from .scene import SceneDisplay
from .workbench import ROLES, Workbench

logger = logging.getLogger(__name__)

LAYOUT_ID = "anatomy-web"
#: columns of the DAP statistics table: (key, title)
DAP_COLUMNS = (
    ("structure", "structure"),
    ("system", "system"),
    ("volume_ml", "volume ml"),
    ("hu_mean", "HU mean"),
)
#: columns of the CC per-component table
CC_COLUMNS = (
    ("component_id", "#"),
    ("volume_ml", "ml"),
    ("detected", "detected"),
    ("dice", "Dice"),
    ("nsd", "NSD"),
    ("hd95", "HD95 mm"),
)
#: rows of the CC summary: (metric, title)
CC_SUMMARY = (("dice", "Dice"), ("iou", "IoU"), ("nsd", "NSD"), ("hd95", "HD95 mm"), ("assd", "ASSD mm"))


def testid(name: str) -> list[str]:
    """The raw attribute that tests find an element by."""
    return [f'data-testid="{name}"']


#: grey help text of the tool tabs
HINT_STYLE = "font-size:12px; color:#aaa;"


def _hint(text: str) -> None:
    """A line of grey help text in a tool's tab (what the tool does, how to use a control)."""
    html.Div(text, style=HINT_STYLE)


def _run_button(title: str, event: str, test: str) -> None:
    """A tool's main button: fires the server trigger ``event``, disabled while a job runs."""
    v3.VBtn(
        title,
        click=f"trigger('{event}')",
        disabled=("busy",),
        classes="my-2",
        color="primary",
        raw_attrs=testid(test),
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def guess_role(name: str) -> str:
    """The role a data-folder file most likely has, from its name (the role menu overrides it)."""
    lower = Path(name).name.lower()
    for words, role in (
        (("pred",), "prediction"),
        (("lesion",), "lesions"),
        (("dap", "model_output"), "dap_input"),
        (("label", "seg"), "labels"),
    ):
        if any(word in lower for word in words):
            return role
    return "ct"


class AnatomyWebApp(TrameApp):
    """One page, three tools, one shared MRML scene."""

    def __init__(
        self, server=None, *, data_dir: str | Path, output_dir: str | Path, sample_size: str = "small"
    ) -> None:
        super().__init__(server)
        self.workbench = Workbench(data_dir, output_dir, sample_size=sample_size)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anatomy-web")
        self.slicer_app = SlicerApp()
        import slicer

        slicer.mrmlScene = self.slicer_app.scene  # helpers that default to Slicer's scene use this one
        # the axial view renders and is pushed first, the others after it, the 3D view last
        self.render_coordinator = rendering.install()
        # a few frames per second are enough for a teaching page and leave the CPU to the tools
        register_rca_factories(self.slicer_app.view_manager, self.server, target_fps=15.0, blur_fps=5.0)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        axial, threed = ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.threed_view()
        coronal, sagittal = ViewLayoutDefinition.coronal_view(), ViewLayoutDefinition.sagittal_view()
        self.views = {"Red": axial, "ThreeD": threed, "Green": coronal, "Yellow": sagittal}
        self.layout_manager.register_layout(
            LAYOUT_ID,
            Layout(
                LayoutDirection.Horizontal,
                [axial, Layout(LayoutDirection.Vertical, [threed, coronal, sagittal])],
            ),
        )
        self.slicer_app.view_manager.set_current_view_ids([v.singleton_tag for v in self.views.values()])
        self.render_coordinator.name_views(self.slicer_app.view_manager)
        rendering.no_multisampling(self.slicer_app.view_manager)
        self.display = SceneDisplay(self.slicer_app, on_box_moved=self.on_box_moved)
        red = self.display.red_view()
        if red is not None:
            red.interactor().AddObserver("LeftButtonPressEvent", self.on_red_click, 1.0)
        self._init_state()
        self._build_ui()
        self.refresh_files()

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "Anatomy Toolkit (web)"
        s.status_text = "Press Load sample, or open a CT from the data folder."
        s.status_error = False
        s.busy = False
        s.jobs_done = 0  # finished jobs (ok or failed): page tests wait for it to grow
        s.active_tab = "limis"
        s.files = []
        s.file_choice = ""
        s.file_role = "auto"
        s.roles = [{"value": "auto", "title": "role: from the file name"}] + [
            {"value": k, "title": f"as {v}"} for k, v in ROLES.items()
        ]
        s.loaded = []
        s.limis_text = ""
        s.limis_typed = []
        s.limis_pos = 0
        s.limis_history = []
        s.limis_reply = "Type a command, e.g. 'segment the liver'."
        s.limis_pending = ""
        # "", "positive", "negative" (what a click in the axial view adds) or "box" (drag the box)
        s.limis_click_mode = ""
        s.dap_progress = 0
        s.dap_progress_text = ""
        s.dap_rows = []
        s.dap_report = ""
        s.dap_systems = []
        s.dap_weights_missing = self.workbench.dap_weights_missing()
        s.cc_rows = []
        s.cc_summary = []
        s.cc_counts = ""
        s.cc_regions_visible = True
        s.cc_selected = -1

    def set_status(self, text: str, *, error: bool = False) -> None:
        with self.state:
            self.state.status_text = text
            self.state.status_error = error

    async def run_job(self, description: str, work, done=None):
        """Run ``work()`` in the worker thread; ``done(result)`` on the loop; errors go to the status line."""
        if self.state.busy:
            self.set_status(f"Busy: wait for the current job before '{description}'.", error=True)
            return None
        with self.state:
            self.state.busy = True
            self.state.status_text = f"{description} ..."
            self.state.status_error = False
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            result = await loop.run_in_executor(self.executor, work)
            worked = time.perf_counter() - start
            if done is not None:
                with self.state:
                    done(result)
            logger.info(
                "%s: %.2f s in the worker, %.2f s in all", description, worked, time.perf_counter() - start
            )
            return result
        except AnatomyToolkitError as error:
            self.set_status(f"{description} failed: {error}", error=True)
        except Exception as error:  # the server stays up; the message says what happened
            logger.error("%s failed:\n%s", description, traceback.format_exc())
            self.set_status(f"{description} failed: {type(error).__name__}: {error}", error=True)
        finally:
            with self.state:
                self.state.busy = False
                self.state.jobs_done += 1
        return None

    # ------------------------------------------------------------------ loading
    def refresh_files(self) -> None:
        with self.state:
            self.state.files = [
                {"value": f.name, "title": f"{f.name} ({f.size_bytes / 1e6:.1f} MB)"}
                for f in self.workbench.data.list_images()
            ]

    def _load(self, load):
        """``load()`` in the worker, then where to centre the views first (the liver, if mapped) and
        the lesion masks' segments, built here so that the loop only attaches them."""
        result = load()
        wb = self.workbench
        centre = wb.structure_centroid_ras("liver") if "labels" in wb.volumes else None
        masks = {
            role: SceneDisplay.prepare_mask(role, wb.volumes[role])
            for role in ("lesions", "prediction")
            if role in wb.volumes
        }
        return result, (centre, masks)

    def _after_load(self, message: str, placed) -> None:
        """``placed``: where to centre the views and the prepared lesion masks (from :meth:`_load`)."""
        centre, masks = placed
        wb = self.workbench
        self.display.show_ct(wb.volumes["ct"], masks.get("lesions"), masks.get("prediction"))
        if centre is not None:
            self.display.jump_to(centre)
        s = self.state
        s.loaded = [f"{ROLES[role]}: {source}" for role, source in wb.sources.items()]
        s.limis_history, s.limis_pending = [], ""
        s.limis_reply = "Type a command, e.g. 'segment the liver'."
        s.dap_rows, s.dap_report, s.dap_systems, s.dap_progress, s.dap_progress_text = [], "", [], 0, ""
        s.cc_rows, s.cc_summary, s.cc_counts, s.cc_selected = [], [], "", -1
        s.status_text, s.status_error = message, False
        self.on_tab(s.active_tab)
        self.refresh_files()

    async def on_load_sample(self) -> None:
        def done(loaded):
            volumes, placed = loaded
            shape = "x".join(map(str, volumes["ct"].shape))
            self._after_load(
                f"Loaded the sample phantom ({shape} voxels): CT, label map, DAP model output with "
                "simulated errors, lesions and a perturbed prediction "
                f"(files in {self.workbench.output}/sample).",
                placed,
            )

        await self.run_job("Loading the sample", lambda: self._load(self.workbench.load_sample), done)

    async def on_open_file(self, name: str | None = None) -> None:
        name = name or self.state.file_choice
        if not name:
            return
        role = self.state.file_role
        role = guess_role(name) if role == "auto" else role

        def done(loaded):
            volume, placed = loaded
            shape = "x".join(map(str, volume.shape))
            self._after_load(f"Loaded {name} as {ROLES[role]} ({shape} voxels).", placed)

        await self.run_job(
            f"Opening {name}", lambda: self._load(lambda: self.workbench.open_file(name, role)), done
        )

    # ------------------------------------------------------------------ LIMIS
    def _show_limis(self, status) -> None:
        s = self.state
        s.limis_reply = status.reply
        s.limis_history = status.history
        s.limis_pending = status.pending or ""
        self.display.show_limis(self.workbench.limis, status.changed_masks)
        self.on_tab(s.active_tab)
        s.status_text = f"LIMIS: {status.command!r} " + (
            "done" if status.ok else "changed nothing (see the reply)"
        )
        s.status_error = False

    async def on_limis_command(self, text: str | None = None) -> None:
        text = (text if text is not None else self.state.limis_text or "").strip()
        if not text:
            return
        with self.state:
            self.state.limis_typed = [*self.state.limis_typed, text]
            self.state.limis_pos = len(self.state.limis_typed)
            self.state.limis_text = ""
        slice_ras = self.display.red_slice_ras()  # MRML: read on the loop's thread
        await self.run_job(
            f"LIMIS: {text}",
            lambda: self.workbench.limis_command(text, slice_ras=slice_ras),
            self._show_limis,
        )

    def on_red_click(self, interactor, _event) -> None:
        """A left click in the axial view while a click mode is on: a LIMIS point there."""
        mode = self.state.limis_click_mode
        session = self.workbench.limis
        if mode not in ("positive", "negative") or session is None or session.target is None:
            return
        if self.state.busy:
            return
        ras = self.display.red_xy_to_ras(*interactor.GetEventPosition())
        if ras is None:
            return
        asynchronous.create_task(
            self.run_job(
                f"LIMIS: {mode} click",
                lambda: self.workbench.limis_click(ras, positive=mode == "positive"),
                self._show_limis,
            )
        )

    def on_box_moved(self, roi_node) -> None:
        """The LIMIS box was dragged in a view: segment again in the new box (a new step)."""
        from LIMISLib.mrml_nodes import box_from_roi

        session = self.workbench.limis
        if session is None or session.target is None:
            return
        box, slice_index = box_from_roi(session.geometry, roi_node)  # MRML: on the loop's thread
        asynchronous.create_task(
            self.run_job(
                "LIMIS: box dragged",
                lambda: self.workbench.limis_set_box(box, slice_index),
                self._show_limis,
            )
        )

    async def on_limis_revert(self, step_index: int) -> None:
        await self.run_job(
            f"LIMIS: revert to step {step_index}",
            lambda: self.workbench.limis_revert(int(step_index)),
            self._show_limis,
        )

    # ------------------------------------------------------------------ DAP Atlas
    async def on_dap_postprocess(self) -> None:
        loop = asyncio.get_running_loop()

        def report(step: str, index: int, total: int) -> None:
            def update():
                with self.state:
                    self.state.dap_progress = round(100 * index / max(total, 1))
                    self.state.dap_progress_text = f"rule {index + 1}/{total}: {step}"

            loop.call_soon_threadsafe(update)

        def work():
            result = self.workbench.dap_postprocess(report)
            return result, SceneDisplay.prepare_dap(result.labels)  # the segments, off the loop

        def done(computed):
            result, prepared = computed
            self.display.show_dap(prepared)  # attaching them: cheap, on the loop
            s = self.state
            s.dap_progress, s.dap_progress_text = 100, f"done in {result.report.seconds:.2f} s"
            s.dap_rows = [
                {key: _fmt(row.get(key)) for key, _ in DAP_COLUMNS} for row in self.workbench.dap_table_rows()
            ]
            s.dap_report = result.report.to_text()
            s.dap_systems = [{"name": k, "visible": v} for k, v in self.display.dap_systems().items()]
            s.status_text = f"DAP Atlas rules done: {len(s.dap_rows)} structures."
            self.on_tab(s.active_tab)

        await self.run_job("Running the DAP Atlas rules", work, done)

    async def on_dap_inference(self) -> None:
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            def update():
                with self.state:
                    self.state.dap_progress = round(100 * fraction)
                    self.state.dap_progress_text = f"model: {message}"

            loop.call_soon_threadsafe(update)

        def work():
            labels = self.workbench.dap_inference(report)
            return SceneDisplay.prepare_dap(labels)

        def done(prepared):
            self.display.show_dap(prepared)
            s = self.state
            s.dap_progress, s.dap_progress_text = 100, "model done; run the rules next"
            s.loaded = [f"{ROLES[role]}: {source}" for role, source in self.workbench.sources.items()]
            s.dap_systems = [{"name": k, "visible": v} for k, v in self.display.dap_systems().items()]
            s.status_text = "DAP Atlas model done: the CT is segmented; run the rules to post-process it."
            self.on_tab(s.active_tab)

        await self.run_job("Segmenting the CT with the DAP Atlas model", work, done)

    def on_dap_system(self, system: str, visible: bool) -> None:
        self.display.set_dap_system_visible(system, bool(visible))
        with self.state:
            self.state.dap_systems = [
                {"name": k, "visible": v} for k, v in self.display.dap_systems().items()
            ]

    # ------------------------------------------------------------------ CC-Metrics
    async def on_cc_run(self) -> None:
        def work():
            comparison = self.workbench.cc_evaluate()
            regions = self.workbench.cc_regions
            return comparison, (SceneDisplay.prepare_regions(*regions), regions[1]) if regions else None

        def done(computed):
            _comparison, prepared_regions = computed
            wb = self.workbench
            rows = wb.cc_component_rows()
            s = self.state
            s.cc_rows = [{**{k: _fmt(r.get(k)) for k, _ in CC_COLUMNS}, "row": i} for i, r in enumerate(rows)]
            summary = wb.cc_summary_rows()[0]
            s.cc_summary = [
                {"metric": title, "standard": _fmt(summary[f"standard_{m}"]), "cc": _fmt(summary[f"cc_{m}"])}
                for m, title in CC_SUMMARY
            ] + [
                {
                    "metric": "PQ / Lesion Dice",
                    "standard": _fmt(summary["pq"]),
                    "cc": _fmt(summary["lesion_dice"]),
                }
            ]
            s.cc_counts = (
                f"{summary['n_reference_components']} reference lesions, {summary['n_detected']} detected, "
                f"{summary['n_missed']} missed, "
                f"{summary['n_false_positive_components']} false-positive components"
            )
            if prepared_regions is not None:
                self.display.show_regions(*prepared_regions)
            s.status_text = f"CC-Metrics done: {len(rows)} components; click a row to jump to the lesion."
            self.on_tab(s.active_tab)

        await self.run_job("Running CC-Metrics", work, done)

    def on_cc_row(self, row: int) -> None:
        rows = self.workbench.cc_component_rows()
        if not 0 <= int(row) < len(rows):
            return
        r = rows[int(row)]
        self.display.jump_to((r["centroid_r"], r["centroid_a"], r["centroid_s"]))
        with self.state:
            self.state.cc_selected = int(row)
            self.state.status_text = f"Centred the views on lesion {r['component_id']}."
            self.state.status_error = False
            self.state.jobs_done += 1

    def on_cc_regions_visible(self, visible) -> None:
        self.display.set_visible("cc_regions", bool(visible) and self.state.active_tab == "cc")

    def on_tab(self, tab: str) -> None:
        """Each tool shows its own overlays: LIMIS its mask, DAP its map, CC-Metrics lesions and regions."""
        shown = {
            "limis": {"limis", "limis_box", "limis_clicks"},
            "dap": {"dap"},
            "cc": {"lesions", "prediction", "cc_regions"}
            if self.state.cc_regions_visible
            else {"lesions", "prediction"},
        }.get(tab, set())
        for key in ("limis", "limis_box", "limis_clicks", "dap", "lesions", "prediction", "cc_regions"):
            self.display.set_visible(key, key in shown)

    # ------------------------------------------------------------------ page
    def _build_ui(self) -> None:
        ctrl = self.server.controller
        self.server.trigger("load_sample")(self.on_load_sample)
        self.server.trigger("open_file")(self.on_open_file)
        self.server.trigger("limis_submit")(self.on_limis_command)
        self.server.trigger("limis_revert")(self.on_limis_revert)
        self.server.trigger("dap_postprocess")(self.on_dap_postprocess)
        self.server.trigger("dap_system")(self.on_dap_system)
        self.server.trigger("dap_inference")(self.on_dap_inference)
        self.server.trigger("cc_run")(self.on_cc_run)
        self.server.trigger("cc_row")(self.on_cc_row)
        self.state.change("active_tab")(lambda active_tab, **_: self.on_tab(active_tab))
        self.state.change("limis_click_mode")(
            lambda limis_click_mode, **_: self.display.set_box_handles(limis_click_mode == "box")
        )
        self.state.change("cc_regions_visible")(
            lambda cc_regions_visible, **_: self.on_cc_regions_visible(cc_regions_visible)
        )
        del ctrl

        with SinglePageLayout(self.server, full_height=True) as self.ui:
            self.ui.root.theme = "dark"
            client.Style(
                "html { overflow-y: hidden; }"
                " .tool-table td, .tool-table th { padding: 1px 6px; font-size: 12px; }"
                " .tool-table tr.clickable { cursor: pointer; }"
                " .tool-table tr.clickable:hover { background: #345; }"
                " .tool-table tr.selected { background: #2a4a6a; }"
                " .history-item { cursor: pointer; padding: 2px 4px; font-size: 13px; }"
                " .history-item:hover { background: #345; }"
                " .history-item.current { font-weight: bold; color: #8cf; }"
            )
            self.ui.title.set_text("Anatomy Toolkit")
            with self.ui.toolbar:
                v3.VSpacer()
                v3.VBtn(
                    "Load sample",
                    click="trigger('load_sample')",
                    disabled=("busy",),
                    raw_attrs=testid("load-sample"),
                    classes="mx-2",
                    color="primary",
                    variant="flat",
                )
                with html.Select(
                    raw_attrs=[
                        *testid("file-select"),
                        "@change=\"trigger('open_file', [$event.target.value])\"",
                    ],
                    v_model=("file_choice",),
                    style="background:#333;color:#eee;padding:4px;max-width:300px;border-radius:4px;",
                ):
                    html.Option("open from the data folder ...", value="", disabled=True)
                    html.Option("{{ f.title }}", v_for="f in files", key="f.value", value=("f.value",))
                with html.Select(
                    raw_attrs=testid("file-role"),
                    v_model=("file_role",),
                    style="background:#333;color:#eee;padding:4px;margin-left:6px;border-radius:4px;",
                ):
                    html.Option("{{ r.title }}", v_for="r in roles", key="r.value", value=("r.value",))
                v3.VProgressCircular(indeterminate=True, v_show=("busy",), size=20, classes="mx-3")
            with (
                self.ui.content,
                html.Div(
                    # exactly the window below the app bar: a long table scrolls in its column
                    style="display:flex; flex-direction:row; width:100%; overflow:hidden; "
                    "height: calc(100vh - var(--v-layout-top, 64px) - var(--v-layout-bottom, 0px));"
                ),
            ):
                self._build_views()
                self._build_tools()

    def _view(self, tag: str, test: str, style: str) -> None:
        with html.Div(
            raw_attrs=testid(test), style=f"display:flex; position:relative; border:1px solid #222; {style}"
        ):
            client.ServerTemplate(name=self.server.translator.translate_key(tag))

    def _build_views(self) -> None:
        with html.Div(
            style="flex: 1 1 auto; display:flex; flex-direction:row; background:black; min-width:0;"
        ):
            self._view("Red", "slice-view", "flex: 2 1 0;")
            with html.Div(style="flex: 1 1 0; display:flex; flex-direction:column;"):
                self._view("ThreeD", "threed-view", "flex: 1 1 0;")
                self._view("Green", "coronal-view", "flex: 1 1 0;")
                self._view("Yellow", "sagittal-view", "flex: 1 1 0;")

    def _build_tools(self) -> None:
        with html.Div(style="flex: 0 0 440px; height:100%; overflow-y:auto; padding:6px;"):
            html.Div(
                "{{ status_text }}",
                raw_attrs=[*testid("status"), ':data-jobs="jobs_done"', ':data-busy="busy"'],
                classes=("status_error ? 'text-red-lighten-2' : 'text-green-lighten-2'",),
                style="min-height:40px; font-size:13px; padding:4px; border:1px solid #444; "
                "border-radius:4px;",
            )
            html.Div("{{ l }}", v_for="l in loaded", key="l", style="font-size:11px; color:#aaa;")
            with v3.VTabs(v_model=("active_tab",), density="compact", grow=True, style="flex: 0 0 auto;"):
                v3.VTab("LIMIS", value="limis", raw_attrs=testid("tab-limis"))
                v3.VTab("DAP Atlas", value="dap", raw_attrs=testid("tab-dap"))
                v3.VTab("CC-Metrics", value="cc", raw_attrs=testid("tab-cc"))
            with html.Div(v_show=("active_tab === 'limis'",)):
                self._build_limis()
            with html.Div(v_show=("active_tab === 'dap'",)):
                self._build_dap()
            with html.Div(v_show=("active_tab === 'cc'",)):
                self._build_cc()

    def _build_limis(self) -> None:
        with html.Div(classes="pa-2"):
            _hint(
                "Commands act on the axial slice shown on the left (scroll it to choose). "
                "Examples: segment the liver / accept / you over-segmented / raise the threshold / "
                "move the box up 5 pixels / propagate / revert to step 0 / help"
            )
            with html.Div(raw_attrs=testid("limis-command-wrapper")):
                html.Input(
                    type="text",
                    v_model=("limis_text",),
                    placeholder="segment the liver",
                    disabled=("busy",),
                    raw_attrs=[
                        *testid("limis-command"),
                        "@keydown.enter=\"trigger('limis_submit', [limis_text])\"",
                        '@keydown.up.prevent="if (limis_typed.length) { '
                        'limis_pos = Math.max(0, limis_pos - 1); limis_text = limis_typed[limis_pos]; }"',
                        '@keydown.down.prevent="if (limis_typed.length) { '
                        "limis_pos = Math.min(limis_typed.length, limis_pos + 1); "
                        "limis_text = limis_pos < limis_typed.length ? limis_typed[limis_pos] : ''; }\"",
                    ],
                    style="width:100%; background:#222; color:#eee; padding:6px; border:1px solid #555; "
                    "border-radius:4px; margin:6px 0;",
                )
            html.Div(
                "{{ limis_reply }}",
                raw_attrs=testid("limis-reply"),
                style="font-size:13px; padding:4px; background:#1b2630; border-radius:4px; "
                "white-space:pre-wrap;",
            )
            with html.Div(classes="my-2"):
                v3.VBtn(
                    "Accept",
                    click="trigger('limis_submit', ['accept'])",
                    disabled=("busy",),
                    size="small",
                    color=("limis_pending === 'proposal' ? 'success' : undefined",),
                    classes="mr-2",
                    raw_attrs=testid("limis-accept"),
                )
                v3.VBtn(
                    "Reject",
                    click="trigger('limis_submit', ['reject'])",
                    disabled=("busy",),
                    size="small",
                    color=("limis_pending === 'proposal' ? 'error' : undefined",),
                    raw_attrs=testid("limis-reject"),
                )
                html.Span(
                    " waiting for: {{ limis_pending }}", v_show=("limis_pending",), style="font-size:12px;"
                )
            with html.Div(classes="my-1", style="font-size:12px;"):
                html.Span("In the axial view, a click: ")
                with v3.VBtnToggle(
                    v_model=("limis_click_mode",),
                    density="compact",
                    divided=True,
                    variant="outlined",
                    raw_attrs=testid("limis-click-mode"),
                ):
                    v3.VBtn("nothing", value="", size="small")
                    v3.VBtn("+ point", value="positive", size="small")
                    v3.VBtn("- point", value="negative", size="small")
                    v3.VBtn("move box", value="box", size="small", raw_attrs=testid("limis-move-box"))
            _hint("Steps of this slice (click = go back to that step)")
            with html.Div(raw_attrs=testid("limis-history"), style="border:1px solid #333; min-height:30px;"):
                html.Div(
                    "{{ h.index }}: {{ h.command }} - {{ h.action }} ({{ h.area_px }} px)",
                    v_for="h in limis_history",
                    key="h.index",
                    classes=("'history-item' + (h.current ? ' current' : '')",),
                    raw_attrs=[*testid("limis-step"), "@click=\"trigger('limis_revert', [h.index])\""],
                )

    def _build_dap(self) -> None:
        with html.Div(classes="pa-2"):
            _hint(
                "The DAP Atlas anatomical rules on the loaded DAP model output (the sample: the phantom "
                "labels with simulated model errors), then per-structure statistics."
            )
            v3.VBtn(
                "Segment the CT (DAP model)",
                click="trigger('dap_inference')",
                disabled=("busy || !!dap_weights_missing",),
                classes="my-2 mr-2",
                raw_attrs=testid("dap-inference"),
            )
            html.Div(
                "{{ dap_weights_missing }}",
                v_show=("dap_weights_missing",),
                style="font-size:11px; color:#aaa;",
            )
            _run_button("Run the anatomical rules", "dap_postprocess", "dap-postprocess")
            v3.VProgressLinear(
                model_value=("dap_progress",), height=6, color="green", raw_attrs=testid("dap-progress")
            )
            html.Div("{{ dap_progress_text }}", style="font-size:12px;")
            with html.Div(
                v_show=("dap_systems.length",), style="font-size:12px;", raw_attrs=testid("dap-systems")
            ):
                html.Span("Show: ")
                with html.Label(
                    v_for="sy in dap_systems", key="sy.name", style="margin-right:8px; white-space:nowrap;"
                ):
                    html.Input(
                        type="checkbox",
                        checked=("sy.visible",),
                        raw_attrs=["@change=\"trigger('dap_system', [sy.name, $event.target.checked])\""],
                    )
                    html.Span(" {{ sy.name }}")
            with html.Table(classes="tool-table", raw_attrs=testid("dap-stats"), style="width:100%;"):
                with html.Thead(), html.Tr():
                    for _, title in DAP_COLUMNS:
                        html.Th(title, style="text-align:left;")
                with html.Tbody(), html.Tr(v_for="(r, i) in dap_rows", key="i"):
                    for key, _ in DAP_COLUMNS:
                        html.Td(f"{{{{ r.{key} }}}}")
            with (
                v3.VExpansionPanels(v_show=("dap_report",), classes="mt-2"),
                v3.VExpansionPanel(title="What each rule did"),
                v3.VExpansionPanelText(),
            ):
                html.Pre("{{ dap_report }}", style="font-size:11px; white-space:pre-wrap;")

    def _build_cc(self) -> None:
        with html.Div(classes="pa-2"):
            _hint(
                "CC-Metrics of the predicted lesions against the reference lesions: per component (click "
                "a row to jump to it), standard vs CC means, Voronoi regions outlined in the views."
            )
            _run_button("Run CC-Metrics", "cc_run", "cc-run")
            v3.VCheckbox(
                v_model=("cc_regions_visible",), label="Voronoi regions", density="compact", hide_details=True
            )
            with html.Div(raw_attrs=testid("cc-summary"), style="font-size:12px;"):
                html.Div("{{ cc_counts }}")
                with html.Table(classes="tool-table", v_show=("cc_summary.length",), style="width:100%;"):
                    with html.Thead(), html.Tr():
                        html.Th("metric", style="text-align:left;")
                        html.Th("standard", style="text-align:left;")
                        html.Th("CC (per component)", style="text-align:left;")
                    with html.Tbody(), html.Tr(v_for="s in cc_summary", key="s.metric"):
                        html.Td("{{ s.metric }}")
                        html.Td("{{ s.standard }}")
                        html.Td("{{ s.cc }}")
            with html.Table(classes="tool-table mt-2", raw_attrs=testid("cc-table"), style="width:100%;"):
                with html.Thead(), html.Tr():
                    for _, title in CC_COLUMNS:
                        html.Th(title, style="text-align:left;")
                with (
                    html.Tbody(),
                    html.Tr(
                        v_for="r in cc_rows",
                        key="r.row",
                        classes=("'clickable' + (r.row === cc_selected ? ' selected' : '')",),
                        raw_attrs=["@click=\"trigger('cc_row', [r.row])\""],
                    ),
                ):
                    for key, _ in CC_COLUMNS:
                        html.Td(f"{{{{ r.{key} }}}}")
