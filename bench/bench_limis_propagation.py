"""Per-organ 3D Dice of LIMIS propagation on the phantom with the weight-free baseline.

Each organ is segmented on its middle slice (box from the DAP post-processed map WITH injected
errors, default adaptation accepted), then propagated both ways; Dice against the phantom's truth.
"before": the slice-to-slice stop rules only; "after": plus the atlas and intensity-profile rules.

    python bench/bench_limis_propagation.py [--size small] [--seeds 3 4 5]

The new rules' thresholds were chosen on seeds 0-2; report on other seeds (default 3-5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))

ORGANS = ("liver", "spleen", "kidney left", "kidney right", "aorta")


def run(size: str, seeds: list[int], organs: tuple[str, ...] = ORGANS, verbose: bool = False) -> dict:
    from AnatomyCommonLib.anatomy.label_schema import label_id
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.postprocess import postprocess
    from DAPAtlasLib.simulated_model_errors import inject_model_errors
    from LIMISLib.reference_models import IntensityBBox2Mask
    from LIMISLib.slice_propagation import PropagationConfig
    from LIMISLib.volume_session import VolumeSession

    configs = {"before": PropagationConfig.slice_to_slice_only(), "after": PropagationConfig()}
    results: dict = {name: {organ: [] for organ in organs} for name in configs}
    outside: dict = {name: {organ: [] for organ in organs} for name in configs}
    start_dice: dict = {organ: [] for organ in organs}
    for seed in seeds:
        phantom = make_phantom(size, seed=seed, orientation="LPS", n_lesions=0)
        corrupted = inject_model_errors(phantom.labels, sex=phantom.sex)
        atlas = postprocess(corrupted.labels, ct=phantom.ct, sex=phantom.sex).labels
        for organ in organs:
            truth = phantom.labels.array == label_id(organ)
            present = np.flatnonzero(truth.any(axis=(1, 2)))
            middle = int(present[len(present) // 2])
            for name, config in configs.items():
                session = VolumeSession(
                    phantom.ct, IntensityBBox2Mask(), labels=atlas, propagation=config, active_slice=middle
                )
                session.segment(organ)
                session.handle("accept", semantic=False)
                if name == "before":
                    first = session.mask_volume().array[middle] > 0
                    start_dice[organ].append(
                        float(2 * np.sum(first & truth[middle]) / (np.sum(first) + np.sum(truth[middle])))
                    )
                reply = session.propagate("both")
                mask = session.mask_volume().array > 0
                dice = 2 * np.sum(mask & truth) / (np.sum(mask) + np.sum(truth))
                results[name][organ].append(float(dice))
                outside[name][organ].append(len(set(session.segmented_slices()) - set(present.tolist())))
                if verbose:
                    print(f"seed {seed} {organ:13s} {name:6s} Dice {dice:.3f} | {reply.message[:160]}")
    return {"dice": results, "outside": outside, "start_dice": start_dice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    args = parser.parse_args()
    results = run(args.size, args.seeds, verbose=True)
    dice, outside, start = results["dice"], results["outside"], results["start_dice"]
    print(f"\nphantom {args.size}, seeds {args.seeds}, weight-free baseline (mean +/- SD over seeds)")
    print("| organ | start-slice Dice | 3D Dice before | 3D Dice after | slices outside organ before/after |")
    print("|---|---|---|---|---|")
    for organ in ORGANS:
        b, a = np.array(dice["before"][organ]), np.array(dice["after"][organ])
        s0 = np.array(start[organ])
        out_b, out_a = np.mean(outside["before"][organ]), np.mean(outside["after"][organ])
        print(
            f"| {organ} | {s0.mean():.3f} | {b.mean():.3f} +/- {b.std():.3f} "
            f"| {a.mean():.3f} +/- {a.std():.3f} | {out_b:.1f} / {out_a:.1f} |"
        )


if __name__ == "__main__":
    main()
