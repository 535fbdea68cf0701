"""A newcomer's journey through the web app, in real headless Chromium against the real server.

Each test starts from a fresh tab and "Load sample" (the bundled phantom case), then uses one tool
the way the README tells a newcomer to. What is asserted is what a person would see: text in the
page and pixels of the views (the slice view is an image streamed from the server, so "drawn" and
"the mask is shown" are checked on screenshots, which are saved under ``out/test_web/``).
"""

from __future__ import annotations

import http.client
import re
import urllib.parse

import pytest

from . import web_harness as wh
from . import web_pixels

pytestmark = pytest.mark.browser

#: seconds for server-side work (phantom generation, a LIMIS command, the DAP rules, CC-Metrics)
#: plus the views' redraw, on a loaded 2-core machine
JOB_TIMEOUT = 180
#: a segment overlay covers at least this fraction of the slice view (the phantom's liver on its
#: central axial slice covers several percent of the view; lesions and regions less)
MIN_MASK_FRACTION = 0.004
MIN_OVERLAY_CHANGE = 0.002
#: the liver propagated over ~26 slices of 3 mm covers ~0.5 % of a coronal / sagittal view; the box
#: (one slice thick) and its outline far less
MIN_PROPAGATED_FRACTION = 0.002


def load_sample(page, shot=None) -> None:
    """Press Load sample and wait until the status says so and the slice view shows the CT."""
    with wh.job(page, JOB_TIMEOUT, "Load sample"):
        wh.by_testid(page, "load-sample").click()
    wh.wait_for_text(
        page, "status", lambda t: "Loaded" in t, JOB_TIMEOUT, "'Loaded' in the status after Load sample"
    )
    wh.wait_for_pixels(
        page, "slice-view", wh.view_is_drawn, timeout=JOB_TIMEOUT, what="the CT in the slice view",
        save_to=shot("sample-loaded") if shot else None,
    )  # fmt: skip


def wait_idle(page, timeout: float = JOB_TIMEOUT) -> None:
    """Wait until the LIMIS command field accepts input again (the app disables it while busy)."""
    wh.text_input(page, "limis-command").wait_for(state="visible", timeout=timeout * 1000)
    page.wait_for_function(
        "sel => { const e = document.querySelector(sel); const i = e && (e.matches('input,textarea') ? e : "
        "e.querySelector('input,textarea')); return i && !i.disabled; }",
        arg='[data-testid="limis-command"]',
        timeout=timeout * 1000,
    )


def limis_command(page, text: str) -> None:
    """Type ``text`` into the LIMIS command line, press Enter and wait for the command's job."""
    wait_idle(page)
    field = wh.text_input(page, "limis-command")
    field.click()
    field.fill(text)
    with wh.job(page, JOB_TIMEOUT, f"LIMIS {text!r}"):
        field.press("Enter")


def click(page, locator, what: str) -> None:
    """Click something that starts server work and wait for that job."""
    with wh.job(page, JOB_TIMEOUT, what):
        locator.click()


def history_items(page) -> list[str]:
    """Texts of the step items of the LIMIS history (its direct children that show text)."""
    return [
        t.strip()
        for t in wh.by_testid(page, "limis-history").locator(":scope > *").all_inner_texts()
        if t.strip()
    ]


def table_rows(page, testid: str) -> list[str]:
    """Texts of the body rows of a table (or of the table element's rows when it has no tbody)."""
    table = wh.by_testid(page, testid)
    rows = table.locator("tbody tr")
    if rows.count() == 0:
        rows = table.locator("tr")
    return [t for t in rows.all_inner_texts() if t.strip()]


def open_tab(page, name: str) -> None:
    """Show a tool's tab (each tab shows its own overlays: wait for the view to settle)."""
    tab = wh.by_testid(page, f"tab-{name}")
    if tab.count():
        tab.click()
        wh.stable_pixels(page, "slice-view")


# ---------------------------------------------------------------------- the journey


