"""``python -m DAPAtlasLib phantom``: write the synthetic whole-body CT sample data."""

from __future__ import annotations

import argparse


def _phantom(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from AnatomyCommonLib.anatomy.phantom.sample_case import write_phantom_case

    phantom = make_phantom(
        args.size, seed=args.seed, sex=args.sex, orientation=args.orientation, n_lesions=args.lesions
    )
    paths = write_phantom_case(phantom, args.out_dir, overwrite=args.overwrite)
    for role, path in paths.items():
        print(f"{role:9s} {path}")
    return 0


def add_commands(commands) -> None:
    """Register the ``phantom`` sub-command on an argparse sub-parsers object."""
    from AnatomyCommonLib.anatomy.phantom.materials import SIZE_PRESETS

    phantom = commands.add_parser(
        "phantom", help="write a synthetic whole-body CT with DAP labels and lesions (NIfTI + PNG overview)"
    )
    phantom.add_argument("out_dir", help="folder for ct.nii.gz, labels.nii.gz, lesions.nii.gz, overview.png")
    phantom.add_argument(
        "--size",
        default="small",
        choices=list(SIZE_PRESETS),
        help="grid preset; voxel spacing left-right x posterior-anterior x inferior-superior: "
        + ", ".join(
            f"{name} {'x'.join(f'{s:g}' for s in preset['spacing_ras_mm'])} mm"
            for name, preset in SIZE_PRESETS.items()
        )
        + " (default: small)",
    )
    phantom.add_argument(
        "--sex", default="M", choices=["M", "F"], help="phantom sex: pelvis shape and sex organs (default: M)"
    )
    phantom.add_argument(
        "--seed", type=int, default=0, help="random seed of lesion placement and noise (default: 0)"
    )
    phantom.add_argument("--lesions", type=int, default=12, help="number of synthetic lesions (default 12)")
    phantom.add_argument(
        "--orientation", default="LPS", help="voxel axis directions, e.g. RAS, LPS, LAS (default LPS)"
    )
    phantom.add_argument("--overwrite", action="store_true", help="replace existing files")
    phantom.set_defaults(handler=_phantom)
