"""Fixtures of the browser tests: one web app server per session on a free loopback port, one
headless Debian Chromium driven by Playwright, a fresh page per test, screenshots under
``out/test_web/`` (or ``$ANATOMY_TEST_OUTPUT``).

Without Chromium, Playwright or trame-slicer the browser tests are skipped with the reason, except
in CI (``CI=1``) or with ``ANATOMY_REQUIRE_BROWSER=1``, where they fail instead: CI must run them.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from . import web_harness

#: the tests' window: wide enough for the views and the tools' column side by side
VIEWPORT = {"width": 1400, "height": 900}
#: seconds a page may take to show its controls
PAGE_TIMEOUT = 90
#: set once a test used the output folder (the summary line names it only then)
_USED_OUTPUT: list[Path] = []


def _output_root() -> Path:
    return Path(os.environ.get("ANATOMY_TEST_OUTPUT") or web_harness.ROOT / "out" / "test_web").resolve()


@pytest.fixture(scope="session")
def web_requirements() -> None:
    """Skip (or, in CI, fail) when the browser tests cannot run on this machine."""
    missing = web_harness.missing_requirements()
    if not missing:
        return
    message = "the browser tests need " + "; ".join(missing)
    if web_harness.browser_required():
        pytest.fail(
            f"{message} (CI=1 / ANATOMY_REQUIRE_BROWSER=1: the browser tests must run)", pytrace=False
        )
    pytest.skip(message)


@pytest.fixture(scope="session")
def web_output_dir(web_requirements) -> Path:
    """Where the screenshots and the server's logs of this run go."""
    folder = _output_root()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("test_*.png"), *folder.glob("test_*.console.txt")]:  # an earlier run's
        stale.unlink()
    _USED_OUTPUT.append(folder)
    return folder


def write_data_folder(folder: Path, outside: Path) -> None:
    """The data folder the server reads: a real CT (tiny phantom), a garbage ``broken.nii.gz``,
    and outside it a real CT that the app must never open (path traversal target)."""
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from AnatomyCommonLib.image_io import write_volume

    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom("tiny", seed=3, sex="F", orientation="LPS")
    write_volume(phantom.ct, folder / "tiny_ct.nii.gz", overwrite=True)
    write_volume(phantom.ct, outside / "secret_ct.nii.gz", overwrite=True)
    # valid gzip around bytes that are no NIfTI header, and a file that is not even gzip
    (folder / "broken.nii.gz").write_bytes(gzip.compress(b"this is not a NIfTI image\n" * 40))
    (folder / "truncated.nii.gz").write_bytes((folder / "tiny_ct.nii.gz").read_bytes()[:300])


@pytest.fixture(scope="session")
def web_data_dir(tmp_path_factory, web_requirements) -> Path:
    base = tmp_path_factory.mktemp("web")
    write_data_folder(base / "data", base / "outside")
    return base / "data"


@pytest.fixture(scope="session")
def web_server(tmp_path_factory, web_data_dir, web_output_dir):
    """The web app, served on a free loopback port for the whole session."""
    base = web_data_dir.parent
    try:
        server = web_harness.start_server(
            web_data_dir, base / "output", web_output_dir / "logs", weights_dir=base / "no_weights"
        )
    except web_harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    print(f"\n[web] app at {server.url} (logs in {web_output_dir / 'logs'})")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(web_requirements):
    try:
        with web_harness.chromium() as chromium:
            yield chromium
    except Exception as error:  # the browser did not start: say which binary and why
        if "Executable doesn't exist" in str(error) or "Failed to launch" in str(error):
            pytest.fail(f"Chromium {web_harness.chromium_path()} did not start: {error}", pytrace=False)
        raise


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def shot(request, web_output_dir):
    """``shot("name")`` -> the path of a screenshot of this test (``<test>-<name>.png``)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def path(name: str) -> Path:
        return web_output_dir / f"{stem}-{name}.png"

    return path


@pytest.fixture
def page(browser, web_server, shot, request):
    """A fresh browser tab on the app, its controls shown; a full-page screenshot and the browser
    console are saved when the test fails."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    tab.goto(web_server.url, timeout=PAGE_TIMEOUT * 1000)
    web_harness.by_testid(tab, "load-sample").wait_for(state="visible", timeout=PAGE_TIMEOUT * 1000)
    yield tab
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        try:
            tab.screenshot(path=str(shot("failure")), full_page=True)
            shot("failure").with_suffix(".console.txt").write_text("\n".join(console))
            print(f"[web] failure screenshot: {shot('failure')}")
        except Exception as error:  # the page may be gone; the test's own error matters more
            print(f"[web] no failure screenshot: {error}")
    context.close()


def pytest_terminal_summary(terminalreporter):
    if _USED_OUTPUT:
        terminalreporter.write_line(f"[web] browser test screenshots and server logs: {_USED_OUTPUT[0]}")
