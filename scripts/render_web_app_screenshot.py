"""Start the web app on a free loopback port, walk the three tools in headless Chromium and save
screenshots (the README's ``Resources/Screenshots/web_app.png`` comes from here).

    .venv/bin/python scripts/render_web_app_screenshot.py [--out Resources/Screenshots/web_app.png]

Needs the ``test`` extra (playwright) and Debian's ``/usr/bin/chromium`` (or ``--chromium PATH``);
nothing is downloaded. Prints how long each step took as seen from the browser (the page's
``jobs_done`` counter), on whatever machine this runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("WebApp", "AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, output: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(ROOT / r) for r in SOURCE_ROOTS), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "anatomy_web", "--port", str(port), "--output", str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        line = process.stdout.readline()
        if line.startswith("Serving on"):
            return process
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit("the web app did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "Resources" / "Screenshots" / "web_app.png"))
    parser.add_argument("--steps-dir", default=None, help="also save one PNG per step here")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "out")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1500, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector('[data-testid="load-sample"]', timeout=60000)
                status = '[data-testid="status"]'

                def run(label: str, action) -> None:
                    before = int(page.get_attribute(status, "data-jobs") or 0)
                    start = time.perf_counter()
                    action()
                    page.wait_for_function(
                        f"document.querySelector('{status}').dataset.jobs > {before} && "
                        f"document.querySelector('{status}').dataset.busy === 'false'",
                        timeout=180000,
                    )
                    print(f"{label}: {time.perf_counter() - start:.1f} s | {page.inner_text(status)[:100]}")
                    page.wait_for_timeout(1500)  # the views' next frames
                    if args.steps_dir:
                        Path(args.steps_dir).mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(Path(args.steps_dir) / f"{label.replace(' ', '_')}.png"))

                def command(text: str):
                    return lambda: (
                        page.fill('[data-testid="limis-command"]', text),
                        page.press('[data-testid="limis-command"]', "Enter"),
                    )

                run("load sample", lambda: page.click('[data-testid="load-sample"]'))
                page.click('[data-testid="tab-dap"]')
                run("dap rules", lambda: page.click('[data-testid="dap-postprocess"]'))
                page.click('[data-testid="tab-cc"]')
                run("cc metrics", lambda: page.click('[data-testid="cc-run"]'))
                page.click('[data-testid="tab-limis"]')
                run("segment the liver", command("segment the liver"))
                run("accept", command("accept"))
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.out)
                print(f"saved {args.out}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
