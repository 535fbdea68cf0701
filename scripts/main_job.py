"""The main job on the bundled sample data: everything the toolkit does, on the synthetic phantom.

Run through ``./scripts/run_main_job.sh`` (which sets up the environment). Each module adds
its step; a step that needs model weights says in one line how to install them and the job
goes on with the rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))


def step_phantom(out: Path, args: argparse.Namespace, context: dict) -> None:
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from AnatomyCommonLib.anatomy.phantom.sample_case import write_phantom_case

    phantom = make_phantom(args.size, seed=args.seed, sex=args.sex, orientation="LPS", n_lesions=args.lesions)
    paths = write_phantom_case(phantom, out / "phantom")
    spacing = tuple(round(s, 2) for s in phantom.ct.spacing_mm)
    print(
        f"  phantom: {phantom.ct.shape} voxels at {spacing} mm, "
        f"{len(phantom.present_labels())} structures, {len(phantom.lesion_info)} lesions"
    )
    for role, path in paths.items():
        print(f"    {role:9s} {shown(path)}")
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

    from AnatomyCommonLib.anatomy.label_schema import label_id
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
    import torch

    from LIMISLib.exceptions import StructureNotFoundError

    lang2bbox, bbox2mask = build_limis_models(manager, device="cuda" if torch.cuda.is_available() else "cpu")
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
    print(f"    png       {shown(png)}")


def limis_atlas_labels(context: dict):
    """The whole-body map LIMIS takes its boxes from: the DAP post-processed phantom labels WITH the
    injected model errors (never the phantom's truth, so the Dice figures are not circular)."""
    if "dap_postprocessed_labels" not in context:
        from DAPAtlasLib.postprocess import postprocess
        from DAPAtlasLib.simulated_model_errors import inject_model_errors

        phantom = context["phantom"]
        corrupted = inject_model_errors(phantom.labels, sex=phantom.sex)
        context["dap_postprocessed_labels"] = postprocess(
            corrupted.labels, ct=phantom.ct, sex=phantom.sex
        ).labels
    return context["dap_postprocessed_labels"]


def step_limis_session(out: Path, args: argparse.Namespace, context: dict) -> None:
    """LIMIS interaction loop: a scripted session of typed commands (segment, default adaptation,
    guided strategy, click, revert, propagation) on the phantom's liver, one PNG per step, a
    contact sheet, replay.json and the Dice per step. Without weights: the weight-free baseline."""
    from LIMISLib.model_weights import PIPELINE_MODELS, missing_summary, weights_manager
    from LIMISLib.scripted_demo import run_scored_session

    manager = weights_manager()
    missing = missing_summary(manager, PIPELINE_MODELS)
    phantom = context["phantom"]
    if missing:
        from LIMISLib.reference_models import IntensityBBox2Mask

        lang2bbox, bbox2mask = None, IntensityBBox2Mask()
        print("  WEIGHT-FREE BASELINE (IntensityBBox2Mask, not LIMIS's neural model): boxes from the "
              "DAP post-processed map with injected errors; neural models: " + missing)  # fmt: skip
    else:
        from LIMISLib.model_weights import build_limis_models

        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
        lang2bbox, bbox2mask = build_limis_models(manager, device=device)
        print(f"  neural models: {bbox2mask.name}, boxes from {lang2bbox.name}")
    folder = out / "limis"

    def echo(step) -> None:
        record = step.record
        mark = "ok" if record.ok else "--"
        scores = (
            "" if step.slice_dice is None
            else f"Dice slice {step.slice_dice:.3f} volume {step.volume_dice:.3f} | "
        )  # fmt: skip
        print(f"  {mark} {record.text!r:28} {scores}{record.message[:90]}")

    result = run_scored_session(
        phantom.ct, limis_atlas_labels(context), phantom.labels, folder,
        bbox2mask=bbox2mask, lang2bbox=lang2bbox, echo=echo,
    )  # fmt: skip
    print(f"    pngs      {shown(folder)}/ ({len(result.steps)} steps, "
          "contact_sheet.png, replay.json)")  # fmt: skip


def lesion_ids_per_component(instances, components, n_components: int) -> dict[int, list[int]]:
    """Phantom lesion ids (values of the instance mask) inside each CC component (touching lesions
    share one component)."""
    import numpy as np

    inside = components > 0
    pairs = np.unique(np.stack([components[inside], instances[inside]]), axis=1)
    found: dict[int, list[int]] = {c: [] for c in range(1, n_components + 1)}
    for component, lesion in pairs.T:
        if lesion:
            found[int(component)].append(int(lesion))
    return found


def step_cc_metrics(out: Path, args: argparse.Namespace, context: dict) -> None:
    """CC-Metrics of the phantom's lesions against a prediction with typical model errors.

    Tables name each CC component with the phantom lesion id(s) it holds (``note`` column), so the
    ids a user sees in ``phantom/lesions`` and in the CC-Metrics tables can be matched."""
    import numpy as np

    from AnatomyCommonLib.anatomy.phantom.sample_case import sample_perturbation_settings
    from CCMetricsLib.lesion_report import write_lesion_report
    from CCMetricsLib.synthetic import perturb_prediction
    from CCMetricsLib.voronoi import label_components

    phantom = context["phantom"]
    lesions = phantom.lesions.with_array((phantom.lesions.array > 0).astype(np.uint8))
    components, n = label_components(lesions.array > 0, 26)
    ids = lesion_ids_per_component(np.asarray(phantom.lesions.array), components, n)
    prediction, plan = perturb_prediction(
        lesions.array, **sample_perturbation_settings(phantom, n, seed=args.seed)
    )

    def name(component: int) -> str:
        return "phantom lesion " + "+".join(str(i) for i in ids[component])

    notes = {c: f"{name(c)}: {plan.kind_of(c)}" for c in range(1, n + 1)}
    # NSD counts surface points within the tolerance; below one voxel (1 mm on 3 mm voxels) a one-voxel
    # erosion scores 0, so the job uses the largest voxel edge and says so.
    tolerance = float(max(phantom.lesions.spacing_mm))
    report = write_lesion_report(
        lesions,
        {"perturbed model": lesions.with_array(prediction.astype(np.uint8))},
        out / "cc_metrics",
        component_notes=notes,
        distance_worst=50.0,
        nsd_tolerance=tolerance,
        background=phantom.ct,
        component_names={c: "lesion " + "+".join(str(i) for i in ids[c]) for c in range(1, n + 1)},
    )
    missed = ", ".join(f"{name(c)} (CC component {c})" for c in plan.missed) or "none"
    print(f"  {len(plan.false_positives)} false positives added; missed lesions: {missed}")
    print(f"  NSD tolerance {tolerance:g} mm (the largest voxel edge; the library default is 1 mm)")
    print(f"  {n} CC components from {len(phantom.lesion_info)} phantom lesions; the note column names "
          "the phantom lesion id(s) of each component id")  # fmt: skip
    print("  " + report.summary_table.replace("\n", "\n  "))
    print("  " + report.component_table.replace("\n", "\n  "))
    for role, path in report.paths.items():
        print(f"    {role:10s} {shown(path)}")


def step_dap_inference(out: Path, args: argparse.Namespace, context: dict) -> None:
    """DAP Atlas: segment the phantom with the released V2 model when its weights are installed."""
    from DAPAtlasLib.model_weights import DEFAULT_MODEL, install_hint, weights_manager

    manager = weights_manager()
    if not manager.is_installed(DEFAULT_MODEL):
        print(f"  skipped: {install_hint(DEFAULT_MODEL, manager)}")
        return
    import numpy as np

    from AnatomyCommonLib.errors import AnatomyToolkitError
    from AnatomyCommonLib.image_io import write_volume
    from DAPAtlasLib.device_selection import cuda_free_bytes
    from DAPAtlasLib.inference import segment
    from DAPAtlasLib.statistics import structure_statistics, write_statistics_csv

    phantom = context["phantom"]
    folder = out / "dap_inference"
    folds = None if cuda_free_bytes() else [0]  # on a CPU one fold keeps the job short
    shown = [-1]

    def progress(fraction: float, message: str) -> None:
        if int(fraction * 4) > shown[0]:  # a line at 0, 25, 50, 75 and 100 %
            shown[0] = int(fraction * 4)
            print(f"    {fraction:4.0%} {message}")

    try:
        labels = segment(phantom.ct, DEFAULT_MODEL, folds=folds, sex=phantom.sex, progress=progress)
    except AnatomyToolkitError as error:
        print(f"  skipped: {error}")
        return
    write_volume(labels, folder / "labels_dap_v2.nii.gz")
    stats = structure_statistics(labels, phantom.ct)
    write_statistics_csv(stats, folder / "statistics.csv")
    predicted, truth = labels.array, phantom.labels.array
    dice = []
    for value in np.intersect1d(np.unique(truth), np.unique(predicted)):
        if value == 0:
            continue
        a, b = predicted == value, truth == value
        dice.append(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))
    timings = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in labels.metadata["dap_timings_s"].items())
    meta = labels.metadata
    print(
        f"  {len(stats)} structures on {meta['dap_device']} with folds {meta['dap_folds']} "
        f"({timings}); mean Dice against the phantom's own labels {np.mean(dice) if dice else 0:.2f} "
        "(a synthetic phantom, not a validation)"
    )
    for path in sorted(folder.iterdir()):
        print(f"    {shown(path)}")


