"""ScribblePrompt-SAM (ViT-B) behind the same BBox2Mask interface, as an option.

The network is the stock Segment Anything ViT-B from the PyPI package ``segment-anything``
(Apache-2.0), fine-tuned by the ScribblePrompt authors (``ScribblePrompt_sam_v1_vit_b_res128.pt``,
a plain state_dict of 314 keys, 93.7 M parameters). What the authors' predictor does, and this
module reproduces:

* the 128 x 128 image in [0, 1] is resized bilinearly to 1024 x 1024, repeated to 3 channels,
  multiplied by 255 and normalised with SAM's ``preprocess`` (pixel mean/std, padding);
* box and clicks, given on the 128 grid, are scaled by 1024 / 128 for the prompt encoder
  (coordinates truncated on the 128 grid first, as for the UNet);
* scribbles become clicks, as the authors' ``scribbles_to_clicks``: every nonzero pixel of the
  positive map, then of the negative map (row-major order, as ``torch.nonzero``), appended after
  the clicks with labels 1 / 0; the maps are first brought to the 128 grid like the UNet's
  (bilinear, ``align_corners=False``), since the SAM path sees the crop at 128 x 128;
* the previous prediction enters as the 256 x 256 low-resolution logits (``mask_input``);
* the decoder runs in multi-mask mode and the mask with the highest predicted IoU is kept;
  its 256 x 256 logits are upsampled by SAM's ``postprocess_masks`` to 128 x 128.

The crop, CT window and mapping back to the slice are those of :mod:`LIMISLib.bbox2mask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from ..bbox2mask import DEFAULT_CROP_MARGIN_PX, CroppedBBox2Mask, PreparedPrompt, map_back
from ..exceptions import MissingDependencyError
from .scribbleprompt_prompts import box_on_grid, resize_image, resize_scribbles, scale_to_grid
from .scribbleprompt_unet import check_state_dict_layout, read_checkpoint, strip_compile_prefix

#: ScribblePrompt-SAM's image side (it works on 128 x 128 images like the UNet).
SAM_INPUT_SIZE = 128
#: SAM's low-resolution mask side (the previous-prediction input).
SAM_LOW_RES_SIZE = 256
#: The ViT-B image encoder configuration of ``segment_anything.build_sam_vit_b``.
VIT_B = {"embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": (2, 5, 8, 11)}


def _modeling():
    try:
        from segment_anything import modeling
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "ScribblePrompt-SAM needs the 'segment-anything' package: pip install 'segment-anything>=1.0,<2'."
        ) from error
    return modeling


def build_sam(
    *,
    embed_dim: int = VIT_B["embed_dim"],
    depth: int = VIT_B["depth"],
    num_heads: int = VIT_B["num_heads"],
    global_attn_indexes: Sequence[int] = VIT_B["global_attn_indexes"],
):
    """A Segment Anything model with the ViT-B layout (defaults) or a smaller encoder (tests)."""
    modeling = _modeling()
    prompt_dim, image_size, patch = 256, 1024, 16
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=depth,
            embed_dim=embed_dim,
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=num_heads,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(global_attn_indexes),
            window_size=14,
            out_chans=prompt_dim,
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(image_size // patch, image_size // patch),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(
                depth=2, embedding_dim=prompt_dim, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def load_sam_checkpoint(path: str | Path, *, device: str = "cpu", architecture: dict | None = None):
    """ScribblePrompt-SAM ViT-B with the official weights (layout checked, ``strict=True``).

    ``architecture`` overrides the ViT-B encoder settings of :func:`build_sam` (tests only).
    """
    sam = build_sam(**(architecture or {}))
    state = strip_compile_prefix(read_checkpoint(path))
    expected = {key: tuple(value.shape) for key, value in sam.state_dict().items()}
    check_state_dict_layout(state, expected, what="ScribblePrompt_sam_v1_vit_b_res128.pt (SAM ViT-B)")
    sam.load_state_dict(state, strict=True)
    return sam.to(device).eval()


def sam_image_input(image01_128: torch.Tensor, sam) -> torch.Tensor:
    """(B, 1, 128, 128) in [0, 1] -> SAM's normalised (B, 3, 1024, 1024) input (as ``prepare_image``)."""
    size = sam.image_encoder.img_size
    resized = functional.interpolate(
        image01_128, size=(size, size), mode="bilinear", align_corners=False
    ).repeat(1, 3, 1, 1)
    return sam.preprocess(255.0 * resized)


