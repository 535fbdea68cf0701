"""Web app latency: a LIMIS command typed in the browser -> its mask drawn in the slice view.

Run (Debian's chromium and the ``test`` extra installed)::

    PYTHONPATH=AnatomyCommon:DAPAtlasModule:LIMIS:CCMetricsModule \\
        .venv/bin/python bench/bench_web_latency.py --size medium --commands 20

What it does, all in this run: writes a phantom CT and its label map (``--size``) into a fresh
data folder, starts the web app (``python -m anatomy_web``) on a free loopback port with no LIMIS
weights (the weight-free baseline with atlas boxes), opens both files from the page's file chooser
in headless Chromium, types ``segment the liver`` and Accept, then ``--commands`` commands that
change the mask each time ("raise the threshold" / "lower the threshold" in turn). For each it
measures, from the Enter key press:

* **drawn**: until a screenshot of the slice view differs from the one before the command (what a
  person sees; includes up to one screenshot interval, printed);
* **first frame**: until the view's image element received its first new frame (in-page clock);
* **job**: until the app reported the job finished (``data-jobs`` of the status element).

The reference, measured in the same run: the same commands on the same phantom and slice through
``LIMISLib.VolumeSession`` in this process (parse + model + step, no web); the ratio drawn / Lib
is the web layer's share. Goal: drawn p95 < 1 s.

Sizes: ``small`` (3 mm, 140 x 110 x 340) and ``medium`` (1.6 x 1.6 x 2 mm, 262 x 206 x 510) fit a
2-core, few-GB share of a machine; ``realistic`` (512 x 512 x 510) needs about 8 GB free for the
phantom, the server's MRML copy and the reference (default: medium for that reason).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule", "Testing"):
    sys.path.insert(0, str(ROOT / folder))

from web import web_harness as wh  # noqa: E402  (Testing/web: the browser tests' harness)
from web import web_pixels  # noqa: E402

COMMANDS = ("raise the threshold", "lower the threshold")
#: a command's mask change covers at least this fraction of the view (a few hundred screen pixels)
MIN_CHANGE = 0.0002

FRAME_PROBE = """sel => {
  window.__frames = [];
  const root = document.querySelector(sel);
  const seen = new WeakSet();
  const watch = img => { if (seen.has(img)) return; seen.add(img);
    new MutationObserver(() => window.__frames.push(performance.now()))
      .observe(img, {attributes: true, attributeFilter: ['src']}); };
  root.querySelectorAll('img').forEach(watch);
  new MutationObserver(() => root.querySelectorAll('img').forEach(watch))
    .observe(root, {childList: true, subtree: true});
  document.addEventListener('keydown',
    e => { if (e.key === 'Enter') window.__enter = performance.now(); }, true);
}"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def write_case(folder: Path, size: str) -> dict:
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from AnatomyCommonLib.image_io import write_volume

    start = time.perf_counter()
    phantom = make_phantom(size, seed=0, sex="M", orientation="LPS")
    write_volume(phantom.ct, folder / "ct.nii.gz", overwrite=True)
    write_volume(phantom.labels, folder / "labels.nii.gz", overwrite=True)
    return {"phantom": phantom, "seconds": time.perf_counter() - start}