def step_dap_postprocess(out: Path, args: argparse.Namespace, context: dict) -> None:
    """DAP Atlas rules on the phantom's labels with injected model-style errors: report, stats, PNG."""
    import numpy as np

    from AnatomyCommonLib.image_io import write_volume
    from DAPAtlasLib.before_after_figure import render_before_after
    from DAPAtlasLib.postprocess import postprocess
    from DAPAtlasLib.simulated_model_errors import inject_model_errors
    from DAPAtlasLib.statistics import structure_statistics, write_statistics_csv, write_statistics_json

    phantom = context["phantom"]
    folder = out / "dap_postprocess"
    corrupted = inject_model_errors(phantom.labels, sex=phantom.sex)
    write_volume(corrupted.labels, folder / "model_output_with_errors.nii.gz")
    injected = int(corrupted.error_mask.sum())
    print(f"  injected {len(corrupted.errors)} model-style errors ({injected} voxels):")
    for error in corrupted.errors:
        print(f"    {error.kind:22s} {error.description} ({error.voxels} voxels) -> {error.step}")
    for kind, reason in corrupted.skipped.items():
        print(f"    {kind:22s} skipped: {reason}")
    result = postprocess(corrupted.labels, ct=phantom.ct, sex=phantom.sex)
    context["dap_postprocessed_labels"] = result.labels  # LIMIS takes its atlas boxes from this map
    write_volume(result.labels, folder / "labels_postprocessed.nii.gz")
    (folder / "report.json").write_text(result.report.to_json() + "\n", encoding="utf-8")
    (folder / "report.txt").write_text(result.report.to_text() + "\n", encoding="utf-8")
    print("  what each rule fixed:")
    for step in result.report.steps:
        print("    " + step.to_text().replace("\n", "\n    "))
    expected = corrupted.expected_after(postprocess(phantom.labels, ct=phantom.ct, sex=phantom.sex).labels)
    mask = corrupted.error_mask
    repaired = int(np.count_nonzero(result.labels.array[mask] == expected[mask]))
    untouched = int(np.count_nonzero(result.labels.array[~mask] == expected[~mask]))
    print(f"  injected voxels repaired: {repaired} of {int(mask.sum())}; other voxels as on the clean map: "
          f"{untouched} of {int((~mask).sum())}")  # fmt: skip
    stats = structure_statistics(result.labels, phantom.ct)
    write_statistics_csv(stats, folder / "statistics.csv")
    write_statistics_json(stats, folder / "statistics.json")
    render_before_after(folder / "before_after.png", phantom.ct, corrupted.labels, result.labels)
    print(f"  statistics of {len(stats)} structures; post-processing took {result.report.seconds:.2f} s")
    for path in sorted(folder.iterdir()):
        print(f"    {shown(path)}")


