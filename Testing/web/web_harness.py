"""Start the web app on a free loopback port and drive Debian's Chromium with Playwright.

Used by the browser tests (``Testing/web``) and by ``bench/bench_web_latency.py``. Nothing here
downloads: Playwright only drives the system browser (``/usr/bin/chromium``, or the path in
``ANATOMY_CHROMIUM``); ``playwright install`` is never needed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:  # run as part of the Testing/web package or from bench/ with Testing/web on sys.path
    from . import web_pixels
except ImportError:  # pragma: no cover
    import web_pixels

ROOT = Path(__file__).resolve().parents[2]
#: the folders whose packages the server imports (the app and the Libs it is built on)
SOURCE_ROOTS = ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")
#: Chromium's flags on a machine with no display, no GPU and no internet (background connections
#: to Google's hosts are refused here, many at a time, without the networking flags)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
READY_LINE = "Serving on "
TRUTHY = {"1", "true", "yes", "on"}


class HarnessError(RuntimeError):
    """The server or the browser could not be started; the message says why and what to do."""


def browser_required() -> bool:
    """True in CI (``CI=1``) or with ``ANATOMY_REQUIRE_BROWSER=1``: a missing browser is a failure."""
    return any(
        os.environ.get(name, "").strip().lower() in TRUTHY for name in ("CI", "ANATOMY_REQUIRE_BROWSER")
    )


def chromium_path() -> Path:
    """The Chromium binary the tests drive (``ANATOMY_CHROMIUM`` overrides ``/usr/bin/chromium``)."""
    return Path(os.environ.get("ANATOMY_CHROMIUM") or "/usr/bin/chromium")


def webapp_root() -> Path:
    """The folder holding the ``anatomy_web`` package (``ANATOMY_WEBAPP_DIR`` overrides ``<repo>/WebApp``)."""
    return Path(os.environ.get("ANATOMY_WEBAPP_DIR") or ROOT / "WebApp").resolve()


def missing_requirements() -> list[str]:
    """What the browser tests need and this machine lacks, each with how to get it."""
    import importlib.util

    missing = []
    browser = chromium_path()
    if not (browser.is_file() and os.access(browser, os.X_OK)):
        missing.append(
            f"Chromium at {browser} (Debian: `sudo apt-get install -y chromium`; or set ANATOMY_CHROMIUM)"
        )
    for module, extra in (("playwright", "test"), ("trame_slicer", "web")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"the Python package {module} (`./scripts/setup_env.sh test`, extra '{extra}')")
    if not (webapp_root() / "anatomy_web" / "__init__.py").is_file():
        missing.append(f"the web app package {webapp_root() / 'anatomy_web'}")
    return missing


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_env(weights_dir: Path | None = None) -> dict[str, str]:
    """The server's environment: the app and the Libs on PYTHONPATH, nothing may download."""
    env = dict(os.environ)
    paths = [str(webapp_root())] + [str(ROOT / folder) for folder in SOURCE_ROOTS]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if weights_dir is not None:  # an empty cache: the weight-free baseline is what the tests see
        env["SLICER_ANATOMY_WEIGHTS_DIR"] = str(weights_dir)
    return env


