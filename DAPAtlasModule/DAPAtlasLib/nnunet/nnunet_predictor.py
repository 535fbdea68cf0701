"""The ``nnunetv2`` predictor with a progress/cancel hook and a memory-lean export to the input grid.

Only two things differ from calling ``nnUNetPredictor.predict_single_npy_array``:

* :class:`ProgressPredictor` calls ``on_patch()`` after every sliding-window patch, so a caller
  can report progress and cancel (by raising from the hook) between patches;
* :func:`logits_to_input_grid` replaces nnunetv2's
  ``convert_predicted_logits_to_segmentation_with_correct_shape``. That function resamples all
  class logits at once in float64 (for the 145 DAP classes about 145 x 8 bytes per voxel, tens of
  GB for a whole-body CT) before the argmax. Here a few channels at a time are resampled and a
  running maximum keeps the argmax, so memory stays at a few bytes per voxel. With
  ``resampling="nnunet"`` it is the plans' own resampling function, values rounded to the
  logits' float16 as in nnunetv2 and ties going to the lower class index as in ``numpy.argmax``:
  the label maps are equal (the tests compare them). ``resampling="torch"`` uses nnunetv2's
  ``resample_torch_fornnunet`` instead (the nnU-Net authors' torch resampling: same trilinear
  interpolation, float32), about ten times faster on a CPU and able to run on the GPU: for a
  whole-body CT the scipy path takes about half a minute per class on one core, i.e. an hour
  for the 145 DAP classes.

Imports ``nnunetv2`` and ``torch`` at module level: import this module only when predicting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

log = logging.getLogger(__name__)


class ProgressPredictor(nnUNetPredictor):
    """``nnUNetPredictor`` that reports every predicted patch to ``on_patch``."""

    def __init__(self, *args, on_patch: Callable[[], None] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_patch = on_patch
        self.patches_per_pass = 0

    def _internal_get_sliding_window_slicers(self, image_size):
        slicers = super()._internal_get_sliding_window_slicers(image_size)
        self.patches_per_pass = len(slicers)
        return slicers

    def _internal_maybe_mirror_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        prediction = super()._internal_maybe_mirror_and_predict(x)
        if self.on_patch is not None:
            self.on_patch()
        return prediction


def channels_per_chunk(n_voxels_resampled: int, n_voxels_out: int = 0, budget_bytes: int = 1 << 30) -> int:
    """How many class channels to resample at once so that the temporaries stay near ``budget_bytes``
    (a float64 copy of the input channels and a float32 result per channel)."""
    per_channel = 8 * max(1, n_voxels_resampled) + 4 * max(0, n_voxels_out)
    return max(1, int(budget_bytes // per_channel))


#: Export resampling methods: "nnunet" = the plans' own function (skimage, float64, exactly what
#: ``nnUNetPredictor`` does); "torch" = nnunetv2's ``resample_torch_fornnunet`` (trilinear, nearest
#: along an anisotropic axis), an order of magnitude faster and able to run on the GPU.
EXPORT_RESAMPLING = ("torch", "nnunet")


def logits_to_input_grid(
    logits: torch.Tensor | np.ndarray,
    properties: dict,
    plans_manager,
    configuration_manager,
    label_manager,
    *,
    chunk: int | None = None,
    resampling: str = "nnunet",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Label map on the grid given to the preprocessor (nnunetv2 array order), from network logits.

    ``resampling="nnunet"`` reproduces nnunetv2's export exactly (same function, float16 values,
    first index wins ties). ``"torch"`` interpolates in float32 with torch on ``device``; it
    differs from it only where two classes are within float16 rounding of each other.
    """
    if resampling not in EXPORT_RESAMPLING:
        raise ValueError(
            f"Unknown export resampling {resampling!r}; use one of {', '.join(EXPORT_RESAMPLING)}."
        )
    if label_manager.has_regions:  # region-based models: no argmax, use nnunetv2's own path
        return convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, plans_manager, configuration_manager, label_manager, properties
        )
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(logits)
    spacing_transposed = [properties["spacing"][i] for i in plans_manager.transpose_forward]
    target_shape = tuple(int(v) for v in properties["shape_after_cropping_and_before_resampling"])
    current_spacing = configuration_manager.spacing
    if len(current_spacing) != len(target_shape):
        current_spacing = [spacing_transposed[0], *current_spacing]
    n_channels = logits.shape[0]
    on_gpu = resampling == "torch" and torch.device(device).type == "cuda"
    budget = (1 << 28) if on_gpu else (1 << 30)  # keep GPU temporaries small (device_selection agrees)
    chunk = chunk or channels_per_chunk(int(np.prod(logits.shape[1:])), int(np.prod(target_shape)), budget)
    index_dtype = np.uint8 if n_channels <= 256 else np.uint16
    if resampling == "torch" and not _has_torch_resampling():
        log.warning(
            "This nnunetv2 has no resample_torch (added in 2.5); exporting with its scipy resampling."
        )
        resampling = "nnunet"
    if resampling == "torch":
        best_index = _running_argmax_torch(
            logits, target_shape, current_spacing, spacing_transposed, configuration_manager, chunk, device
        ).astype(index_dtype)
    else:
        best_index = _running_argmax_nnunet(
            logits.cpu().numpy(),
            target_shape,
            current_spacing,
            spacing_transposed,
            configuration_manager,
            chunk,
        ).astype(index_dtype)
    dtype = np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16
    segmentation = np.zeros(properties["shape_before_cropping"], dtype=dtype)
    segmentation = insert_crop_into_image(
        segmentation, best_index.astype(dtype), properties["bbox_used_for_cropping"]
    )
    return np.ascontiguousarray(segmentation.transpose(plans_manager.transpose_backward))