STEPS = [
    ("Synthetic whole-body CT phantom", step_phantom),
    ("DAP Atlas whole-body segmentation with the released V2 model", step_dap_inference),
    ("DAP Atlas post-processing of the phantom labels with injected model errors", step_dap_postprocess),
    ("LIMIS text -> box -> mask", step_limis_text_to_mask),
    (
        "LIMIS interactive session: prompt, default adaptation, guided strategy, revert, propagation",
        step_limis_session,
    ),
    ("CC-Metrics: per-lesion evaluation of a perturbed prediction", step_cc_metrics),
]


EXIT_CODES = (
    "exit codes: 0 all steps ran (steps without weights say so and are skipped), "
    "1 a step failed (previous results kept), 2 bad option"
)


class _OneLineParser(argparse.ArgumentParser):
    """An option error is one line that says what to do, not the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")


def _size_presets() -> dict:
    """The phantom size presets, read from their data-only file without importing the package
    (whose ``__init__`` needs numpy): ``--check-options`` runs before the environment exists."""
    path = ROOT / "AnatomyCommon" / "AnatomyCommonLib" / "anatomy" / "phantom" / "presets.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["SIZE_PRESETS"]


def _size_help() -> str:
    grids = ", ".join(
        f"{name} {'x'.join(f'{s:g}' for s in preset['spacing_ras_mm'])} mm"
        for name, preset in _size_presets().items()
    )
    return f"phantom size preset; voxel spacing left-right x posterior-anterior x inferior-superior: {grids}"


def build_parser() -> argparse.ArgumentParser:
    """The main job's options (all validated before anything is written)."""
    parser = _OneLineParser(
        prog="main_job.py",
        description=__doc__.splitlines()[0],
        epilog=EXIT_CODES,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out",
        default="out/main_job",
        help="output folder; a run writes a fresh sibling folder and swaps it in only when every step "
        "succeeded, so a failed run leaves the previous results in place",
    )
    parser.add_argument("--size", default="small", choices=list(_size_presets()), help=_size_help())
    parser.add_argument("--sex", default="M", choices=["M", "F"], help="phantom sex (pelvis, sex organs)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of phantom and perturbations")
    parser.add_argument(
        "--lesions", type=_lesion_count, default=12, help="number of phantom lesions (0..500)"
    )
    parser.add_argument(
        "--check-options",
        action="store_true",
        help="only check the options and exit (run_main_job.sh does this before setting up .venv)",
    )
    return parser