def test_load_sample_draws_the_ct_in_the_slice_view(page, shot):
    before = wh.element_pixels(page, "slice-view", shot("before-load"))
    threed_before = wh.element_pixels(page, "threed-view")
    load_sample(page, shot)
    after = wh.stable_pixels(page, "slice-view")
    summary = web_pixels.drawn(after)
    assert summary.is_image(), f"slice view after Load sample: {summary}"
    if not web_pixels.drawn(before).is_image():  # the server's first load (tests run in file order)
        assert web_pixels.changed_fraction(before, after) > 0.2, "Load sample did not change the slice view"
        # the 3D view shows the scene too (its empty background is a plain gradient)
        wh.wait_for_pixels(
            page, "threed-view", wh.pixels_changed(threed_before, 0.02), timeout=JOB_TIMEOUT,
            what="the loaded case in the 3D view", save_to=shot("threed"),
        )  # fmt: skip


def test_limis_segment_the_liver_shows_the_step_and_the_mask(page, shot):
    load_sample(page, shot)
    open_tab(page, "limis")
    before = wh.stable_pixels(page, "slice-view")
    wh.element_pixels(page, "slice-view", shot("limis-before"))
    steps_before = history_items(page)

    limis_command(page, "segment the liver")

    wh.wait_for_pixels(
        page, "slice-view", wh.colour_appeared(before, MIN_MASK_FRACTION), timeout=JOB_TIMEOUT,
        what="the liver mask in the slice view after 'segment the liver'", save_to=shot("limis-after"),
    )  # fmt: skip
    wh.wait_for_text(
        page,
        "limis-history",
        lambda t: "segment the liver" in t,
        JOB_TIMEOUT,
        "the command in the LIMIS history",
    )
    steps = history_items(page)
    assert len(steps) > len(steps_before), f"no new history item: {steps_before} -> {steps}"
    assert any("segment the liver" in s for s in steps), steps
    reply = wh.text_of(page, "limis-reply")
    assert re.search(r"baseline", reply, re.IGNORECASE), (
        f"with no weights installed the reply must say the baseline is used; it says {reply!r}"
    )


def test_limis_up_arrow_recalls_the_command_accept_adds_a_step_and_clicks_revert(page, shot):
    load_sample(page)
    open_tab(page, "limis")
    before = wh.stable_pixels(page, "slice-view")
    limis_command(page, "segment the liver")
    wh.wait_for_text(
        page, "limis-history", lambda t: "segment the liver" in t, JOB_TIMEOUT, "the step in the history"
    )
    wh.wait_for_pixels(
        page,
        "slice-view",
        wh.colour_appeared(before, MIN_MASK_FRACTION),
        timeout=JOB_TIMEOUT,
        what="the liver mask",
    )
    wait_idle(page)

    # Up recalls the command typed last, Down goes back to an empty field
    field = wh.text_input(page, "limis-command")
    assert field.input_value() == "", "the command field is cleared after Enter"
    field.click()
    field.press("ArrowUp")
    assert _field_value_becomes(page, "segment the liver")
    field.press("ArrowDown")
    assert _field_value_becomes(page, "")

    # Accept keeps the proposal shown (the step's mask with its default adaptation) as a second step
    n_steps = len(history_items(page))
    click(page, wh.by_testid(page, "limis-accept"), "Accept")
    wh.wait_for_text(
        page,
        "limis-history",
        lambda t: len(history_items(page)) > n_steps,
        JOB_TIMEOUT,
        "a new step after Accept",
    )
    accepted = wh.stable_pixels(page, "slice-view")
    wh.element_pixels(page, "slice-view", shot("accepted"))

    # clicking step 0 shows its own (unadapted) mask; clicking the last step shows the accepted one again
    steps = wh.by_testid(page, "limis-history").locator(":scope > *")
    click(page, steps.first, "clicking step 0")
    first = wh.wait_for_pixels(
        page, "slice-view", wh.pixels_changed(accepted, MIN_OVERLAY_CHANGE), timeout=JOB_TIMEOUT,
        what="step 0's mask after clicking it in the history", save_to=shot("step0"),
    ).pixels  # fmt: skip
    wh.wait_for_text(page, "limis-reply", lambda t: "step 0" in t, JOB_TIMEOUT, "the reply naming step 0")
    wh.stable_pixels(page, "slice-view")
    click(page, steps.last, "clicking the last step")
    wh.wait_for_pixels(
        page, "slice-view", _back_to(accepted, first), timeout=JOB_TIMEOUT,
        what="the accepted mask again after clicking the last step", save_to=shot("last-step"),
    )  # fmt: skip


