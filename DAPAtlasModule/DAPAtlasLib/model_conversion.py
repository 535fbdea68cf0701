"""Convert an nnU-Net **v1** results folder (the released DAP Atlas models) into an nnU-Net **v2** one.

The DAP Atlas authors released nnU-Net v1 models (``plans.pkl`` + ``fold_*/model_*.model`` and
``.model.pkl``). nnU-Net v1 does not run with today's numpy/torch and Slicer's tooling is v2, so
:func:`convert_v1_to_v2` writes a v2 results folder (``dataset.json``, ``plans.json``,
``fold_*/checkpoint_final.pth``) that ``nnunetv2``'s ``nnUNetPredictor`` runs unchanged:

* architecture: v1 ``Generic_UNet`` as trained by ``nnUNetTrainerV2`` (strided-convolution
  pooling, transposed-convolution upsampling, ``conv_per_stage`` conv-InstanceNorm(affine)-
  LeakyReLU(0.01) blocks with conv bias, no dropout at inference, deep-supervision heads) becomes
  ``dynamic_network_architectures``' ``PlainConvUNet`` with the v1 plans' kernel sizes and
  strides; features per stage are read from the checkpoint itself;
* weights: ``conv_blocks_context.d`` -> ``encoder.stages.d``, ``conv_blocks_localization.u`` ->
  ``decoder.stages.u``, ``tu.u`` -> ``decoder.transpconvs.u``, ``seg_outputs.u`` ->
  ``decoder.seg_layers.u``. v1 has no bias on the transposed convolutions and segmentation heads;
  v2 has, and gets zeros (which leaves the function unchanged);
* preprocessing: CT normalisation (clip to the 0.5/99.5 percentiles, subtract mean, divide by
  sd), the target spacing, ``transpose_forward``/``backward`` and the resampling orders
  (data 3, probabilities 1, out-of-plane 0 for anisotropic spacing) carry over.

Differences between the two pipelines that remain (documented, small): v2 clips intensities
*before* resampling the CT to the target spacing, v1 after (they agree when no resampling is
needed and differ only where cubic overshoot crosses a clip bound); v2 resamples logits back to
the input grid, v1 resampled softmax probabilities. Both then take the argmax.

The network equivalence (same logits for the same input) is checked in the tests against the
``Generic_UNet`` of the ``nnunet`` 1.7.1 package.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.atomic_output import staging_folder

from .exceptions import (
    CorruptWeightsError,
    InputNotFoundError,
    MissingWeightsError,
    OutputExistsError,
    UnsupportedFormatError,
)
from .v1_pickle import load_v1_checkpoint, load_v1_pickle

log = logging.getLogger(__name__)

#: The nnU-Net v2 configuration name the converted folder declares.
V2_CONFIGURATION = "3d_fullres"
#: Checkpoint file name written in each converted fold folder.
V2_CHECKPOINT = "checkpoint_final.pth"
#: Provenance record written next to plans.json.
CONVERSION_RECORD = "conversion.json"
#: Key of dataset.json holding the toolkit's inference settings (nnunetv2 ignores unknown keys).
INFERENCE_SETTINGS_KEY = "dap_atlas_inference"
#: v1 checkpoint names in the order nnU-Net v1 prefers them for prediction.
V1_CHECKPOINT_PREFERENCE = ("model_final_checkpoint", "model_latest", "model_best")
#: Checkpoints the DAP Atlas authors tell users to predict with (AtlasDataset README).
RELEASED_CHECKPOINTS = {"Task902": "model_latest", "Task901": "model_final_checkpoint"}

_V1_NORMALIZATION_TO_V2 = {
    "CT": "CTNormalization",
    "nonCT": "ZScoreNormalization",
    "noNorm": "NoNormalization",
}
_PROGRESS = Callable[[float, str], None]


@dataclass(frozen=True)
class InferenceSettings:
    """How the toolkit runs a (converted) model: read from ``dataset.json`` of a v2 folder.

    ``voxel_orientation``: axis code ("LAS": voxel index grows towards Left, Anterior, Superior)
    of the images the model was trained on; inputs are permuted/flipped into it before
    prediction and back afterwards (no interpolation). ``None`` feeds the array as stored.
    """

    display_name: str = "nnU-Net model"
    postprocess_by_default: bool = False
    voxel_orientation: str | None = None

    def to_json(self) -> dict:
        return {
            "display_name": self.display_name,
            "postprocess_by_default": self.postprocess_by_default,
            "voxel_orientation": self.voxel_orientation,
        }


#: What the two released DAP Atlas models need. Both were trained on AutoPET NIfTI files in
#: LAS voxel order (the released post-processing script assumes exactly that layout).
DAP_V1_SETTINGS = InferenceSettings("DAP Atlas V1 (Task901, needs post-processing)", True, "LAS")
DAP_V2_SETTINGS = InferenceSettings("DAP Atlas V2 (Task902, recommended)", False, "LAS")


def settings_for_v1_folder(folder: str | Path) -> InferenceSettings:
    """The DAP settings when ``folder`` is one of the released tasks, generic ones otherwise."""
    text = Path(folder).resolve().as_posix()
    if "Task901" in text:
        return DAP_V1_SETTINGS
    if "Task902" in text:
        return DAP_V2_SETTINGS
    return InferenceSettings(display_name=f"nnU-Net v1 model {Path(folder).name}")


# ---------------------------------------------------------------------------------- folders
def is_v2_model_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / "plans.json").is_file() and (folder / "dataset.json").is_file()


def is_v1_model_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / "plans.pkl").is_file() and any(folder.glob("fold_*/*.model"))


def _fold_names(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.glob("fold_*")):
        if path.is_dir():
            names.append(path.name[len("fold_") :])
    return sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))


def available_v1_checkpoints(folder: str | Path) -> dict[str, list[str]]:
    """``{checkpoint name: [folds that have both .model and .model.pkl]}``."""
    folder = Path(folder)
    found: dict[str, list[str]] = {}
    for fold in _fold_names(folder):
        for model in sorted((folder / f"fold_{fold}").glob("*.model")):
            if model.with_name(model.name + ".pkl").is_file():
                found.setdefault(model.stem, []).append(fold)
    return found


def default_v1_checkpoint(folder: str | Path) -> str:
    """The checkpoint to predict with: the authors' choice for a released task (model_latest for
    Task902), else what nnU-Net v1 uses by default: final, else latest, else best."""
    found = available_v1_checkpoints(folder)
    released = next(
        (c for task, c in RELEASED_CHECKPOINTS.items() if task in Path(folder).resolve().as_posix()), None
    )
    if released in found:
        return released
    for name in V1_CHECKPOINT_PREFERENCE:
        if name in found:
            return name
    if found:
        return sorted(found)[0]
    raise MissingWeightsError(
        f"{folder} holds no fold_*/<checkpoint>.model with its .model.pkl; give the nnU-Net v1 trainer "
        "folder (the one with plans.pkl and fold_0 ... fold_4)."
    )


@dataclass(frozen=True)
class V1ModelFolder:
    """What :func:`inspect_v1_folder` learnt about a v1 trainer folder."""

    path: Path
    plans: dict  # the whole v1 plans dict
    stage: int
    trainer_name: str
    checkpoint: str
    folds: tuple[str, ...]

    @property
    def stage_plans(self) -> dict:
        return self.plans["plans_per_stage"][self.stage]


def inspect_v1_folder(
    folder: str | Path, checkpoint: str | None = None, folds: Sequence[int | str] | None = None
) -> V1ModelFolder:
    """Check a v1 trainer folder and read its plans; clear errors for what is missing or odd."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputNotFoundError(f"nnU-Net v1 model folder not found: {folder}")
    if not (folder / "plans.pkl").is_file():
        inner = sorted(p.parent for p in folder.rglob("plans.pkl"))
        hint = f" Did you mean {inner[0]}?" if inner else ""
        raise MissingWeightsError(
            f"{folder} has no plans.pkl, so it is not an nnU-Net v1 trainer folder "
            f"(e.g. .../Task902_Anatomy_Prediction/nnUNetTrainerV2_noMirroring__nnUNetPlansv2.1).{hint}"
        )
    checkpoint = checkpoint or default_v1_checkpoint(folder)
    checkpoint = checkpoint[: -len(".model")] if checkpoint.endswith(".model") else checkpoint
    found = available_v1_checkpoints(folder)
    have = found.get(checkpoint, [])
    if folds is None:
        wanted = have
    else:
        wanted = [str(f) for f in folds]
        missing = [f for f in wanted if f not in have]
        if missing:
            raise MissingWeightsError(
                f"{folder} lacks {checkpoint}.model (with its .model.pkl) for fold(s) {', '.join(missing)}; "
                f"available: {', '.join(have) or 'none'}."
            )
    if not wanted:
        raise MissingWeightsError(
            f"{folder} has no fold with {checkpoint}.model and {checkpoint}.model.pkl "
            f"(checkpoints found: {', '.join(sorted(found)) or 'none'})."
        )
    info = load_v1_pickle(folder / f"fold_{wanted[0]}" / f"{checkpoint}.model.pkl")
    if not isinstance(info, Mapping) or "plans" not in info:
        raise CorruptWeightsError(f"{folder}/fold_{wanted[0]}/{checkpoint}.model.pkl has no 'plans' entry.")
    plans = info["plans"] if isinstance(info["plans"], Mapping) else load_v1_pickle(folder / "plans.pkl")
    _require_keys(plans, ("plans_per_stage", "num_classes", "normalization_schemes"), folder / "plans.pkl")
    stages = sorted(plans["plans_per_stage"])
    init = info.get("init") or ()
    stage = init[5] if len(init) > 5 and init[5] in plans["plans_per_stage"] else stages[-1]
    trainer_name = str(info.get("name", "nnUNetTrainerV2"))
    return V1ModelFolder(folder, dict(plans), int(stage), trainer_name, checkpoint, tuple(wanted))


