"""LIMIS model commands: prepare-data, train-lang2bbox, eval-lang2bbox, eval-bbox2mask, segment-slice, models.

torch, transformers and peft are imported inside the handlers, so ``--help`` works without them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from AnatomyCommonLib.cli import progress, write_json
from AnatomyCommonLib.weights import add_models_cli

from .model_weights import weights_manager

TINY_BASE_FOLDER = "base_model"


def _progress(enabled: bool):
    return lambda items, total, desc: progress(items, total=total, desc=desc, enabled=enabled)


def _structures(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    from .organ_vocabulary import resolve_structure

    return tuple(resolve_structure(name) for name in text.split(",") if name.strip())


# ---------------------------------------------------------------------------------- prepare-data
def _prepare_data(args: argparse.Namespace) -> int:
    from .slice_preprocessing import SliceNormalisation
    from .training_data import LAYOUTS, PrepareSettings, prepare_data

    datasets = []
    for item in args.dataset:
        layout, _, folder = item.partition("=")
        if layout not in LAYOUTS or not folder:
            raise ValueError(
                f"--dataset takes LAYOUT=FOLDER with LAYOUT one of {', '.join(LAYOUTS)}; got {item!r}."
            )
        datasets.append((layout, folder))
    train_only = []
    if args.train_only:
        train_only = [line.strip() for line in Path(args.train_only).read_text().splitlines() if line.strip()]
    settings = PrepareSettings(
        spacing_mm=args.spacing_mm,
        size=args.size,
        structures=_structures(args.structures) or PrepareSettings().structures,
        min_pixels=args.min_pixels,
        slice_step=args.slice_step,
        seed=args.seed,
        normalisation=SliceNormalisation(),
        write_png=args.png,
    )
    index = prepare_data(
        datasets,
        args.out,
        settings,
        train_only=train_only,
        overwrite=args.overwrite,
        progress=_progress(not args.quiet),
    )
    summary = {"out": args.out, "counts": index["counts"], "datasets": index["datasets"]}
    if args.json:
        write_json(summary, args.json)
    for dataset in index["datasets"]:
        cases = ", ".join(f"{s} {len(c)}" for s, c in dataset["cases"].items())
        print(f"{dataset['name']:18s} cases: {cases}; slices: {dataset['slices']}")
    print(
        "slices per split: " + ", ".join(f"{s} {n}" for s, n in index["counts"].items()) + f" -> {args.out}"
    )
    return 0


# ---------------------------------------------------------------------------------- detectors
def _detector(args: argparse.Namespace, *, adapter: str | None, training_out: Path | None = None):
    """The Grounding DINO detector the options ask for (a tiny random base only with --tiny)."""
    import torch

    from .model_weights import GROUNDING_DINO_BASE, LANG2BBOX_ADAPTER, require_all
    from .neural.grounding_dino import DetectorSettings, GroundingDinoLang2BBox, save_tiny_base, tiny_config

    base = getattr(args, "base", None)
    if getattr(args, "tiny", False):
        saved = training_out / TINY_BASE_FOLDER if training_out is not None else None
        if saved is not None and (saved / "config.json").is_file():
            base = str(saved)
        elif base is None:
            torch.manual_seed(args.seed)
            detector = GroundingDinoLang2BBox.from_config(
                tiny_config(image_size=args.image_size or 128),
                settings=DetectorSettings(image_size=args.image_size or 128),
                device=args.device,
            )
            if saved is not None:
                save_tiny_base(detector, saved)
            print(
                "warning: a tiny randomly initialised Grounding DINO (--tiny): for smoke tests only.",
                file=sys.stderr,
            )
            if adapter:
                detector.load_adapter(adapter)
            return detector
    manager = weights_manager()
    if base is None:
        base = str(require_all(manager, [GROUNDING_DINO_BASE])[GROUNDING_DINO_BASE])
    if adapter == "installed":
        adapter = str(require_all(manager, [LANG2BBOX_ADAPTER])[LANG2BBOX_ADAPTER])
    return GroundingDinoLang2BBox.from_pretrained(base, adapter_dir=adapter, device=args.device)


def _add_detector_options(parser: argparse.ArgumentParser, *, adapter: bool) -> None:
    parser.add_argument("--base", help="Grounding DINO folder (default: the installed grounding-dino-tiny)")
    if adapter:
        parser.add_argument(
            "--adapter",
            default="installed",
            help="LoRA adapter folder (default: the installed limis-lang2bbox-lora; 'none': the base alone)",
        )
    parser.add_argument("--tiny", action="store_true", help="tiny random Grounding DINO (smoke tests only)")
    parser.add_argument("--image-size", type=int, default=None, help="detector input size of a --tiny model")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--seed", type=int, default=0)


def _adapter_option(args: argparse.Namespace) -> str | None:
    value = getattr(args, "adapter", None)
    return None if value in (None, "none") else value


# ---------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    from .neural.grounding_dino import DEFAULT_LORA_TARGETS, LoRASettings
    from .neural.lang2bbox_training import AugmentationSettings, TrainingSettings, train_lang2bbox
    from .training_data import SliceDataset

    train = SliceDataset.load(args.data, "train")
    val = SliceDataset.load(args.data, "val")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = _detector(args, adapter=None, training_out=out)
    lora = LoRASettings(
        rank=args.lora_rank,
        alpha=args.lora_alpha,
        dropout=args.lora_dropout,
        target_modules=args.lora_targets or DEFAULT_LORA_TARGETS,
    )
    n_trainable = detector.add_lora(lora)
    print(f"LoRA adapter: {n_trainable:,} trainable parameters (rank {lora.rank}, alpha {lora.alpha:g})")
    settings = TrainingSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        n_absent=args.n_absent,
        augment=not args.no_augment,
        augmentation=AugmentationSettings(probability=args.augment_probability),
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        validation_slices=args.val_slices,
        seed=args.seed,
    )
    result = train_lang2bbox(
        detector,
        train,
        out,
        settings,
        val_data=val,
        resume=not args.no_resume,
        show_progress=not args.quiet,
        log=print,
    )
    if result.losses:
        first, last = result.losses[0], result.losses[-1]
        print(f"loss: first {first:.4f}, last {last:.4f} over {len(result.losses)} steps")
    print(f"adapter: {result.final_adapter}")
    return 0


# ---------------------------------------------------------------------------------- eval
def _eval_lang2bbox(args: argparse.Namespace) -> int:
    from .model_evaluation import evaluate_lang2bbox, format_lang2bbox_table
    from .training_data import SliceDataset

    data = SliceDataset.load(args.data, args.split)
    training_out = Path(args.adapter).parents[1] if args.tiny and _adapter_option(args) else None
    detector = _detector(args, adapter=_adapter_option(args), training_out=training_out)
    result = evaluate_lang2bbox(
        detector,
        data,
        structures=_structures(args.structures),
        max_slices=args.max_slices,
        progress=_progress(not args.quiet),
    )
    print(format_lang2bbox_table(result))
    if args.json:
        write_json(result, args.json)
    return 0


def _bbox2mask_from_args(args: argparse.Namespace):
    from .model_weights import build_bbox2mask

    settings = {"crop_margin_px": args.crop_margin_px}
    if args.random_init:
        import torch

        torch.manual_seed(args.seed)
        print(
            "warning: randomly initialised BBox2Mask (--random-init): the numbers are meaningless.",
            file=sys.stderr,
        )
        if args.model == "unet":
            from .bbox2mask import ScribblePromptBBox2Mask
            from .neural.scribbleprompt_unet import ScribblePromptUNet

            return ScribblePromptBBox2Mask(ScribblePromptUNet(), device=args.device, **settings)
        from .neural.scribbleprompt_sam import ScribblePromptSAMBBox2Mask, build_sam

        return ScribblePromptSAMBBox2Mask(build_sam(), device=args.device, **settings)
    if args.checkpoint:
        if args.model == "unet":
            from .bbox2mask import ScribblePromptBBox2Mask

            return ScribblePromptBBox2Mask.from_checkpoint(args.checkpoint, device=args.device, **settings)
        from .neural.scribbleprompt_sam import ScribblePromptSAMBBox2Mask

        return ScribblePromptSAMBBox2Mask.from_checkpoint(args.checkpoint, device=args.device, **settings)
    return build_bbox2mask(weights_manager(), model=args.model, device=args.device, **settings)


def _eval_bbox2mask(args: argparse.Namespace) -> int:
    from .model_evaluation import (
        PAPER_ABLATION,
        evaluate_bbox2mask,
        format_bbox2mask_table,
        full_ablation_grid,
    )
    from .training_data import SliceDataset

    data = SliceDataset.load(args.data, args.split)
    model = _bbox2mask_from_args(args)
    detector = None
    if args.detector:
        args.tiny, args.image_size = False, None
        detector = _detector(args, adapter=_adapter_option(args))
    result = evaluate_bbox2mask(
        model,
        data,
        settings=full_ablation_grid() if args.full_grid else PAPER_ABLATION,
        structures=_structures(args.structures),
        detector=detector,
        threshold=args.threshold,
        max_slices=args.max_slices,
        progress=_progress(not args.quiet),
    )
    print(format_bbox2mask_table(result))
    if args.json:
        write_json(result, args.json)
    return 0


# ---------------------------------------------------------------------------------- segment-slice
def _segment_slice(args: argparse.Namespace) -> int:
    from AnatomyCommonLib.image_io import read_volume

    from .initial_segmentation import render_segmentation_png, segment_from_text
    from .model_weights import build_limis_models
    from .slice_geometry import AxialSliceGeometry

    lang2bbox, bbox2mask = build_limis_models(weights_manager(), device=args.device, bbox2mask=args.model)
    ct = read_volume(args.ct)
    geometry = AxialSliceGeometry.from_volume(ct)
    index = geometry.n_slices // 2 if args.slice is None else geometry.require_slice(args.slice)
    image = geometry.extract(ct.array, index).astype("float32")
    result = segment_from_text(
        lang2bbox,
        bbox2mask,
        image,
        args.text,
        box_enlargement_px=args.enlarge_px,
        use_window=not args.no_window,
        score_threshold=args.score_threshold,
    )
    mask = result.prediction.mask(args.threshold)
    path = render_segmentation_png(
        args.out,
        image,
        mask,
        result.box_xyxy,
        window=result.window,
        pixel_spacing_xy_mm=geometry.pixel_spacing_mm,
        title=f"{result.structure} (score {result.detection.score:.2f}), slice {index}",
    )
    summary = {
        "structure": result.structure,
        "slice": index,
        "score": result.detection.score,
        "detected_box_xyxy": result.detection.box_xyxy,
        "box_xyxy": result.box_xyxy,
        "mask_pixels": int(mask.sum()),
        "png": str(path),
    }
    print(json.dumps(summary, indent=2))
    return 0


# ---------------------------------------------------------------------------------- registration
def add_commands(commands) -> None:
    """Register the model sub-commands on an argparse sub-parsers object."""
    prepare = commands.add_parser(
        "prepare-data", help="CT volumes + label maps -> 2D training slices with boxes"
    )
    prepare.add_argument("out", help="output folder (index.json + slices/)")
    prepare.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="LAYOUT=FOLDER",
        help="a dataset: dap=FOLDER, totalsegmentator=FOLDER or word=FOLDER (repeat for several)",
    )
    prepare.add_argument(
        "--spacing-mm", type=float, default=0.8, help="common pixel spacing (default 0.8 mm)"
    )
    prepare.add_argument("--size", type=int, default=512, help="common slice size in pixels (default 512)")
    prepare.add_argument("--structures", help="comma-separated names (default: the paper's 11)")
    prepare.add_argument("--min-pixels", type=int, default=1, help="smallest structure area that gets a box")
    prepare.add_argument("--slice-step", type=int, default=1, help="keep every n-th slice with structures")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the 80/10/10 split")
    prepare.add_argument(
        "--train-only", help="file with case ids that must stay in training (seen by ScribblePrompt)"
    )
    prepare.add_argument("--png", action="store_true", help="also write a PNG preview of every slice")
    prepare.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    prepare.add_argument("--json", help="write a summary as JSON to this file ('-': stdout)")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=_prepare_data)

    train = commands.add_parser(
        "train-lang2bbox", help="LoRA fine-tuning of Grounding DINO on prepared slices"
    )
    train.add_argument("data", help="folder written by prepare-data")
    train.add_argument("out", help="training folder (checkpoints/, metrics.jsonl; resumed if it exists)")
    _add_detector_options(train, adapter=False)
    train.add_argument("--steps", type=int, default=1000, help="optimizer steps (one batch each)")
    train.add_argument("--batch-size", type=int, default=8, help="slices per optimizer step")
    train.add_argument("--lr", type=float, default=1e-4, help="learning rate (paper's best: 1e-4)")
    train.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    train.add_argument(
        "--n-absent", type=int, default=8, help="random absent names per prompt (paper's best: 8)"
    )
    train.add_argument("--no-augment", action="store_true", help="switch the augmentations off")
    train.add_argument(
        "--augment-probability", type=float, default=0.1, help="probability of each augmentation"
    )
    train.add_argument("--lora-rank", type=int, default=16, help="LoRA rank r of the low-rank updates")
    train.add_argument(
        "--lora-alpha", type=float, default=32.0, help="LoRA scaling alpha (update scaled by alpha/r)"
    )
    train.add_argument(
        "--lora-dropout", type=float, default=0.05, help="dropout probability on the LoRA input"
    )
    train.add_argument(
        "--lora-targets", help="regex of the module names that get LoRA (default: attention layers)"
    )
    train.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    train.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    train.add_argument(
        "--val-slices", type=int, default=64, help="validation slices for the loss at checkpoints"
    )
    train.add_argument(
        "--no-resume", action="store_true", help="start again even if the folder has checkpoints"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "eval-lang2bbox", help="COCO mAP, mAP@50, mAP@75 per structure and overall"
    )
    evaluate.add_argument("data", help="folder written by prepare-data")
    _add_detector_options(evaluate, adapter=True)
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--structures", help="comma-separated names (default: those of the data)")
    evaluate.add_argument("--max-slices", type=int, default=None)
    evaluate.add_argument("--json", help="write the metrics as JSON to this file ('-': stdout)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=_eval_lang2bbox)

    ablation = commands.add_parser(
        "eval-bbox2mask", help="Dice per structure: whole image vs crop, CT window, box margin 0/10/20 px"
    )
    ablation.add_argument("data", help="folder written by prepare-data")
    ablation.add_argument(
        "--model", default="unet", choices=["unet", "sam"], help="ScribblePrompt-UNet or -SAM"
    )
    ablation.add_argument("--checkpoint", help="checkpoint file (default: the installed weights)")
    ablation.add_argument("--random-init", action="store_true", help="random weights (smoke tests only)")
    ablation.add_argument("--split", default="test", choices=["train", "val", "test"])
    ablation.add_argument("--structures", help="comma-separated names (default: those of the data)")
    ablation.add_argument(
        "--full-grid", action="store_true", help="all 12 combinations instead of the paper's 5"
    )
    ablation.add_argument(
        "--crop-margin-px", type=float, default=20.0, help="context around the box in the crop"
    )
    ablation.add_argument(
        "--threshold", type=float, default=0.5, help="probability threshold of the mask, 0..1"
    )
    ablation.add_argument(
        "--detector", action="store_true", help="use Lang2BBox boxes instead of ground truth"
    )
    ablation.add_argument("--base", help="Grounding DINO folder for --detector")
    ablation.add_argument("--adapter", default="installed", help="LoRA adapter for --detector")
    ablation.add_argument("--max-slices", type=int, default=None)
    ablation.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    ablation.add_argument("--seed", type=int, default=0)
    ablation.add_argument("--json", help="write the table as JSON to this file ('-': stdout)")
    ablation.add_argument("--quiet", action="store_true", help="no progress bar")
    ablation.set_defaults(handler=_eval_bbox2mask)

    segment = commands.add_parser(
        "segment-slice", help="text -> box -> mask on one axial slice of a CT (PNG)"
    )
    segment.add_argument("ct", help="CT volume (NIfTI, NRRD, DICOM folder)")
    segment.add_argument("--text", required=True, help="the structure, e.g. 'liver' or 'left kidney'")
    segment.add_argument(
        "--slice", type=int, default=None, help="axial slice index (default: the middle one)"
    )
    segment.add_argument("--out", required=True, help="PNG to write")
    segment.add_argument("--model", default="unet", choices=["unet", "sam"], help="BBox2Mask model")
    segment.add_argument(
        "--enlarge-px", type=float, default=10.0, help="box enlargement per side (default 10)"
    )
    segment.add_argument("--no-window", action="store_true", help="min-max instead of the organ's CT window")
    segment.add_argument(
        "--score-threshold", type=float, default=0.3, help="smallest box confidence of the detector, 0..1"
    )
    segment.add_argument(
        "--threshold", type=float, default=0.5, help="probability threshold of the mask, 0..1"
    )
    segment.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    segment.set_defaults(handler=_segment_slice)

    add_models_cli(commands, weights_manager)
