"""When each view is rendered: the view a command changed first, the others after, each once.

trame-slicer gives every view its own :class:`trame_rca.schedulers.RcaImageRenderScheduler`: a
task on the event loop that, when a view asks for a render, renders the window, encodes it at the
interactive JPEG quality, waits five frame periods and renders the *same* scene again for the
still quality. With software OpenGL a render of a view took 50-450 ms here and blocks the loop,
so a LIMIS step (which touches the mask in all three slice views and the box in all four) cost
eight renders, in whatever order the four tasks woke up, before the axial view's frame could
reach the browser.

:class:`ViewRenderScheduler` replaces that scheduler (same interface, same frames):

* the still frame re-encodes the image already captured instead of rendering again (the scene has
  not changed: any change would have asked for a new render and cancelled the still frame);
* views take turns by priority: a view renders only when no view of a higher priority is waiting,
  and after a priority view's frame the others wait until that frame is encoded and handed to the
  network, so the axial view (where a person types LIMIS commands and looks) is pushed first;
* views of a lazy priority (the 3D view) also wait until the 2D views have been quiet for
  :attr:`RenderCoordinator.lazy_s`, so several quick commands cost one 3D render.

Every view still renders after every change that asked for it, so once settled all views show the
current scene (while the axial view keeps asking, e.g. its slider dragged, the others wait for it to
stop). :func:`install` puts the scheduler in place before the views are created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from time import monotonic

from trame_rca.schedulers import RcaImageRenderScheduler

#: priority by trame-slicer view tag: lower renders first; LAZY and above also wait for quiet
PRIORITY = {"Red": 0, "Green": 1, "Yellow": 1, "ThreeD": 2}
DEFAULT_PRIORITY = 1
LAZY = 2
#: set to a file path to append one line per render request, render and re-encoded still frame
#: (time, view, kind, ms): what the latency numbers of the README were diagnosed with
TRACE_ENV = "ANATOMY_WEB_RENDER_TRACE"


class RenderCoordinator:
    """Shared by the views of one page: who may render now (see the module doc)."""

    def __init__(self, *, lazy_s: float = 0.25) -> None:
        self.lazy_s = lazy_s
        self.schedulers: list[ViewRenderScheduler] = []
        self.names: dict[int, str] = {}  # id(render window) -> view tag
        self.last_eager_frame = 0.0
        self._changed = asyncio.Event()
        trace = os.environ.get(TRACE_ENV, "").strip()
        self._trace = open(trace, "a", buffering=1) if trace else None  # noqa: SIM115

    def name_views(self, view_manager) -> None:
        """Learn each scheduler's view tag from the view manager's render windows."""
        views = list(view_manager.get_slice_views()) + list(view_manager.get_threed_views())
        for view in views:
            self.name_window(view.render_window(), view.get_singleton_tag())

    def name_window(self, render_window, tag: str) -> None:
        """The view tag (``Red``, ``ThreeD``, ...) of the scheduler drawing ``render_window``."""
        self.names[id(render_window)] = tag

    def priority(self, scheduler: ViewRenderScheduler) -> int:
        return PRIORITY.get(self.name(scheduler), DEFAULT_PRIORITY)

    def name(self, scheduler: ViewRenderScheduler) -> str:
        window = getattr(scheduler.rca, "_vtk_render_window", None)
        return self.names.get(id(window), "?")

    def notify(self) -> None:
        """Something that may let a waiting view go happened (a request, a frame handed on)."""
        self._changed.set()

    def _blocked(self, scheduler: ViewRenderScheduler) -> bool:
        mine = self.priority(scheduler)
        return any(
            other is not scheduler and (other.wants_render or other.rendering) and self.priority(other) < mine
            for other in self.schedulers
        )

    async def wait_turn(self, scheduler: ViewRenderScheduler) -> None:
        """Return when ``scheduler`` may render: nothing of higher priority pending (and, for a lazy
        view, the eager views quiet for ``lazy_s``)."""
        await asyncio.sleep(0)  # requests made in the same loop pass are all seen
        while True:
            wait = None
            if self._blocked(scheduler):
                wait = 1.0
            elif self.priority(scheduler) >= LAZY:
                quiet = monotonic() - self.last_eager_frame
                if quiet < self.lazy_s:
                    wait = self.lazy_s - quiet
            if wait is None:
                return
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait)

    def trace(self, scheduler: ViewRenderScheduler, kind: str, seconds: float) -> None:
        if self._trace is not None:
            self._trace.write(f"{time.time():.3f} {self.name(scheduler)} {kind} {seconds * 1000:.1f}\n")


class ViewRenderScheduler(RcaImageRenderScheduler):
    """:class:`RcaImageRenderScheduler` with turns by priority and no second render for the still
    frame (see the module doc). ``coordinator`` is set by :func:`install`."""

    coordinator: RenderCoordinator | None = None

    def __init__(self, window, *, coordinator: RenderCoordinator | None = None, **kwargs) -> None:
        self.wants_render = False
        self.rendering = False
        self._last_image = None
        # this view keeps the coordinator of the page it was made for
        self.coordinator = coordinator or type(self).coordinator
        if self.coordinator is None:
            raise RuntimeError("call anatomy_web.rendering.install() before creating the views")
        self.coordinator.schedulers.append(self)
        super().__init__(window, **kwargs)

    def schedule_render(self) -> None:
        if not self.wants_render:
            self.coordinator.trace(self, "asked", 0.0)
        self.wants_render = True
        super().schedule_render()
        self.coordinator.notify()

    async def _render(self) -> None:
        coordinator = self.coordinator
        while not self._is_closing:
            await self._request_event.wait()
            if self._is_closing:
                break
            await coordinator.wait_turn(self)
            self._request_event.clear()
            self.wants_render = False
            interactive, still = self._interactive_quality, self._still_quality
            started = monotonic()
            self.rendering = True
            try:
                future = self._render_frame(interactive)
                # what the render itself asked for is in this frame (as the base class does)
                self._request_event.clear()
                self.wants_render = False
                coordinator.trace(self, "render", monotonic() - started)
                if coordinator.priority(self) < LAZY:
                    coordinator.last_eager_frame = monotonic()
                await asyncio.wait([future])  # encoded ...
                await asyncio.sleep(0)  # ... and handed to the network before the others render
            finally:
                self.rendering = False
                coordinator.notify()
            if interactive == still:
                await asyncio.sleep(max(0.0, self._target_period_s - (monotonic() - started)))
                continue
            if await self._quiet_for_still(started):
                t = monotonic()
                self._encode(self._last_image, still)
                coordinator.trace(self, "still", monotonic() - t)

    async def _quiet_for_still(self, started: float) -> bool:
        """True when no render was asked for during the next few frame periods."""
        for i in range(1, self._n_period_until_still_render + 1):
            await asyncio.sleep(max(0.0, started + i * self._target_period_s - monotonic()))
            if self._request_event.is_set():
                return False
        return True

    async def close(self):
        self.wants_render = False
        await super().close()

    def _render_frame(self, quality):
        """Render, capture and queue the encoding; the future of the encoding."""
        self._last_image = self._rca.img_cols_rows
        return self._encode(self._last_image, quality)

    def _encode(self, image, quality):
        np_img, cols, rows = image
        future = asyncio.get_running_loop().run_in_executor(
            self._encode_pool, self._rca_encoder.encode, np_img, cols, rows, quality
        )
        self._push_queue.put_nowait(future)
        return future


def no_multisampling(view_manager) -> int:
    """Render the views without multisample anti-aliasing; the number of views changed.

    trame-slicer asks for 8 samples per pixel. Mesa's software rasteriser pays for each sample:
    a 900 x 830 axial view with the CT took 60-70 ms to render with 8 samples and 2-3 ms without
    (measured here), and more with overlays. Slice views show voxels and pixel outlines, which
    anti-aliasing does not improve; the 3D view shows slice planes and thin markups.
    """
    views = list(view_manager.get_slice_views()) + list(view_manager.get_threed_views())
    for view in views:
        view.render_window().SetMultiSamples(0)
    return len(views)


def install(*, lazy_s: float = 0.25) -> RenderCoordinator:
    """Make trame-slicer's view factories create :class:`ViewRenderScheduler` views (call before
    ``register_rca_factories`` creates any view); the coordinator of those views."""
    from trame_slicer.rca_view import rca_view_factory

    if not hasattr(rca_view_factory, "RcaImageRenderScheduler"):
        raise RuntimeError(
            "trame_slicer.rca_view.rca_view_factory no longer names RcaImageRenderScheduler; "
            "update anatomy_web.rendering for this trame-slicer version"
        )
    coordinator = RenderCoordinator(lazy_s=lazy_s)
    ViewRenderScheduler.coordinator = coordinator
    rca_view_factory.RcaImageRenderScheduler = ViewRenderScheduler
    return coordinator