def _require_keys(mapping: Mapping, keys: Sequence[str], where: Path) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise CorruptWeightsError(f"{where} lacks {', '.join(missing)}: not an nnU-Net v1 plans file.")


# ---------------------------------------------------------------------------------- architecture
@dataclass(frozen=True)
class V1Architecture:
    """The Generic_UNet hyper-parameters needed to build the equivalent v2 network."""

    input_channels: int
    num_classes: int
    features_per_stage: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]  # first entry all ones
    conv_per_stage: int
    conv_bias: bool

    @property
    def n_stages(self) -> int:
        return len(self.features_per_stage)

    @property
    def v1_decoder_kernel_sizes(self) -> tuple[tuple[int, ...], ...]:
        """Generic_UNet's decoder stage u uses conv_kernel_sizes[-(u + 1)] (see v1_decoder_unet)."""
        return tuple(self.kernel_sizes[-(u + 1)] for u in range(self.n_stages - 1))

    @property
    def v2_decoder_kernel_sizes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(self.kernel_sizes[-(u + 2)] for u in range(self.n_stages - 1))

    def to_v2_architecture(self) -> dict:
        """The ``architecture`` block of a v2 plans.json configuration."""
        dims = len(self.kernel_sizes[0])
        if dims != 3:
            raise UnsupportedFormatError(
                f"Only 3D nnU-Net v1 models can be converted; this one has {dims}D kernels."
            )
        kwargs: dict[str, Any] = {
            "n_stages": self.n_stages,
            "features_per_stage": list(self.features_per_stage),
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": [list(s) for s in self.strides],
            "n_conv_per_stage": [self.conv_per_stage] * self.n_stages,
            "n_conv_per_stage_decoder": [self.conv_per_stage] * (self.n_stages - 1),
            "conv_bias": self.conv_bias,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True, "negative_slope": 0.01},
        }
        class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
        if self.v1_decoder_kernel_sizes != self.v2_decoder_kernel_sizes:
            class_name = "DAPAtlasLib.nnunet.v1_decoder_unet.PlainConvUNetV1Decoder"
            kwargs["decoder_kernel_sizes"] = [list(k) for k in self.v1_decoder_kernel_sizes]
        return {
            "network_class_name": class_name,
            "arch_kwargs": kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        }


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the ``module.`` prefix that DataParallel training adds to every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _v1_block_prefixes(n_stages: int, conv_per_stage: int) -> dict[str, str]:
    """v2 conv-block prefix -> v1 conv-block prefix, for every conv-norm-nonlin block."""
    pool = n_stages - 1
    mapping: dict[str, str] = {}
    for d in range(pool):
        for b in range(conv_per_stage):
            mapping[f"encoder.stages.{d}.0.convs.{b}"] = f"conv_blocks_context.{d}.blocks.{b}"
    for b in range(conv_per_stage - 1):
        mapping[f"encoder.stages.{pool}.0.convs.{b}"] = f"conv_blocks_context.{pool}.0.blocks.{b}"
    mapping[f"encoder.stages.{pool}.0.convs.{conv_per_stage - 1}"] = f"conv_blocks_context.{pool}.1.blocks.0"
    for u in range(pool):
        for b in range(conv_per_stage - 1):
            mapping[f"decoder.stages.{u}.convs.{b}"] = f"conv_blocks_localization.{u}.0.blocks.{b}"
        mapping[f"decoder.stages.{u}.convs.{conv_per_stage - 1}"] = f"conv_blocks_localization.{u}.1.blocks.0"
    return mapping


