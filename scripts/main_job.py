"""The main job on the bundled sample data: everything the toolkit does, on the synthetic phantom.

Run through ``./scripts/run_main_job.sh`` (which sets up the environment). Each module adds
its step; a step that needs model weights says in one line how to install them and the job
goes on with the rest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))


def step_phantom(out: Path, args: argparse.Namespace, context: dict) -> None:
    from DAPAtlasLib.phantom import make_phantom
    from DAPAtlasLib.sample_data import write_phantom_case

    phantom = make_phantom(args.size, seed=args.seed, sex=args.sex, orientation="LPS", n_lesions=args.lesions)
    paths = write_phantom_case(phantom, out / "phantom")
    print(
        f"  phantom: {phantom.ct.shape} voxels at {tuple(round(s, 2) for s in phantom.ct.spacing_mm)} mm, "
        f"{len(set(phantom.labels.array.ravel().tolist())) - 1} structures, {len(phantom.lesion_info)} lesions"
    )
    for role, path in paths.items():
        print(f"    {role:9s} {path.relative_to(out.parent)}")
    context["phantom"] = phantom


def step_limis_text_to_mask(out: Path, args: argparse.Namespace, context: dict) -> None:
    """LIMIS: "liver" -> box (Grounding DINO + LoRA) -> mask (ScribblePrompt) on a phantom slice."""
    from LIMISLib.model_weights import PIPELINE_MODELS, missing_summary, weights_manager

    manager = weights_manager()
    missing = missing_summary(manager, PIPELINE_MODELS)
    if missing:
        print(f"  skipped: {missing}")
        return
    import numpy as np

    from DAPAtlasLib.label_schema import label_id
    from LIMISLib.initial_segmentation import render_segmentation_png, segment_from_text
    from LIMISLib.model_weights import build_limis_models
    from LIMISLib.slice_geometry import AxialSliceGeometry

    phantom = context["phantom"]
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    liver = phantom.labels.array == label_id("liver")
    other_axes = tuple(axis for axis in range(3) if axis != geometry.slice_axis)
    index = int(np.argmax(liver.sum(axis=other_axes)))
    image = geometry.extract(phantom.ct.array, index).astype(np.float32)
    reference = geometry.extract(liver, index)
    from LIMISLib.exceptions import StructureNotFoundError

    lang2bbox, bbox2mask = build_limis_models(manager)
    try:
        result = segment_from_text(lang2bbox, bbox2mask, image, "liver")
    except StructureNotFoundError as error:
        print(f"  liver not found on slice {index}: {error}")
        return
    mask = result.prediction.mask()
    dice = 2 * np.logical_and(mask, reference).sum() / max(1, mask.sum() + reference.sum())
    png = render_segmentation_png(
        out / "limis" / "liver_text_to_mask.png",
        image,
        mask,
        result.box_xyxy,
        window=result.window,
        pixel_spacing_xy_mm=geometry.pixel_spacing_mm,
        title=f"liver, slice {index}: score {result.detection.score:.2f}, Dice {dice:.2f}",
    )
    score = result.detection.score
    print(f"  liver on slice {index}: box score {score:.2f}, Dice vs phantom label {dice:.3f}")
    print(f"    png       {png.relative_to(out.parent)}")


def step_cc_metrics(out: Path, args: argparse.Namespace, context: dict) -> None:
    """CC-Metrics of the phantom's lesions against a prediction with typical model errors."""
    import numpy as np

    from CCMetricsLib.lesion_report import write_lesion_report
    from CCMetricsLib.synthetic import perturb_prediction

    phantom = context["phantom"]
    lesions = phantom.lesions.with_array((phantom.lesions.array > 0).astype(np.uint8))
    per_kind = max(1, len(phantom.lesion_info) // 6)
    prediction, plan = perturb_prediction(
        lesions.array,
        missed=per_kind,
        dilated=per_kind,
        eroded=per_kind,
        shifted=per_kind,
        false_positives=per_kind,
        erosion_voxels=1,
        false_positive_radius_mm=2 * max(phantom.lesions.spacing_mm),
        spacing=phantom.lesions.spacing_kji_mm,
        false_positives_within=phantom.ct.array > -500,
        seed=args.seed,
    )
    notes = {c: plan.kind_of(c) for c in range(1, 1 + len(phantom.lesion_info))}
    report = write_lesion_report(
        lesions,
        {"perturbed model": lesions.with_array(prediction.astype(np.uint8))},
        out / "cc_metrics",
        component_notes=notes,
        distance_worst=50.0,
    )
    print(f"  {len(plan.false_positives)} false positives added; missed lesions: {plan.missed}")
    print("  " + report.summary_table.replace("\n", "\n  "))
    print("  " + report.component_table.replace("\n", "\n  "))
    for role, path in report.paths.items():
        print(f"    {role:10s} {path.relative_to(out.parent)}")


STEPS = [
    ("Synthetic whole-body CT phantom", step_phantom),
    ("LIMIS text -> box -> mask", step_limis_text_to_mask),
    ("CC-Metrics: per-lesion evaluation of a perturbed prediction", step_cc_metrics),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/main_job", help="output folder (replaced on every run)")
    parser.add_argument("--size", default="small", help="phantom size preset (tiny|small|medium|realistic)")
    parser.add_argument("--sex", default="M", choices=["M", "F"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lesions", type=int, default=12)
    args = parser.parse_args(argv)

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # the job's own output folder, never user data
    out.mkdir(parents=True)
    context: dict = {}  # what earlier steps hand to later ones (the phantom, ...)
    for number, (title, step) in enumerate(STEPS, start=1):
        start = time.perf_counter()
        print(f"[{number}/{len(STEPS)}] {title}")
        step(out, args, context)
        print(f"  done in {time.perf_counter() - start:.1f} s")
    print(f"All results are in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
