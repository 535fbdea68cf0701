"""``train-lang2bbox``: LoRA fine-tuning of Grounding DINO on prepared CT slices, as in LIMIS.

What the dissertation specifies (3.3.2.3, Table 8) and this trainer does:

* **prompts**: the names of the structures present on the slice plus ``n_absent`` random names
  of training structures that are absent (noise in the prompt; 8 was best), all shuffled
  (:func:`make_prompt`);
* **augmentations**, each with probability 0.1 and independently: rotation within +-10.3 degrees,
  translation up to 10 px, scaling by 0.9 - 1.1 (:func:`augment_slice`); image and label map are
  transformed together and the boxes are recomputed from the transformed labels;
* **loss and hyper-parameters** as Grounding DINO: Hungarian matching, sigmoid focal
  classification, L1 and GIoU box losses, auxiliary losses on every decoder layer and on the
  encoder proposals (transformers' implementation); AdamW, learning rate 1e-4 (the best of
  Table 8), gradient clipping at norm 0.1 as in the Grounding DINO configs.

Only the LoRA adapter trains and only the adapter is checkpointed (``checkpoints/step_XXXXXX/``
with peft's adapter files, our ``lang2bbox_settings.json`` and ``trainer_state.pt`` holding the
optimizer and random states). ``latest`` names the newest checkpoint; a run started again in the
same folder resumes from it. ``metrics.jsonl`` logs the losses; a tqdm bar shows progress.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..slice_preprocessing import bounding_box_xyxy
from ..training_data import SliceDataset, structure_masks
from .grounding_dino import GroundingDinoLang2BBox, xyxy_to_cxcywh

LATEST_FILE = "latest"
METRICS_FILE = "metrics.jsonl"
TRAINER_STATE_FILE = "trainer_state.pt"


@dataclass(frozen=True)
class AugmentationSettings:
    """The paper's augmentations (each applied independently with ``probability``)."""

    probability: float = 0.1
    max_rotation_deg: float = 10.3
    max_translation_px: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)


@dataclass
class TrainingSettings:
    """Hyper-parameters of one fine-tuning run (defaults: the dissertation's best configuration)."""

    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    n_absent: int = 8
    augment: bool = True
    augmentation: AugmentationSettings = field(default_factory=AugmentationSettings)
    gradient_clip_norm: float = 0.1
    auxiliary_loss: bool = True
    checkpoint_every: int = 200
    log_every: int = 10
    validation_slices: int = 64
    seed: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augmentation"]["scale_range"] = list(self.augmentation.scale_range)
        return data


# ---------------------------------------------------------------------------------- prompts
def make_prompt(
    present: Sequence[str], vocabulary: Sequence[str], n_absent: int, rng: np.random.Generator
) -> list[str]:
    """Present names + ``n_absent`` random absent names from the vocabulary, shuffled."""
    present = list(dict.fromkeys(present))
    absent = [name for name in vocabulary if name not in present]
    chosen = [absent[i] for i in rng.choice(len(absent), size=min(n_absent, len(absent)), replace=False)]
    names = present + chosen
    return [names[i] for i in rng.permutation(len(names))]


# ---------------------------------------------------------------------------------- augmentation
def augmentation_matrix(
    shape: tuple[int, int], rng: np.random.Generator, settings: AugmentationSettings = AugmentationSettings()
) -> np.ndarray | None:
    """A 3x3 output->input pixel transform (row, column) about the image centre, or None if no
    augmentation was drawn. Each of rotation, translation and scaling is drawn with its probability."""
    rotate, translate, scale = (rng.random() < settings.probability for _ in range(3))
    if not (rotate or translate or scale):
        return None
    angle = (
        math.radians(rng.uniform(-settings.max_rotation_deg, settings.max_rotation_deg)) if rotate else 0.0
    )
    shift = (
        rng.uniform(-settings.max_translation_px, settings.max_translation_px, size=2)
        if translate
        else np.zeros(2)
    )
    factor = rng.uniform(*settings.scale_range) if scale else 1.0
    centre = (np.asarray(shape, dtype=float) - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) * factor  # input -> output about the centre
    inverse = np.linalg.inv(forward)
    matrix = np.eye(3)
    matrix[:2, :2] = inverse
    matrix[:2, 2] = centre - inverse @ (centre + shift)
    return matrix