def v1_to_v2_key_map(n_stages: int, conv_per_stage: int, conv_bias: bool = True) -> dict[str, str]:
    """Canonical v2 parameter name -> v1 ``Generic_UNet`` parameter name.

    v2 parameters absent from the map (transposed-conv and segmentation-head biases) have no v1
    counterpart and are zero. Aliases of the same tensors in the v2 state_dict (``all_modules.*``,
    ``decoder.encoder.*``) are filled by loading into the network.
    """
    mapping: dict[str, str] = {}
    for v2_block, v1_block in _v1_block_prefixes(n_stages, conv_per_stage).items():
        mapping[f"{v2_block}.conv.weight"] = f"{v1_block}.conv.weight"
        if conv_bias:
            mapping[f"{v2_block}.conv.bias"] = f"{v1_block}.conv.bias"
        mapping[f"{v2_block}.norm.weight"] = f"{v1_block}.instnorm.weight"
        mapping[f"{v2_block}.norm.bias"] = f"{v1_block}.instnorm.bias"
    for u in range(n_stages - 1):
        mapping[f"decoder.transpconvs.{u}.weight"] = f"tu.{u}.weight"
        mapping[f"decoder.seg_layers.{u}.weight"] = f"seg_outputs.{u}.weight"
    return mapping