def reference_latencies(phantom, n: int) -> dict:
    """The same commands through the Lib in this process: seconds per command."""
    import numpy as np

    from AnatomyCommonLib.anatomy.label_schema import label_id
    from LIMISLib import VolumeSession, parse_command
    from LIMISLib.reference_models import IntensityBBox2Mask

    session = VolumeSession(phantom.ct, IntensityBBox2Mask(), labels=phantom.labels)
    ks = np.nonzero((phantom.labels.array == label_id("liver")).any(axis=(1, 2)))[0]
    session.set_active_slice(round(float(ks.mean())))

    def run(text: str) -> float:
        start = time.perf_counter()
        session.apply(session.with_default_box(parse_command(text, session.parse_context())))
        return time.perf_counter() - start

    first = run("segment the liver")
    run("accept")
    return {"first": first, "commands": [run(COMMANDS[i % 2]) for i in range(n)]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def type_command(page, text: str, timeout: float, server_pid: int) -> dict:
    """Type ``text`` + Enter; seconds until drawn / first frame / job done (see module doc)."""
    field = wh.text_input(page, "limis-command")
    page.wait_for_function("e => !e.disabled", arg=field.element_handle(), timeout=timeout * 1000)
    before = wh.stable_pixels(page, "slice-view", settle=0.3)
    jobs = wh.jobs_done(page)
    field.fill(text)
    page.evaluate("() => { window.__frames = []; }")
    cpu_before = cpu_seconds(server_pid)
    start = time.perf_counter()
    field.press("Enter")
    drawn, polls, shot_seconds = None, 0, []
    while time.perf_counter() - start < timeout:
        t = time.perf_counter()
        pixels = wh.element_pixels(page, "slice-view")
        shot_seconds.append(time.perf_counter() - t)
        polls += 1
        if web_pixels.changed_fraction(before, pixels) >= MIN_CHANGE:
            drawn = time.perf_counter() - start
            break
    if drawn is None:
        raise RuntimeError(f"{text!r}: the slice view did not change within {timeout:.0f} s")
    page.wait_for_function(
        "([sel, n]) => { const e = document.querySelector(sel); return Number(e.dataset.jobs) > n"
        " && e.dataset.busy !== 'true'; }",
        arg=['[data-testid="status"]', jobs],
        timeout=timeout * 1000,
    )
    job = time.perf_counter() - start
    server_cpu = cpu_seconds(server_pid) - cpu_before
    frames = page.evaluate("() => (window.__frames || []).map(t => (t - window.__enter) / 1000)")
    first_frame = next((f for f in frames if f >= 0), None)
    return {
        "command": text,
        "drawn": drawn,
        "first_frame": first_frame,
        "job": job,
        "server_cpu": server_cpu,
        "polls": polls,
        "screenshot": statistics.median(shot_seconds),
        "reply": wh.text_of(page, "limis-reply"),
    }


def open_file(page, name: str, timeout: float) -> None:
    with wh.job(page, timeout, f"opening {name}"):
        select = wh.by_testid(page, "file-select")
        select.locator(f"option[value='{name}']").wait_for(state="attached", timeout=timeout * 1000)
        select.select_option(name)
    status = wh.text_of(page, "status")
    if "Loaded" not in status:
        raise RuntimeError(f"opening {name}: {status}")


def summary_line(label: str, values: list[float]) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 95) * 1000
    return f"{label:<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   max {max(values) * 1000:8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="medium", choices=("tiny", "small", "medium", "realistic"))
    parser.add_argument("--commands", type=int, default=20, help="measured commands (after the first)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per step before giving up")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    missing = wh.missing_requirements()
    if missing:
        print("bench_web_latency needs " + "; ".join(missing), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench_web_") as tmp:
        base = Path(tmp)
        (base / "data").mkdir()
        case = write_case(base / "data", args.size)
        phantom = case["phantom"]
        shape = "x".join(map(str, phantom.ct.shape))
        print(f"phantom {args.size}: {shape} voxels, written in {case['seconds']:.1f} s")
        reference = reference_latencies(phantom, args.commands)
        del phantom, case

        server = wh.start_server(
            base / "data", base / "output", base / "logs", weights_dir=base / "no_weights"
        )
        try:
            with wh.chromium() as browser:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(server.url, timeout=args.timeout * 1000)
                wh.by_testid(page, "load-sample").wait_for(state="visible", timeout=args.timeout * 1000)
                start = time.perf_counter()
                open_file(page, "ct.nii.gz", args.timeout)
                open_file(page, "labels.nii.gz", args.timeout)
                wh.wait_for_pixels(page, "slice-view", wh.view_is_drawn, timeout=args.timeout, what="the CT")
                load_seconds = time.perf_counter() - start
                tab = wh.by_testid(page, "tab-limis")
                if tab.count():
                    tab.click()
                page.evaluate(FRAME_PROBE, '[data-testid="slice-view"]')
                first = type_command(page, "segment the liver", args.timeout, server.process.pid)
                with wh.job(page, args.timeout, "Accept"):
                    wh.by_testid(page, "limis-accept").click()
                runs = [
                    type_command(page, COMMANDS[i % 2], args.timeout, server.process.pid)
                    for i in range(args.commands)
                ]
        finally:
            server.stop()

    drawn = [r["drawn"] for r in runs]
    frames = [r["first_frame"] for r in runs if r["first_frame"] is not None]
    jobs = [r["job"] for r in runs]
    lib = reference["commands"]
    print(f"opening CT + label map from the page: {load_seconds:.1f} s")
    print(
        f"first command 'segment the liver' (starts the LIMIS session): drawn {first['drawn'] * 1000:.0f} ms,"
        f" server CPU {first['server_cpu'] * 1000:.0f} ms,"
        f" Lib {reference['first'] * 1000:.0f} ms"
    )
    print(f"{len(runs)} commands ({' / '.join(COMMANDS)}), Enter -> ...")
    print(summary_line("drawn (screenshot differs)", drawn))
    if frames:
        print(summary_line("first new frame (in page)", frames))
    print(summary_line("job finished (data-jobs)", jobs))
    print(summary_line("server CPU per command", [r["server_cpu"] for r in runs]))
    print(summary_line("reference: Lib in-process", lib))
    shot = statistics.median(r["screenshot"] for r in runs)
    print(f"one screenshot of the view takes {shot * 1000:.0f} ms (the 'drawn' resolution)")
    print(f"ratio drawn / Lib (p50): {statistics.median(drawn) / max(statistics.median(lib), 1e-6):.0f}x")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    p95 = percentile(drawn, 95)
    print(f"goal drawn p95 < 1 s: {'met' if p95 < 1.0 else 'NOT met'} ({p95:.2f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "size": args.size,
                    "first": first,
                    "runs": runs,
                    "reference": reference,
                    "load_seconds": load_seconds,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