def test_limis_propagate_shows_the_mask_in_the_coronal_and_sagittal_views(page, shot):
    """The axial view is redrawn first after a LIMIS step; the other slice views follow and, once
    settled, show the new mask too (here a propagation: a slab of slices, tens of pixels tall)."""
    load_sample(page)
    open_tab(page, "limis")
    limis_command(page, "segment the liver")
    limis_command(page, "accept")
    before = {view: wh.stable_pixels(page, view) for view in ("coronal-view", "sagittal-view", "slice-view")}
    limis_command(page, "propagate")
    wh.wait_for_text(
        page, "limis-reply", lambda t: "Propagated" in t, JOB_TIMEOUT, "the reply to 'propagate'"
    )
    for view in ("coronal-view", "sagittal-view"):
        wh.wait_for_pixels(
            page, view, wh.colour_appeared(before[view], MIN_PROPAGATED_FRACTION), timeout=JOB_TIMEOUT,
            what=f"the propagated liver mask in the {view}", save_to=shot(f"propagated-{view}"),
        )  # fmt: skip
    # the axial view still shows the mask of its own slice
    axial = wh.stable_pixels(page, "slice-view")
    assert web_pixels.coloured_fraction(axial) >= MIN_MASK_FRACTION, "the axial mask disappeared"


def _field_value_becomes(page, value: str) -> bool:
    page.wait_for_function(
        "([sel, v]) => { const e = document.querySelector(sel); const i = e.matches('input,textarea') ? e : "
        "e.querySelector('input,textarea'); return i.value === v; }",
        arg=['[data-testid="limis-command"]', value],
        timeout=10_000,
    )
    return True


def _back_to(target, other):
    """Condition: the view differs from ``target`` by under a third of what ``other`` differs from it."""
    gap = web_pixels.changed_fraction(target, other)

    def condition(pixels):
        now = web_pixels.changed_fraction(target, pixels)
        return now <= gap / 3, f"{now:.2%} differs from the expected picture (the other step: {gap:.2%})"

    return condition


def test_dap_rules_fill_the_statistics_table(page, shot):
    load_sample(page)
    open_tab(page, "dap")
    click(page, wh.by_testid(page, "dap-postprocess"), "the DAP rules")
    wh.wait_for_text(
        page, "dap-stats", lambda t: "liver" in t.lower(), JOB_TIMEOUT, "a liver row in the DAP statistics"
    )
    rows = table_rows(page, "dap-stats")
    liver = [r for r in rows if re.search(r"\bliver\b", r, re.IGNORECASE)]
    assert liver, rows
    # the liver row carries a positive volume (a number > 0 in the row)
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", liver[0])]
    assert any(n > 0 for n in numbers), liver[0]
    assert len(rows) >= 10, f"the phantom has dozens of structures; the table shows {len(rows)} rows"
    wh.element_pixels(page, "slice-view", shot("dap-labels"))