def architecture_from_v1(
    stage_plans: Mapping, v1_plans: Mapping, state_dict: Mapping[str, Any]
) -> V1Architecture:
    """Read the Generic_UNet hyper-parameters from the v1 plans and check them against the weights."""
    pool_kernels = [tuple(int(v) for v in k) for k in stage_plans.get("pool_op_kernel_sizes", [])]
    conv_kernels = [tuple(int(v) for v in k) for k in stage_plans.get("conv_kernel_sizes", [])]
    if not pool_kernels or len(conv_kernels) != len(pool_kernels) + 1:
        raise CorruptWeightsError(
            "The v1 plans lack consistent pool_op_kernel_sizes/conv_kernel_sizes (old plans files "
            "without them are not supported); re-export the plans with nnU-Net >= 1.5."
        )
    n_stages = len(conv_kernels)
    conv_per_stage = int(v1_plans.get("conv_per_stage", 2))
    state = strip_module_prefix(state_dict)
    if any(".instnorm.running_mean" in k for k in state) or not any(".instnorm.weight" in k for k in state):
        raise UnsupportedFormatError(
            "This v1 network does not use affine InstanceNorm (nnUNetTrainerV2's default); only such "
            "models can be converted."
        )
    conv_bias = "conv_blocks_context.0.blocks.0.conv.bias" in state
    first_weight = state.get("conv_blocks_context.0.blocks.0.conv.weight")
    head = state.get(f"seg_outputs.{n_stages - 2}.weight")
    if first_weight is None or head is None:
        raise CorruptWeightsError(
            f"The checkpoint does not hold a {n_stages}-stage Generic_UNet (plans and weights disagree)."
        )
    features = []
    for v2_block, v1_block in _v1_block_prefixes(n_stages, conv_per_stage).items():
        match = re.match(r"encoder\.stages\.(\d+)\.0\.convs\.0$", v2_block)
        if match:
            weight = state.get(f"{v1_block}.conv.weight")
            if weight is None:
                raise CorruptWeightsError(
                    f"The checkpoint lacks {v1_block}.conv.weight expected from the plans."
                )
            features.append(int(weight.shape[0]))
    num_classes = int(head.shape[0])
    expected_classes = int(v1_plans["num_classes"]) + 1
    if num_classes != expected_classes:
        raise CorruptWeightsError(
            f"The checkpoint predicts {num_classes} classes but its plans say {expected_classes}: "
            "plans.pkl and the weights come from different models."
        )
    return V1Architecture(
        input_channels=int(first_weight.shape[1]),
        num_classes=num_classes,
        features_per_stage=tuple(features),
        kernel_sizes=tuple(conv_kernels),
        strides=((1,) * len(conv_kernels[0]), *pool_kernels),
        conv_per_stage=conv_per_stage,
        conv_bias=conv_bias,
    )


