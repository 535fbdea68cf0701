"""``python -m anatomy_web``: serve the web app (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anatomy_web",
        description="The toolkit in a browser: LIMIS, DAP Atlas and CC-Metrics on one trame-slicer page.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind; the default serves this machine only"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="folder the file chooser reads images from (nothing outside it is read); "
        "default: <output>/sample, where Load sample writes the phantom case",
    )
    parser.add_argument(
        "--output",
        default=str(ROOT / "out" / "web_app"),
        help="folder the app writes into (nothing outside it)",
    )
    parser.add_argument(
        "--sample-size",
        default="small",
        choices=["tiny", "small", "medium", "realistic"],
        help="phantom size of Load sample (voxels 6, 3, 1.6-2 and 0.8-2 mm; realistic needs ~8 GB of RAM)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Path(args.output).resolve()
    data = Path(args.data).resolve() if args.data else output / "sample"
    if args.data and not data.is_dir():
        print(f"anatomy_web: error: --data {data} is not a folder", file=sys.stderr)
        return 2
    if not 0 <= args.port < 65536:
        print(f"anatomy_web: error: --port {args.port} is not a TCP port (0-65535)", file=sys.stderr)
        return 2
    output.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("anatomy_web").setLevel(logging.INFO)
    try:
        from .app import AnatomyWebApp
    except ImportError as error:  # the "web" extra is missing
        print(
            f"anatomy_web: error: {error}; install the web extra (./scripts/setup_env.sh web, or "
            "pip install -e '.[web]') or start through ./scripts/run_web_app.sh",
            file=sys.stderr,
        )
        return 2

    app = AnatomyWebApp(data_dir=data, output_dir=output, sample_size=args.sample_size)

    def announce(**_):
        print(f"Serving on http://{args.host}:{app.server.port}/", flush=True)

    app.server.controller.on_server_ready.add(announce)
    try:
        app.server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False)
    except OSError as error:  # port taken, address not on this machine
        print(f"anatomy_web: error: cannot serve on {args.host}:{args.port}: {error.strerror or error}; "
              "choose another --port", file=sys.stderr)  # fmt: skip
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
