"""LIMIS interaction commands: ``parse`` a typed command, ``replay`` a scripted session.

.. code-block:: bash

    python -m LIMISLib parse "move the box up five pixels"          # -> {"kind": "move_box", ...}
    python -m LIMISLib parse "3" --context examples                 # dialogue context
    python -m LIMISLib replay session.txt --ct ct.nii.gz --out out/  # PNG per step + replay.json
    python -m LIMISLib replay session.txt --ct ct.nii.gz --labels labels.nii.gz --model baseline --out out/

``replay`` uses the neural models from the installed weights (``--model neural``, the default;
missing weights give a one-line error naming them and the install command) or the explicitly
labelled non-learned baseline (``--model baseline``, :class:`LIMISLib.reference_models.IntensityBBox2Mask`).
"""

from __future__ import annotations

import argparse
import sys

from AnatomyCommonLib.cli import exit_codes_epilog, write_json


def add_commands(commands) -> None:
    """Register the interaction sub-commands on an argparse sub-parsers object."""
    parse = commands.add_parser(
        "parse",
        help="parse a typed LIMIS command and print its kind and arguments as JSON",
        epilog=exit_codes_epilog("3 the command is of kind 'unknown' (the JSON is printed all the same)"),
    )
    parse.add_argument("text", nargs="+", help="the command as a user would type it")
    parse.add_argument(
        "--context",
        choices=["proposal", "question", "examples", "grid"],
        help="what the session is waiting for (resolves bare replies such as '3' or 'done')",
    )
    parse.add_argument("--rules-only", action="store_true", help="do not use the sentence-embedding matcher")
    parse.set_defaults(handler=_parse)

    replay = commands.add_parser(
        "replay",
        help="replay a scripted session on a CT and write a PNG per step",
        epilog=exit_codes_epilog("1 at least one line failed (listed on stderr; the PNGs are written)"),
    )
    replay.add_argument(
        "script",
        help="text file: one command per line, '@slice N', '@slice middle <structure>', '@box x0 y0 x1 y1'",
    )
    replay.add_argument("--ct", required=True, help="CT volume (NIfTI, NRRD, MHA or a DICOM folder)")
    replay.add_argument("--out", required=True, help="output folder for the PNGs and replay.json")
    replay.add_argument(
        "--labels",
        help="reference label map (DAP ids): '@slice middle X' and boxes when there is no detector",
    )
    replay.add_argument(
        "--model",
        choices=["neural", "baseline"],
        default="neural",
        help="neural = Grounding DINO + ScribblePrompt from the installed weights; "
        "baseline = the non-learned intensity baseline (no weights, clearly not LIMIS's network)",
    )
    replay.add_argument("--device", default="cpu", help="torch device for the neural models (cpu, cuda, ...)")
    replay.add_argument("--rules-only", action="store_true", help="do not use the sentence-embedding matcher")
    replay.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    replay.set_defaults(handler=_replay)


def _parse(args: argparse.Namespace) -> int:
    from .command_grammar import ParseContext, parse_command

    command = parse_command(
        " ".join(args.text), ParseContext(pending=args.context), semantic=False if args.rules_only else None
    )
    write_json(command.to_json(), None)
    return 0 if command.kind != "unknown" else 3


def _replay(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.image_io import read_labelmap, read_volume

    from .session_replay import failures, read_script, replay
    from .volume_session import VolumeSession

    lines = read_script(args.script)
    ct = read_volume(args.ct)
    labels = read_labelmap(args.labels) if args.labels else None
    if labels is not None:
        ct.require_same_grid(labels, ("the CT", "the label map"))
    if args.model == "baseline":
        from .reference_models import IntensityBBox2Mask

        print(
            "Using the baseline (no weights): a non-learned intensity model, not LIMIS's neural network.",
            file=sys.stderr,
        )
        lang2bbox, bbox2mask = None, IntensityBBox2Mask()
    else:
        from .model_weights import build_limis_models

        lang2bbox, bbox2mask = build_limis_models(device=args.device)
    session = VolumeSession(ct, bbox2mask, lang2bbox=lang2bbox)

    def echo(record) -> None:
        mark = "ok " if record.ok else "-- "
        print(f"{record.number:2d} {mark}{record.text!r:40} -> {record.kind}: {record.message[:140]}")

    records = replay(
        session,
        lines,
        args.out,
        labels=labels,
        semantic=False if args.rules_only else None,
        overwrite=args.overwrite,
        echo=echo,
    )
    print(f"{len(records)} lines replayed; PNGs and replay.json in {args.out}")
    failed = failures(records)
    if failed:
        print(f"{len(failed)} of {len(records)} lines failed:", file=sys.stderr)
        for record in failed:
            print(f"  line {record.number} {record.text!r}: {record.message}", file=sys.stderr)
        return 1
    return 0