def augment_slice(
    image: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    settings: AugmentationSettings = AugmentationSettings(),
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate / translate / scale the normalised image (linear, padded with its minimum, i.e. air)
    and the label map (nearest) with one transform."""
    from scipy import ndimage

    matrix = augmentation_matrix(image.shape, rng, settings)
    if matrix is None:
        return image, labels
    air = float(image.min())
    warped = ndimage.affine_transform(image, matrix, order=1, mode="constant", cval=air)
    warped_labels = ndimage.affine_transform(labels, matrix, order=0, mode="constant", cval=0)
    return warped.astype(np.float32), warped_labels.astype(labels.dtype)


def boxes_from_labels(
    labels: np.ndarray, names: Sequence[str]
) -> dict[str, tuple[float, float, float, float]]:
    """The tight box of every named structure present in a label slice."""
    boxes = {}
    for name, mask in structure_masks(labels, names).items():
        box = bounding_box_xyxy(mask)
        if box is not None:
            boxes[name] = box
    return boxes


def training_example(
    arrays: dict[str, np.ndarray],
    vocabulary: Sequence[str],
    settings: TrainingSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str], dict[str, torch.Tensor]]:
    """(image, prompt names, target dict) for one slice: augmentation, boxes, prompt."""
    image, labels = arrays["image"].astype(np.float32), arrays["labels"]
    if settings.augment:
        image, labels = augment_slice(image, labels, rng, settings.augmentation)
    boxes = boxes_from_labels(labels, vocabulary)
    names = make_prompt(list(boxes), vocabulary, settings.n_absent, rng)
    height, width = image.shape
    present = [name for name in names if name in boxes]
    target = {
        "class_labels": torch.tensor([names.index(n) for n in present], dtype=torch.long),
        "boxes": torch.tensor(
            [xyxy_to_cxcywh(boxes[n], width, height) for n in present], dtype=torch.float32
        ).reshape(-1, 4),
    }
    return image, names, target


# ---------------------------------------------------------------------------------- training
@dataclass
class TrainingResult:
    steps_done: int
    losses: list[float]
    checkpoints: list[Path]
    final_adapter: Path | None
    resumed_from: int = 0


def _batch_loss(detector: GroundingDinoLang2BBox, examples) -> tuple[torch.Tensor, dict[str, float]]:
    images, names, targets = zip(*examples, strict=True)
    targets = [{k: v.to(detector.device) for k, v in t.items()} for t in targets]
    outputs, _ = detector.forward(list(images), list(names), labels=targets)
    parts = {
        k: float(v.detach()) for k, v in (outputs.loss_dict or {}).items() if not k.startswith("cardinality")
    }
    return outputs.loss, parts


def _set_auxiliary_loss(detector: GroundingDinoLang2BBox, enabled: bool) -> None:
    detector._config().auxiliary_loss = bool(enabled)


@torch.no_grad()
def validation_loss(
    detector: GroundingDinoLang2BBox,
    data: SliceDataset,
    settings: TrainingSettings,
    *,
    max_slices: int | None = None,
) -> float:
    """Mean loss over (up to ``max_slices``) validation slices, without augmentation, fixed prompts."""
    if len(data) == 0:
        return float("nan")
    rng = np.random.default_rng(12345)
    eval_settings = TrainingSettings(**{**settings.__dict__, "augment": False})
    records = data.records[: max_slices or len(data)]
    was_training = detector.model.training
    detector.model.eval()
    total = 0.0
    for start in range(0, len(records), settings.batch_size):
        batch = [
            training_example(data.load_arrays(r), data.structures, eval_settings, rng)
            for r in records[start : start + settings.batch_size]
        ]
        loss, _ = _batch_loss(detector, batch)
        total += float(loss) * len(batch)
    detector.model.train(was_training)
    return total / len(records)


def _write_checkpoint(
    detector: GroundingDinoLang2BBox,
    out_dir: Path,
    step: int,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    settings: TrainingSettings,
) -> Path:
    checkpoints = out_dir / "checkpoints"
    final = checkpoints / f"step_{step:06d}"
    staging = checkpoints / f".step_{step:06d}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    detector.save_adapter(staging)
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "settings": settings.to_dict(),
        },
        staging / TRAINER_STATE_FILE,
    )
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    latest_tmp = out_dir / f".{LATEST_FILE}.tmp"
    latest_tmp.write_text(final.relative_to(out_dir).as_posix(), encoding="utf-8")
    latest_tmp.replace(out_dir / LATEST_FILE)
    return final


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a training folder, if any."""
    record = Path(out_dir) / LATEST_FILE
    if not record.is_file():
        return None
    path = Path(out_dir) / record.read_text(encoding="utf-8").strip()
    return path if (path / TRAINER_STATE_FILE).is_file() else None


def _restore(detector: GroundingDinoLang2BBox, checkpoint: Path, optimizer, rng: np.random.Generator) -> int:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "adapter_model.safetensors"), device=str(detector.device))
    result = set_peft_model_state_dict(detector.model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(
            f"The checkpoint {checkpoint} does not fit this adapter "
            f"(unexpected keys such as {unexpected[0]}); "
            "resume with the same LoRA settings or use a new output folder."
        )
    state = torch.load(checkpoint / TRAINER_STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


def train_lang2bbox(
    detector: GroundingDinoLang2BBox,
    train_data: SliceDataset,
    out_dir: str | Path,
    settings: TrainingSettings | None = None,
    *,
    val_data: SliceDataset | None = None,
    resume: bool = True,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Fine-tune the detector's LoRA adapter (it must have one: :meth:`GroundingDinoLang2BBox.add_lora`)."""
    settings = settings or TrainingSettings()
    if not detector.has_adapter:
        raise ValueError(
            "Add a LoRA adapter first (GroundingDinoLang2BBox.add_lora): only the adapter is trained."
        )
    if len(train_data) == 0:
        raise ValueError(f"No training slices in {train_data.root}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocabulary = train_data.structures
    detector.settings.vocabulary = list(vocabulary)
    prepared = train_data.index.get("settings", {})
    if "normalisation" in prepared:
        detector.settings.normalisation = dict(prepared["normalisation"])
    _set_auxiliary_loss(detector, settings.auxiliary_loss)

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    parameters = detector.trainable_parameters()
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    start_step = 0
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        start_step = _restore(detector, checkpoint, optimizer, rng)
        if log:
            log(f"resumed from {checkpoint} (step {start_step})")
    (out_dir / "training_settings.json").write_text(
        json.dumps(settings.to_dict(), indent=2), encoding="utf-8"
    )

    losses: list[float] = []
    checkpoints: list[Path] = []
    steps = range(start_step, settings.steps)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(
            total=settings.steps, initial=start_step, desc="train-lang2bbox", unit="step", dynamic_ncols=True
        )
    detector.model.train()
    started = time.perf_counter()
    with open(out_dir / METRICS_FILE, "a", encoding="utf-8") as metrics:
        for step in steps:
            picks = rng.choice(len(train_data), size=min(settings.batch_size, len(train_data)), replace=False)
            batch = [
                training_example(train_data.load_arrays(train_data.records[i]), vocabulary, settings, rng)
                for i in picks
            ]
            loss, parts = _batch_loss(detector, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"The loss became {float(loss)} at step {step + 1}; lower the learning rate."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.gradient_clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(parameters, settings.gradient_clip_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
            done = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}")
            if done % settings.log_every == 0 or done == settings.steps:
                entry = {"step": done, "loss": losses[-1], "lr": settings.learning_rate, **parts}
                entry["elapsed_s"] = round(time.perf_counter() - started, 2)
                metrics.write(json.dumps(entry) + "\n")
                metrics.flush()
            if done % settings.checkpoint_every == 0 or done == settings.steps:
                if val_data is not None and len(val_data):
                    value = validation_loss(
                        detector, val_data, settings, max_slices=settings.validation_slices
                    )
                    metrics.write(json.dumps({"step": done, "val_loss": value}) + "\n")
                    metrics.flush()
                checkpoints.append(_write_checkpoint(detector, out_dir, done, optimizer, rng, settings))
    if bar is not None:
        bar.close()
    detector.model.eval()
    final = latest_checkpoint(out_dir)
    return TrainingResult(
        steps_done=max(settings.steps, start_step),
        losses=losses,
        checkpoints=checkpoints,
        final_adapter=final,
        resumed_from=start_step,
    )


def read_metrics(out_dir: str | Path) -> list[dict]:
    """The entries of a training folder's ``metrics.jsonl``."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