class ScribblePromptSAMBBox2Mask(CroppedBBox2Mask):
    """BBox2Mask with ScribblePrompt-SAM; same crop / window / map-back pipeline as the UNet."""

    name = "ScribblePrompt-SAM"
    previous_size = SAM_LOW_RES_SIZE

    def __init__(
        self,
        sam,
        *,
        device: str = "cpu",
        crop_to_box: bool = True,
        crop_margin_px: float = DEFAULT_CROP_MARGIN_PX,
    ) -> None:
        super().__init__(crop_to_box=crop_to_box, crop_margin_px=crop_margin_px)
        self.device = device
        self.sam = sam.to(device).eval()

    @classmethod
    def from_checkpoint(cls, path, *, device: str = "cpu", **settings) -> ScribblePromptSAMBBox2Mask:
        return cls(load_sam_checkpoint(path, device=device), device=device, **settings)

    def _run(self, prepared: PreparedPrompt, previous_model_logits):
        sam, size = self.sam, SAM_INPUT_SIZE
        shape = prepared.image01.shape
        scale = sam.image_encoder.img_size / size
        image = resize_image(prepared.image01, size).to(self.device)
        box_grid, boxes, points = sam_prompts(prepared, size, scale)
        boxes = boxes.to(self.device)
        if points is not None:
            points = (points[0].to(self.device), points[1].to(self.device))
        masks = None
        if previous_model_logits is not None:
            masks = torch.as_tensor(previous_model_logits, dtype=torch.float32, device=self.device)[
                None, None
            ]
        with torch.inference_mode():
            features = sam.image_encoder(sam_image_input(image, sam))
            sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=masks)
            low_res, iou = sam.mask_decoder(
                image_embeddings=features,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
            best = int(torch.argmax(iou[0]))
            low_res_best = low_res[:, best : best + 1]
            logits_128 = sam.postprocess_masks(low_res_best, (sam.image_encoder.img_size,) * 2, (size, size))
        crop_logits, crop_probabilities = map_back(logits_128, shape)
        extras = {"box_grid": box_grid, "predicted_iou": float(iou[0, best]), "mask_index": best}
        return low_res_best[0, 0].float().cpu().numpy(), crop_logits, crop_probabilities, extras


def sam_prompts(prepared: PreparedPrompt, size: int = SAM_INPUT_SIZE, scale: float = 1024 / SAM_INPUT_SIZE):
    """Box and points for SAM's prompt encoder from one prepared crop.

    Returns the box on the ``size`` grid, the (1, 4) box tensor and ``(coords (1, n, 2), labels (1, n))``
    or None, both scaled by ``scale`` (SAM's 1024 / 128), as the authors' ``prepare_box`` /
    ``prepare_coords``; scribbled pixels are appended to the clicks as in ``scribbles_to_clicks``.
    """
    shape = prepared.image01.shape
    box_grid = box_on_grid(prepared.box_in_crop, shape, size)
    boxes = torch.tensor([box_grid], dtype=torch.float32) * scale
    clicks = scale_to_grid(prepared.positive, shape, size) + scale_to_grid(prepared.negative, shape, size)
    labels = [1] * len(prepared.positive) + [0] * len(prepared.negative)
    if prepared.scribbles is not None:
        scribbles = resize_scribbles(prepared.scribbles, size)[0]
        for channel, label in ((0, 1), (1, 0)):
            rows_columns = torch.nonzero(scribbles[channel]).tolist()
            clicks += [(column, row) for row, column in rows_columns]
            labels += [label] * len(rows_columns)
    if not clicks:
        return box_grid, boxes, None
    coords = torch.tensor([clicks], dtype=torch.float32) * scale
    return box_grid, boxes, (coords, torch.tensor([labels], dtype=torch.int64))


def sam_state_dict_shapes(**architecture) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the SAM state_dict (ViT-B by default) without allocating real weights."""
    with torch.device("meta"):
        sam = build_sam(**architecture)
    return {key: tuple(value.shape) for key, value in sam.state_dict().items()}


def count_parameters(shapes: dict[str, tuple[int, ...]]) -> int:
    return int(sum(np.prod(shape) for shape in shapes.values()))