@dataclass
class WebServer:
    """A running ``python -m anatomy_web`` subprocess (see :func:`start_server`)."""

    process: subprocess.Popen
    url: str
    host: str
    port: int
    data_dir: Path
    output_dir: Path
    stdout_path: Path
    stderr_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's stdout and stderr, for failure messages."""
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- server {label} ({path}) ---\n{text[-chars:]}")
        return "\n".join(parts)

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL of its process group after ``timeout``)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def start_server(
    data_dir: Path,
    output_dir: Path,
    log_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 180.0,
    python: str = sys.executable,
    weights_dir: Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> WebServer:
    """Start the web app and wait for its ``Serving on http://HOST:PORT/`` line.

    Raises HarnessError with the server's output when it exits or does not get ready in time.
    The server runs in its own process group so that :meth:`WebServer.stop` ends all of it.
    """
    port = free_port(host) if port is None else port
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "server.stdout.log", log_dir / "server.stderr.log"
    command = [python, "-m", "anatomy_web", "--port", str(port), "--host", host]
    command += ["--data", str(data_dir), "--output", str(output_dir), *extra_args]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=server_env(weights_dir),
            cwd=log_dir, start_new_session=True,
        )  # fmt: skip
    server = WebServer(
        process, f"http://{host}:{port}/", host, port, data_dir, output_dir, stdout_path, stderr_path
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = stdout_path.read_text(errors="replace")
        if READY_LINE in text:
            for line in text.splitlines():
                if line.startswith(READY_LINE):
                    server.url = line[len(READY_LINE) :].strip()
            return server
        if process.poll() is not None:
            raise HarnessError(
                f"the web app exited with code {process.returncode} before serving "
                f"({' '.join(command)}):\n{server.log_tail()}"
            )
        time.sleep(0.2)
    server.stop()
    raise HarnessError(
        f"the web app printed no '{READY_LINE}...' line within {timeout:.0f} s ({' '.join(command)}):\n"
        f"{server.log_tail()}"
    )


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright (a fresh profile each time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch() a new empty profile folder (its own --user-data-dir)
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path()), headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------------- page helpers
def by_testid(page, testid: str):
    """The element carrying ``data-testid=testid``."""
    return page.locator(f'[data-testid="{testid}"]').first


def text_input(page, testid: str):
    """The text field of ``testid`` (the element itself, or the input inside a wrapper)."""
    element = by_testid(page, testid)
    tag = element.evaluate("e => e.tagName.toLowerCase()")
    return element if tag in ("input", "textarea") else element.locator("input, textarea").first


def text_of(page, testid: str) -> str:
    return by_testid(page, testid).inner_text()


def wait_for_text(page, testid: str, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
    """Poll the text of ``testid`` until ``predicate(text)``; AssertionError naming ``what`` and the
    last text otherwise."""
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        with contextlib.suppress(Exception):
            text = text_of(page, testid)
            if predicate(text):
                return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f} s; [{testid}] shows {text!r}")
        time.sleep(0.25)


def element_pixels(page, testid: str, path: Path | None = None) -> np.ndarray:
    """Screenshot of the element ``testid`` as RGB pixels (also saved to ``path`` when given)."""
    png = by_testid(page, testid).screenshot(animations="disabled", timeout=30_000)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return web_pixels.decode_png(png)


def jobs_done(page) -> int | None:
    """The app's count of finished jobs (``data-jobs`` of the status element), None if not shown."""
    value = by_testid(page, "status").get_attribute("data-jobs")
    return int(value) if value not in (None, "") else None


@contextlib.contextmanager
def job(page, timeout: float, what: str) -> Iterator[None]:
    """Wrap an action that starts server work; wait until the app has finished one more job and
    is not busy (``data-jobs`` / ``data-busy`` of the status element). Without those attributes
    it returns at once and the caller's own text or pixel waits decide."""
    before = jobs_done(page)
    yield
    if before is None:
        return
    try:
        page.wait_for_function(
            "([sel, n]) => { const e = document.querySelector(sel);"
            " return e && Number(e.dataset.jobs) > n && e.dataset.busy !== 'true'; }",
            arg=['[data-testid="status"]', before],
            timeout=timeout * 1000,
        )
    except Exception as error:
        status = text_of(page, "status")
        raise AssertionError(
            f"{what}: the app did not finish the job within {timeout:.0f} s; status: {status!r}"
        ) from error


def stable_pixels(page, testid: str, *, timeout: float = 30.0, settle: float = 0.6) -> np.ndarray:
    """A screenshot of ``testid`` once two screenshots ``settle`` seconds apart are the same (the
    view has finished redrawing); the last one after ``timeout`` otherwise."""
    deadline = time.monotonic() + timeout
    previous = element_pixels(page, testid)
    while time.monotonic() < deadline:
        time.sleep(settle)
        current = element_pixels(page, testid)
        if current.shape == previous.shape and web_pixels.changed_fraction(previous, current) == 0.0:
            return current
        previous = current
    return previous


@dataclass
class PixelWait:
    """The outcome of :func:`wait_for_pixels`: the last image, how long it took, how many polls."""

    pixels: np.ndarray
    seconds: float
    polls: int
    history: list[str] = field(default_factory=list)


def wait_for_pixels(
    page,
    testid: str,
    condition: Callable[[np.ndarray], tuple[bool, str]],
    *,
    timeout: float,
    what: str,
    save_to: Path | None = None,
    interval: float = 0.2,
) -> PixelWait:
    """Screenshot ``testid`` until ``condition(pixels)`` returns ``(True, description)``.

    The views are rendered on the server and streamed, so the first screenshots after an action
    may still show the old image. The last screenshot is saved to ``save_to`` either way; on
    timeout an AssertionError names ``what`` and the last descriptions.
    """
    start = time.monotonic()
    history: list[str] = []
    polls = 0
    pixels = None
    while True:
        polls += 1
        with contextlib.suppress(Exception):  # a view being re-created between two polls
            pixels = element_pixels(page, testid)
            ok, description = condition(pixels)
            history.append(description)
            if ok:
                if save_to is not None:
                    element_pixels(page, testid, save_to)
                return PixelWait(pixels, time.monotonic() - start, polls, history)
        if time.monotonic() - start > timeout:
            if save_to is not None:
                with contextlib.suppress(Exception):
                    element_pixels(page, testid, save_to)
            last = "; ".join(history[-3:]) or "no screenshot could be taken"
            raise AssertionError(
                f"{what}: not drawn within {timeout:.0f} s ({polls} screenshots; last: {last})"
            )
        time.sleep(interval)


def view_is_drawn(pixels: np.ndarray) -> tuple[bool, str]:
    """Condition for :func:`wait_for_pixels`: the view shows a picture (see web_pixels.Drawn)."""
    summary = web_pixels.drawn(pixels)
    return summary.is_image(), str(summary)


def colour_appeared(before: np.ndarray, min_fraction: float) -> Callable[[np.ndarray], tuple[bool, str]]:
    """Condition: at least ``min_fraction`` of the view turned coloured compared with ``before``."""

    def condition(pixels: np.ndarray) -> tuple[bool, str]:
        fraction = web_pixels.new_colour_fraction(before, pixels)
        return fraction >= min_fraction, f"{fraction:.2%} newly coloured (need {min_fraction:.2%})"

    return condition


def pixels_changed(before: np.ndarray, min_fraction: float) -> Callable[[np.ndarray], tuple[bool, str]]:
    """Condition: at least ``min_fraction`` of the view's pixels changed compared with ``before``."""

    def condition(pixels: np.ndarray) -> tuple[bool, str]:
        fraction = web_pixels.changed_fraction(before, pixels)
        return fraction >= min_fraction, f"{fraction:.2%} changed (need {min_fraction:.2%})"

    return condition