def _lesion_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give 0..500") from None
    if not 0 <= value <= 500:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..500")
    return value


#: staging folder -> final folder, so steps print the paths the results will have after the swap
_DISPLAY: dict[Path, Path] = {}


def shown(path: Path) -> str:
    """The absolute path ``path`` (written into the staging folder) has once the run is swapped in."""
    path = Path(path).resolve()
    for staging, final in _DISPLAY.items():
        if path == staging or staging in path.parents:
            return str(final / path.relative_to(staging))
    return str(path)


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` by the complete ``staging`` folder; ``out`` is never missing its old content
    before the new one is in place (a failure in between puts the old folder back)."""
    if not out.exists():
        os.replace(staging, out)
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
    previous.rmdir()
    os.replace(out, previous)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(previous, out)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_options:
        return 0
    from AnatomyCommonLib.atomic_output import staging_folder

    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        print(f"main_job.py: error: --out {out} is a file; give a folder", file=sys.stderr)
        return 2
    staging = staging_folder(out, label="running")
    _DISPLAY[staging.resolve()] = out
    context: dict = {}  # what earlier steps hand to later ones (the phantom, ...)
    number, title = 0, ""
    try:
        for number, (title, step) in enumerate(STEPS, start=1):
            start = time.perf_counter()
            print(f"[{number}/{len(STEPS)}] {title}", flush=True)
            step(staging, args, context)
            print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
        _swap_in(staging, out)
    except Exception as error:  # one line for the user; previous results stay
        shutil.rmtree(staging, ignore_errors=True)
        kept = f"previous results in {out} are untouched" if out.exists() else "nothing was written"
        message = str(error).splitlines()[0] if str(error) else ""
        print(
            f"main_job.py: error: step {number}/{len(STEPS)} ({title}) failed: {type(error).__name__}: "
            f"{message}; {kept}",
            file=sys.stderr,
        )
        return 1
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _DISPLAY.pop(staging.resolve(), None)
    print(f"All results are in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