def build_v2_network(architecture: dict, input_channels: int, num_classes: int):
    """Instantiate the network of a v2 ``architecture`` block exactly as nnunetv2 does."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    return get_network_from_plans(
        architecture["network_class_name"],
        architecture["arch_kwargs"],
        architecture["_kw_requires_import"],
        input_channels,
        num_classes,
        allow_init=False,
        deep_supervision=False,
    )


def convert_state_dict(v1_state_dict: Mapping[str, Any], arch: V1Architecture, network) -> dict:
    """The complete v2 state_dict of ``network`` holding the v1 weights (raises on any mismatch)."""
    import torch

    v1_state = strip_module_prefix(v1_state_dict)
    key_map = v1_to_v2_key_map(arch.n_stages, arch.conv_per_stage, arch.conv_bias)
    target = network.state_dict()
    converted = {}
    for v2_key, v1_key in key_map.items():
        if v1_key not in v1_state:
            raise CorruptWeightsError(f"The v1 checkpoint lacks {v1_key} (needed for {v2_key}).")
        tensor = v1_state[v1_key]
        if tuple(tensor.shape) != tuple(target[v2_key].shape):
            raise CorruptWeightsError(
                f"{v1_key} has shape {tuple(tensor.shape)} but the network built from the plans expects "
                f"{tuple(target[v2_key].shape)}: plans.pkl and the checkpoint do not belong together."
            )
        converted[v2_key] = tensor.detach().to(torch.float32)
    unused = sorted(set(v1_state) - set(key_map.values()))
    if unused:
        raise CorruptWeightsError(
            f"The v1 checkpoint has {len(unused)} parameter(s) the converted network does not use "
            f"(e.g. {unused[0]}): it is not a plain Generic_UNet of nnUNetTrainerV2."
        )
    for name in ("transpconvs", "seg_layers"):
        for key, value in target.items():
            if key.startswith(f"decoder.{name}.") and key.endswith(".bias"):
                converted[key] = torch.zeros_like(value)
    network.load_state_dict(converted, strict=False)
    left = [
        k
        for k in network.state_dict()
        if k not in converted and ".all_modules." not in k and not k.startswith("decoder.encoder.")
    ]
    if left:
        raise CorruptWeightsError(f"No v1 weights for {len(left)} v2 parameter(s), e.g. {left[0]}.")
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


# ---------------------------------------------------------------------------------- plans and dataset
def _intensity_properties_v2(v1_plans: Mapping) -> dict[str, dict[str, float]]:
    props = v1_plans.get("dataset_properties", {}).get("intensityproperties") or {}
    out: dict[str, dict[str, float]] = {}
    for channel, values in props.items():
        if values is None:
            continue
        out[str(channel)] = {
            "max": float(values.get("mx", values.get("max", 0.0))),
            "mean": float(values["mean"]),
            "median": float(values.get("median", values["mean"])),
            "min": float(values.get("mn", values.get("min", 0.0))),
            "percentile_00_5": float(values["percentile_00_5"]),
            "percentile_99_5": float(values["percentile_99_5"]),
            "std": float(values.get("sd", values.get("std"))),
        }
    return out


def _per_channel_list(value: Any, n_channels: int) -> list:
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value, key=int)]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value] * n_channels


def v2_plans_from_v1(folder: V1ModelFolder, architecture: dict, dataset_name: str) -> dict:
    """A v2 ``plans.json`` equivalent to the v1 plans of ``folder``'s stage."""
    plans = folder.plans
    stage = folder.stage_plans
    n_channels = int(plans.get("num_modalities", 1))
    schemes = _per_channel_list(plans["normalization_schemes"], n_channels)
    unsupported = [s for s in schemes if s not in _V1_NORMALIZATION_TO_V2]
    if unsupported:
        raise UnsupportedFormatError(
            f"v1 normalisation scheme(s) {unsupported} have no nnU-Net v2 counterpart; only "
            f"{', '.join(_V1_NORMALIZATION_TO_V2)} can be converted."
        )
    preprocessor = str(plans.get("preprocessor_name", "GenericPreprocessor"))
    if preprocessor != "GenericPreprocessor":
        raise UnsupportedFormatError(
            f"The v1 plans use the {preprocessor} preprocessor; only GenericPreprocessor "
            "(nnUNetPlansv2.1, used by the DAP Atlas models) can be converted faithfully."
        )
    intensity = _intensity_properties_v2(plans)
    if "CT" in schemes and not intensity:
        raise CorruptWeightsError("The v1 plans use CT normalisation but hold no intensity properties.")
    use_mask = [bool(v) for v in _per_channel_list(plans.get("use_mask_for_norm", False), n_channels)]
    transpose_forward = [int(v) for v in plans.get("transpose_forward", [0, 1, 2])]
    transpose_backward = [int(v) for v in plans.get("transpose_backward", [0, 1, 2])]
    spacing = [float(v) for v in stage["current_spacing"]]
    spacings = plans.get("original_spacings")
    sizes = plans.get("original_sizes")
    median_spacing = (
        [float(v) for v in np.median(np.asarray(spacings, dtype=float), axis=0)[transpose_forward]]
        if spacings is not None and len(spacings)
        else [float(v) for v in stage.get("original_spacing", spacing)]
    )
    median_shape = (
        [float(v) for v in np.median(np.asarray(sizes, dtype=float), axis=0)[transpose_forward]]
        if sizes is not None and len(sizes)
        else [float(v) for v in stage.get("median_patient_size_in_voxels", stage["patch_size"])]
    )
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    return {
        "dataset_name": dataset_name,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": median_spacing,
        "original_median_shape_after_transp": median_shape,
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": transpose_forward,
        "transpose_backward": transpose_backward,
        "configurations": {
            V2_CONFIGURATION: {
                "data_identifier": "nnUNetPlans_3d_fullres",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": int(stage.get("batch_size", 2)),
                "patch_size": [int(v) for v in stage["patch_size"]],
                "median_image_size_in_voxels": [
                    float(v) for v in stage.get("median_patient_size_in_voxels", stage["patch_size"])
                ],
                "spacing": spacing,
                "normalization_schemes": [_V1_NORMALIZATION_TO_V2[s] for s in schemes],
                "use_mask_for_norm": use_mask,
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": resampling,
                "resampling_fn_seg_kwargs": {**resampling, "is_seg": True, "order": 1},
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": {**resampling, "order": 1},
                "architecture": architecture,
                "batch_dice": False,
            }
        },
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": intensity,
    }


