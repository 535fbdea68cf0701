"""A tiny nnU-Net v2 model folder with random weights, to exercise the inference pipeline.

The real DAP Atlas weights cannot be shipped or downloaded in tests. :func:`write_random_v2_model`
writes a folder with exactly the layout the released models have after conversion
(``dataset.json`` with the DAP labels, ``plans.json`` with a ``3d_fullres`` PlainConvUNet,
``fold_*/checkpoint_final.pth``), only small and randomly initialised: the tests, the benchmark
and anyone checking an installation run the *real* loading and prediction code on it. Its label
maps are meaningless by construction; never present them as a segmentation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..model_conversion import (
    V2_CHECKPOINT,
    V2_CONFIGURATION,
    InferenceSettings,
    V1Architecture,
    build_v2_network,
    v2_dataset_json,
)

#: CT intensity statistics in the range of whole-body CT foreground (HU).
CT_INTENSITY = {
    "max": 3071.0,
    "mean": 60.0,
    "median": 40.0,
    "min": -1024.0,
    "percentile_00_5": -1000.0,
    "percentile_99_5": 1500.0,
    "std": 350.0,
}


def write_random_v2_model(
    folder: str | Path,
    *,
    num_classes: int = 145,
    patch_size: Sequence[int] = (32, 32, 32),
    spacing_mm: Sequence[float] = (6.0, 6.0, 6.0),
    features_per_stage: Sequence[int] = (4, 8, 16),
    folds: Sequence[int] = (0,),
    settings: InferenceSettings | None = None,
    transpose_forward: Sequence[int] = (0, 1, 2),
    seed: int = 0,
) -> Path:
    """Write a random-weight nnU-Net v2 results folder (3D, CT normalisation); returns ``folder``.

    ``spacing_mm`` and ``patch_size`` are in nnU-Net's (transposed) array order; every stage
    after the first halves each patch axis.
    """
    import torch

    folder = Path(folder)
    n_stages = len(features_per_stage)
    arch = V1Architecture(
        input_channels=1,
        num_classes=num_classes,
        features_per_stage=tuple(int(f) for f in features_per_stage),
        kernel_sizes=((3, 3, 3),) * n_stages,
        strides=((1, 1, 1),) + ((2, 2, 2),) * (n_stages - 1),
        conv_per_stage=2,
        conv_bias=True,
    )
    architecture = arch.to_v2_architecture()
    transpose_backward = [list(transpose_forward).index(a) for a in range(3)]
    plans = {
        "dataset_name": "Dataset999_RandomDAP",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [float(s) for s in spacing_mm],
        "original_median_shape_after_transp": [int(p) * 2 for p in patch_size],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [int(i) for i in transpose_forward],
        "transpose_backward": transpose_backward,
        "configurations": {
            V2_CONFIGURATION: {
                "data_identifier": "nnUNetPlans_3d_fullres",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": 2,
                "patch_size": [int(p) for p in patch_size],
                "median_image_size_in_voxels": [int(p) * 2 for p in patch_size],
                "spacing": [float(s) for s in spacing_mm],
                "normalization_schemes": ["CTNormalization"],
                "use_mask_for_norm": [False],
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": {
                    "is_seg": False,
                    "order": 3,
                    "order_z": 0,
                    "force_separate_z": None,
                },
                "resampling_fn_seg_kwargs": {
                    "is_seg": True,
                    "order": 1,
                    "order_z": 0,
                    "force_separate_z": None,
                },
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": {
                    "is_seg": False,
                    "order": 1,
                    "order_z": 0,
                    "force_separate_z": None,
                },
                "architecture": architecture,
                "batch_dice": False,
            }
        },
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": dict(CT_INTENSITY)},
    }
    settings = settings or InferenceSettings(display_name="random test model (meaningless output)")
    dataset = v2_dataset_json(
        num_classes, {"0": "CT"}, settings, description="Random weights, for tests only."
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=2), encoding="utf-8")
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2), encoding="utf-8")
    for index, fold in enumerate(folds):
        torch.manual_seed(seed + index)
        network = build_v2_network(architecture, 1, num_classes)
        network.apply(network.initialize)
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        torch.save(
            {
                "network_weights": network.state_dict(),
                "optimizer_state": None,
                "grad_scaler_state": None,
                "logging": {},
                "_best_ema": None,
                "current_epoch": 0,
                "init_args": {"plans": plans, "configuration": V2_CONFIGURATION, "fold": fold},
                "trainer_name": "nnUNetTrainer",
                "inference_allowed_mirroring_axes": None,
            },
            folder / f"fold_{fold}" / V2_CHECKPOINT,
        )
    return folder