def test_cc_metrics_table_summary_and_overlay(page, shot):
    load_sample(page)
    open_tab(page, "cc")
    before = wh.stable_pixels(page, "slice-view")
    wh.element_pixels(page, "slice-view", shot("cc-before"))
    click(page, wh.by_testid(page, "cc-run"), "CC-Metrics")
    wh.wait_for_text(page, "cc-summary", lambda t: "Dice" in t, JOB_TIMEOUT, "Dice in the CC-Metrics summary")
    rows = table_rows(page, "cc-table")
    assert len(rows) >= 2, f"the sample has several lesions; the component table shows {rows}"
    wh.wait_for_pixels(
        page, "slice-view", wh.pixels_changed(before, MIN_OVERLAY_CHANGE), timeout=JOB_TIMEOUT,
        what="the Voronoi region overlay in the slice view", save_to=shot("cc-overlay"),
    )  # fmt: skip

    # clicking component rows moves the views to those lesions (lesions lie on different slices:
    # at least one of the first rows must change the slice view)
    body_rows = wh.by_testid(page, "cc-table").locator("tbody tr")
    changes = []
    for index in range(min(body_rows.count(), 4)):
        shown = wh.stable_pixels(page, "slice-view")
        body_rows.nth(index).click()
        now = wh.stable_pixels(page, "slice-view")
        changes.append(web_pixels.changed_fraction(shown, now))
        if changes[-1] > 0.01:
            wh.element_pixels(page, "slice-view", shot("cc-jump"))
            break
    assert changes and max(changes) > 0.01, f"clicking rows never moved the slice view: {changes}"


def test_bad_file_gives_a_message_and_the_page_keeps_working(page, web_server, shot):
    select = wh.by_testid(page, "file-select")
    select.locator("option[value='broken.nii.gz']").wait_for(state="attached", timeout=30_000)
    with wh.job(page, JOB_TIMEOUT, "opening broken.nii.gz"):
        select.select_option("broken.nii.gz")
    text = wh.wait_for_text(
        page, "status", lambda t: "broken.nii.gz" in t, JOB_TIMEOUT, "a message naming broken.nii.gz"
    )
    assert "Loaded" not in text, text
    page.screenshot(path=str(shot("bad-file")), full_page=True)
    assert web_server.alive(), web_server.log_tail()
    # the same page still works
    load_sample(page, shot)


def test_a_real_ct_from_the_data_folder_opens(page, shot):
    select = wh.by_testid(page, "file-select")
    select.locator("option[value='tiny_ct.nii.gz']").wait_for(state="attached", timeout=30_000)
    with wh.job(page, JOB_TIMEOUT, "opening tiny_ct.nii.gz"):
        select.select_option("tiny_ct.nii.gz")
    wh.wait_for_text(page, "status", lambda t: "Loaded tiny_ct.nii.gz" in t, JOB_TIMEOUT, "the CT opened")
    wh.wait_for_pixels(
        page,
        "slice-view",
        wh.view_is_drawn,
        timeout=JOB_TIMEOUT,
        what="the opened CT",
        save_to=shot("opened"),
    )


def test_path_traversal_is_rejected(page, web_server):
    """A file name leading out of the data folder, sent as the page would send a chosen file, is
    refused with a message, although a real CT lies there."""
    outside = web_server.data_dir.parent / "outside" / "secret_ct.nii.gz"
    assert outside.is_file()
    for name in ("../outside/secret_ct.nii.gz", str(outside)):
        with wh.job(page, JOB_TIMEOUT, f"opening {name}"):
            page.evaluate(
                """([sel, name]) => { const s = document.querySelector(sel);
                    const o = document.createElement('option'); o.value = name; o.textContent = name;
                    s.appendChild(o); s.value = name;
                    s.dispatchEvent(new Event('change', {bubbles: true})); }""",
                ['[data-testid="file-select"]', name],
            )
        text = wh.wait_for_text(page, "status", lambda t, n=name: n in t, JOB_TIMEOUT, f"a refusal of {name}")
        assert "Loaded" not in text, text
    assert web_server.alive(), web_server.log_tail()


@pytest.mark.parametrize(
    "path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd"]
)
def test_http_paths_outside_the_app_are_not_served(web_server, path):
    parts = urllib.parse.urlsplit(web_server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read(100_000)
    finally:
        connection.close()
    assert b"root:" not in body, f"GET {path} served /etc/passwd"
    assert web_server.alive()