def _has_torch_resampling() -> bool:
    try:
        from nnunetv2.preprocessing.resampling import resample_torch  # noqa: F401
    except ImportError:
        return False
    return True


def _running_argmax_nnunet(logits, target_shape, current_spacing, new_spacing, configuration_manager, chunk):
    """Argmax over channels resampled chunk by chunk; ties go to the lower index, as numpy.argmax."""
    best_value: np.ndarray | None = None
    best_index: np.ndarray | None = None
    for start in range(0, logits.shape[0], chunk):
        block = configuration_manager.resampling_fn_probabilities(
            logits[start : start + chunk], target_shape, current_spacing, new_spacing
        )
        block = np.asarray(block).astype(logits.dtype, copy=False)
        index = block.argmax(0).astype(np.int16)
        value = np.take_along_axis(block, index[None].astype(np.intp), 0)[0]
        if best_value is None:
            best_value, best_index = value, index
        else:
            better = value > best_value  # strict: an earlier chunk keeps ties
            best_value = np.where(better, value, best_value)
            best_index = np.where(better, index + start, best_index)
        del block
    return best_index


def _running_argmax_torch(
    logits, target_shape, current_spacing, new_spacing, configuration_manager, chunk, device
):
    """The same with nnunetv2's torch resampling, on ``device``."""
    from nnunetv2.preprocessing.resampling.resample_torch import resample_torch_fornnunet

    kwargs = configuration_manager.configuration.get("resampling_fn_probabilities_kwargs", {})
    device = torch.device(device)
    best_value = best_index = None
    with torch.no_grad():
        for start in range(0, logits.shape[0], chunk):
            block = logits[start : start + chunk].to(device=device, dtype=torch.float32)
            block = resample_torch_fornnunet(
                block,
                target_shape,
                current_spacing,
                new_spacing,
                is_seg=False,
                num_threads=torch.get_num_threads(),
                device=device,
                force_separate_z=kwargs.get("force_separate_z"),
            )
            value, index = block.max(dim=0)  # first maximum on ties
            if best_value is None:
                best_value, best_index = value, index
            else:
                better = value > best_value
                best_value = torch.where(better, value, best_value)
                best_index = torch.where(better, index + start, best_index)
            del block
    return best_index.cpu().numpy()