def dap_label_names(num_classes: int) -> dict[str, int]:
    """nnunetv2 ``labels`` for ids 0..num_classes-1: DAP canonical names, ``class_<id>`` beyond the schema."""
    from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID, label_by_id

    labels: dict[str, int] = {}
    for value in range(num_classes):
        name = label_by_id(value).name if value <= MAX_LABEL_ID else f"class_{value}"
        if value == 0:
            name = "background"
        if name in labels:
            name = f"{name} ({value})"
        labels[name] = value
    return labels


def v2_dataset_json(
    num_classes: int, channel_names: Mapping[str, str], settings: InferenceSettings, description: str = ""
) -> dict:
    """A v2 ``dataset.json`` with the DAP label names and the toolkit's inference settings."""
    return {
        "channel_names": {str(k): str(v) for k, v in channel_names.items()},
        "labels": dap_label_names(num_classes),
        "numTraining": 0,
        "file_ending": ".nii.gz",
        "name": settings.display_name,
        "description": description,
        INFERENCE_SETTINGS_KEY: settings.to_json(),
    }


def read_inference_settings(model_dir: str | Path) -> InferenceSettings:
    """The toolkit settings stored in a v2 folder's dataset.json (defaults when absent)."""
    path = Path(model_dir) / "dataset.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise MissingWeightsError(
            f"{model_dir} has no dataset.json: not an nnU-Net v2 model folder."
        ) from error
    except json.JSONDecodeError as error:
        raise CorruptWeightsError(f"{path} is not valid JSON ({error}).") from error
    raw = data.get(INFERENCE_SETTINGS_KEY) or {}
    return InferenceSettings(
        display_name=str(raw.get("display_name", data.get("name", Path(model_dir).name))),
        postprocess_by_default=bool(raw.get("postprocess_by_default", False)),
        voxel_orientation=raw.get("voxel_orientation"),
    )


