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
from AnatomyCommonLib.cluster import add_cluster_arguments, cluster_options


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

    evaluate = commands.add_parser(
        "evaluate-interaction",
        help="simulated-user evaluation: an oracle clinician types commands; Dice per step, summary, plot",
    )
    evaluate.add_argument("--phantom-seeds", type=int, nargs="+", help="phantom seeds to use as cases")
    evaluate.add_argument("--phantom-size", default="tiny", help="phantom size preset (tiny|small|...)")
    evaluate.add_argument("--ct-dir", help="folder of CT volumes (instead of phantoms)")
    evaluate.add_argument("--labels-dir", help="folder of label maps in DAP ids, same file names as --ct-dir")
    evaluate.add_argument(
        "--structures", nargs="+", default=["liver", "spleen", "kidney left", "aorta"], help="structures"
    )
    evaluate.add_argument("--steps", type=int, default=8, help="oracle actions per case")
    evaluate.add_argument("--slices-per-case", type=int, default=3, help="axial slices per structure")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the first-box jitter")
    evaluate.add_argument("--model", choices=["neural", "baseline"], default="baseline")
    evaluate.add_argument("--device", default="cpu", help="torch device for the neural models")
    evaluate.add_argument(
        "--out", required=True, help="output folder: steps.csv, summary.json, dice_vs_step.png"
    )
    evaluate.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    add_cluster_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate_interaction)


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


def _evaluate_interaction(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.errors import AnatomyToolkitError

    from .organ_vocabulary import resolve_structure
    from .simulated_user import evaluate_interaction, phantom_cases, write_outputs

    if args.steps < 1 or args.slices_per_case < 1:
        raise AnatomyToolkitError("--steps and --slices-per-case must be at least 1.")
    try:
        structures = [resolve_structure(s) for s in args.structures]
    except KeyError as error:
        raise AnatomyToolkitError(f"--structures: {error.args[0]}") from None
    if (args.ct_dir is None) == (args.phantom_seeds is None):
        raise AnatomyToolkitError("Give either --phantom-seeds or --ct-dir with --labels-dir.")
    cluster = cluster_options(args)
    if args.ct_dir is not None and args.labels_dir is None:
        raise AnatomyToolkitError("--ct-dir needs --labels-dir (label maps with the same file names).")
    if cluster.distributed:
        return _evaluate_interaction_on_cluster(args, structures, cluster)
    if args.ct_dir is not None:
        cases = _folder_cases(args.ct_dir, args.labels_dir, structures, args.slices_per_case)
    else:
        cases = phantom_cases(args.phantom_seeds, structures, slices_per_case=args.slices_per_case,
                              size=args.phantom_size)  # fmt: skip
    if args.model == "baseline":
        from .reference_models import IntensityBBox2Mask

        bbox2mask = IntensityBBox2Mask()
    else:
        from .model_weights import build_limis_models

        _, bbox2mask = build_limis_models(device=args.device)
    results = evaluate_interaction(cases, bbox2mask, steps=args.steps, seed=args.seed)
    summary = write_outputs(results, args.out, model_name=bbox2mask.name, overwrite=args.overwrite)
    _print_summary(summary, bbox2mask.name, args.out)
    return 0


def _evaluate_interaction_on_cluster(args: argparse.Namespace, structures, cluster) -> int:
    """One task per case on Dask workers; the same outputs as the sequential run (see
    :mod:`LIMISLib.interaction_dataset`). Failed cases are named on stderr and the exit code is 1."""
    from pathlib import Path

    from AnatomyCommonLib.errors import OutputExistsError

    from .interaction_dataset import (
        InteractionCase,
        evaluate_interaction_cases,
        folder_sources,
        interaction_jobs,
        phantom_sources,
    )
    from .simulated_user import write_outputs

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:  # before any case runs
        raise OutputExistsError(f"{out} is not empty; choose another folder or pass --overwrite.")
    if args.ct_dir is not None:
        sources = folder_sources(_folder_pairs(args.ct_dir, args.labels_dir))
    else:
        sources = phantom_sources(args.phantom_seeds, args.phantom_size)
    jobs, failures = interaction_jobs(sources, structures, args.slices_per_case, seed=args.seed)
    task = InteractionCase(args.model, args.device, args.steps)
    results, model_name, failed = evaluate_interaction_cases(jobs, task, cluster)
    failures.update(failed)
    for case, reason in failures.items():
        print(f"failed {case}: {reason}", file=sys.stderr)
    if results:
        summary = write_outputs(results, args.out, model_name=model_name, overwrite=args.overwrite)
        _print_summary(summary, model_name, args.out)
    if failures:
        print(f"{len(failures)} volume(s) or case(s) failed.", file=sys.stderr)
        return 1
    if not results:
        write_outputs(results, args.out, model_name="", overwrite=args.overwrite)  # raises: no case
    return 0


def _print_summary(summary, model_name: str, out) -> None:
    print(
        f"{summary['cases']} cases, model {model_name}: mean Dice {summary['mean_dice_first']:.3f} -> "
        f"{summary['mean_dice_last']:.3f} (change {summary['mean_dice_change']:+.3f} +/- "
        f"{summary['sd_dice_change']:.3f}); improved {summary['improved']:.0%}, "
        f"worse {summary['worse']:.0%}, unchanged {summary['unchanged']:.0%}. Written to {out}"
    )


def _folder_pairs(ct_dir, labels_dir):
    """(CT path, label map path) of every CT in ``ct_dir``; each needs a label map of its name."""
    from pathlib import Path

    from AnatomyCommonLib.errors import AnatomyToolkitError

    cts = sorted(p for p in Path(ct_dir).iterdir() if not p.name.startswith("."))
    pairs = [(p, Path(labels_dir) / p.name) for p in cts]
    missing = [str(label) for _, label in pairs if not label.exists()]
    if not cts or missing:
        raise AnatomyToolkitError(
            f"Every CT in {ct_dir} needs a label map of the same name in {labels_dir}; missing: "
            f"{', '.join(missing[:5]) or 'no CT files found'}."
        )
    return pairs


def _folder_cases(ct_dir, labels_dir, structures, slices_per_case):
    from AnatomyCommonLib.anatomy.label_schema import label_id
    from AnatomyCommonLib.image_io import read_labelmap, read_volume

    from .simulated_user import labelled_volume_cases

    for ct_path, label_path in _folder_pairs(ct_dir, labels_dir):
        ct, labels = read_volume(ct_path), read_labelmap(label_path)
        ct.require_same_grid(labels, ("the CT", "the label map"))
        yield from labelled_volume_cases(ct_path.name, ct, labels, structures, slices_per_case, label_id)