# ---------------------------------------------------------------------------------- conversion
def _dataset_name_for(folder: Path) -> str:
    match = re.search(r"Task(\d{3})_([A-Za-z0-9_]+)", folder.resolve().as_posix())
    if match:
        return f"Dataset{match.group(1)}_{match.group(2)}"
    return "Dataset999_ConvertedFromV1"


def _mirroring_axes(trainer_name: str, n_dims: int) -> tuple[int, ...] | None:
    """nnUNetTrainerV2 trains with mirroring on all axes; the *noMirroring variants do not."""
    if "nomirror" in trainer_name.lower():
        return None
    return tuple(range(n_dims))


def convert_v1_to_v2(
    v1_folder: str | Path,
    out_folder: str | Path,
    *,
    checkpoint: str | None = None,
    folds: Sequence[int | str] | None = None,
    settings: InferenceSettings | None = None,
    overwrite: bool = False,
    progress: _PROGRESS | None = None,
) -> Path:
    """Write the nnU-Net v2 equivalent of a v1 trainer folder into ``out_folder``.

    ``checkpoint`` names the v1 checkpoint to convert (default: model_final_checkpoint, else
    model_latest, else model_best); it becomes ``fold_*/checkpoint_final.pth``. The folder is
    assembled in a temporary sibling and renamed at the end, so an interrupted conversion leaves
    nothing behind. ``settings`` defaults to the DAP V1/V2 settings recognised from the task name.
    """
    import torch

    source = inspect_v1_folder(v1_folder, checkpoint, folds)
    settings = settings or settings_for_v1_folder(source.path)
    out_folder = Path(out_folder).expanduser()
    if out_folder.exists() and any(out_folder.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{out_folder} already exists and is not empty; choose another folder or pass overwrite=True "
            "(--overwrite on the command line)."
        )
    staging = staging_folder(out_folder, label="converting")
    try:
        dataset_json = plans_json = None
        n_dims = len(source.stage_plans["patch_size"])
        for index, fold in enumerate(source.folds):
            if progress is not None:
                progress(index / len(source.folds), f"converting fold {fold} ({source.checkpoint})")
            fold_dir = source.path / f"fold_{fold}"
            v1_checkpoint = load_v1_checkpoint(fold_dir / f"{source.checkpoint}.model")
            arch = architecture_from_v1(source.stage_plans, source.plans, v1_checkpoint["state_dict"])
            architecture = arch.to_v2_architecture()
            if plans_json is None:
                plans_json = v2_plans_from_v1(source, architecture, _dataset_name_for(source.path))
                modalities = source.plans.get("modalities") or {0: "CT"}
                dataset_json = v2_dataset_json(
                    arch.num_classes,
                    {str(k): v for k, v in dict(modalities).items()},
                    settings,
                    description=f"Converted from nnU-Net v1 {source.path} "
                    f"({source.trainer_name}, {source.checkpoint}).",
                )
            elif plans_json["configurations"][V2_CONFIGURATION]["architecture"] != architecture:
                raise CorruptWeightsError(
                    f"fold_{fold} holds a different network than fold_{source.folds[0]}."
                )
            network = build_v2_network(architecture, arch.input_channels, arch.num_classes)
            weights = convert_state_dict(v1_checkpoint["state_dict"], arch, network)
            (staging / f"fold_{fold}").mkdir()
            torch.save(
                {
                    "network_weights": weights,
                    "optimizer_state": None,
                    "grad_scaler_state": None,
                    "logging": {},
                    "_best_ema": None,
                    "current_epoch": int(v1_checkpoint.get("epoch", 0) or 0),
                    "init_args": {"plans": plans_json, "configuration": V2_CONFIGURATION, "fold": fold},
                    "trainer_name": "nnUNetTrainer",
                    "inference_allowed_mirroring_axes": _mirroring_axes(source.trainer_name, n_dims),
                },
                staging / f"fold_{fold}" / V2_CHECKPOINT,
            )
        (staging / "plans.json").write_text(json.dumps(plans_json, indent=2), encoding="utf-8")
        (staging / "dataset.json").write_text(json.dumps(dataset_json, indent=2), encoding="utf-8")
        record = {
            "source": str(source.path.resolve()),
            "v1_trainer": source.trainer_name,
            "v1_checkpoint": source.checkpoint,
            "v1_stage": source.stage,
            "folds": list(source.folds),
            "network_class": plans_json["configurations"][V2_CONFIGURATION]["architecture"][
                "network_class_name"
            ],
            "converted_by": "DAPAtlasLib.model_conversion",
        }
        (staging / CONVERSION_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        if out_folder.exists():
            if not overwrite and any(out_folder.iterdir()):  # filled meanwhile (another process): keep it
                raise OutputExistsError(f"{out_folder} was created while converting; keeping that one.")
            shutil.rmtree(out_folder)
        os.replace(staging, out_folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0, f"converted {len(source.folds)} fold(s) into {out_folder}")
    log.info("Converted %s (%s) into %s", source.path, source.checkpoint, out_folder)
    return out_folder


def validate_v2_folder(model_dir: str | Path, checkpoint: str = V2_CHECKPOINT) -> list[str]:
    """Check a v2 folder before loading it; returns its folds (clear errors otherwise)."""
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise InputNotFoundError(f"Model folder not found: {model_dir}")
    if is_v1_model_folder(model_dir) and not is_v2_model_folder(model_dir):
        raise UnsupportedFormatError(
            f"{model_dir} is an nnU-Net v1 folder; convert it first (python -m DAPAtlasLib convert-model "
            f"{model_dir} OUT_FOLDER) or pass it to segment, which converts it on first use."
        )
    for name in ("dataset.json", "plans.json"):
        path = model_dir / name
        if not path.is_file():
            raise MissingWeightsError(
                f"{model_dir} has no {name}: not an nnU-Net v2 results folder "
                "(expected dataset.json, plans.json and fold_*/checkpoint_final.pth)."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise CorruptWeightsError(
                f"{path} is not valid JSON ({error}); copy the model folder again."
            ) from error
        if name == "plans.json" and V2_CONFIGURATION not in data.get("configurations", {}):
            raise UnsupportedFormatError(
                f"{path} has no '{V2_CONFIGURATION}' configuration (found: "
                f"{', '.join(data.get('configurations', {})) or 'none'})."
            )
        if name == "dataset.json" and "labels" not in data:
            raise CorruptWeightsError(f"{path} has no 'labels': not an nnU-Net v2 dataset.json.")
    folds = [f for f in _fold_names(model_dir) if (model_dir / f"fold_{f}" / checkpoint).is_file()]
    if not folds:
        raise MissingWeightsError(f"{model_dir} has no fold_*/{checkpoint}.")
    return folds
