"""Test helpers: nnU-Net v1 trainer folders built with the real ``nnunet`` 1.7.1 Generic_UNet.

:func:`write_v1_model` reproduces what ``nnUNetTrainerV2`` leaves behind after training
(``plans.pkl``, ``fold_k/<checkpoint>.model`` saved like ``NetworkTrainer.save_checkpoint`` and
``.model.pkl`` like ``nnUNetTrainer.save_checkpoint``), with random weights, numpy arrays and
scalars in the pickles as in real files. The network is the one ``nnUNetTrainerV2.initialize_network``
builds, so the converted v2 network can be compared against it.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

ISOTROPIC = {
    "pool": [[2, 2, 2], [2, 2, 2]],
    "conv": [[3, 3, 3]] * 3,
    "patch": [32, 32, 32],
    "spacing": [12.0, 12.0, 12.0],
}
ANISOTROPIC = {
    "pool": [[1, 2, 2], [2, 2, 2]],
    "conv": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
    "patch": [16, 32, 32],
    "spacing": [12.0, 6.0, 6.0],
}


def generic_unet_class():
    """nnunet 1.7.1's Generic_UNet (skips the test when the oracle package is not installed)."""
    module = pytest.importorskip(
        "nnunet.network_architecture.generic_UNet",
        reason="the v1 oracle needs `pip install --no-deps nnunet==1.7.1` (setup_env.sh does it for [test])",
    )
    return module


def build_generic_unet(config: dict, base_features: int, num_classes: int, seed: int):
    """Generic_UNet exactly as nnUNetTrainerV2.initialize_network builds it, weights randomised."""
    import torch
    from torch import nn

    module = generic_unet_class()
    from nnunet.network_architecture.initialization import InitWeights_He

    network = module.Generic_UNet(
        1,
        base_features,
        num_classes,
        len(config["pool"]),
        2,
        2,
        nn.Conv3d,
        nn.InstanceNorm3d,
        {"eps": 1e-5, "affine": True},
        nn.Dropout3d,
        {"p": 0, "inplace": True},
        nn.LeakyReLU,
        {"negative_slope": 1e-2, "inplace": True},
        True,
        False,
        lambda x: x,
        InitWeights_He(1e-2),
        config["pool"],
        config["conv"],
        False,
        True,
        True,
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # random norms and biases too, so that every mapped tensor matters
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return network


def v1_plans(config: dict, base_features: int, num_classes: int) -> dict:
    """A v1 plans dict of the nnUNetPlansv2.1 kind (numpy arrays where v1 stores them)."""
    stage = {
        "batch_size": 2,
        "num_pool_per_axis": [sum(1 for p in config["pool"] if p[a] > 1) for a in range(3)],
        "patch_size": np.array(config["patch"]),
        "median_patient_size_in_voxels": np.array([2 * p for p in config["patch"]]),
        "current_spacing": np.array(config["spacing"]),
        "original_spacing": np.array(config["spacing"]),
        "do_dummy_2D_data_aug": False,
        "pool_op_kernel_sizes": config["pool"],
        "conv_kernel_sizes": config["conv"],
    }
    intensity = OrderedDict(
        median=40.0,
        mean=np.float64(60.0),
        sd=np.float64(350.0),
        mn=-1024.0,
        mx=3071.0,
        percentile_99_5=1500.0,
        percentile_00_5=-1000.0,
    )
    return {
        "num_stages": 1,
        "num_modalities": 1,
        "modalities": {0: "CT"},
        "normalization_schemes": OrderedDict([(0, "CT")]),
        "dataset_properties": {"intensityproperties": OrderedDict([(0, intensity)])},
        "original_spacings": [np.array(config["spacing"])],
        "original_sizes": [np.array([2 * p for p in config["patch"]])],
        "num_classes": num_classes - 1,
        "all_classes": list(range(1, num_classes)),
        "base_num_features": base_features,
        "use_mask_for_norm": OrderedDict([(0, False)]),
        "keep_only_largest_region": None,
        "min_region_size_per_class": None,
        "min_size_per_class": None,
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "data_identifier": "nnUNetData_plans_v2.1",
        "plans_per_stage": {0: stage},
        "preprocessor_name": "GenericPreprocessor",
        "conv_per_stage": 2,
    }


def write_v1_model(
    trainer_dir: str | Path,
    *,
    config: dict = ISOTROPIC,
    base_features: int = 4,
    num_classes: int = 145,
    trainer_name: str = "nnUNetTrainerV2_noMirroring",
    checkpoint: str = "model_latest",
    folds: Sequence[int] = (0,),
    seed: int = 0,
) -> dict:
    """Write a v1 trainer folder; returns ``{fold: Generic_UNet}`` (the oracle networks)."""
    import torch

    trainer_dir = Path(trainer_dir)
    trainer_dir.mkdir(parents=True, exist_ok=True)
    plans = v1_plans(config, base_features, num_classes)
    with open(trainer_dir / "plans.pkl", "wb") as handle:
        pickle.dump(plans, handle)
    networks = {}
    for fold in folds:
        network = build_generic_unet(config, base_features, num_classes, seed + fold)
        fold_dir = trainer_dir / f"fold_{fold}"
        fold_dir.mkdir(exist_ok=True)
        torch.save(
            {
                "epoch": 1000,
                "state_dict": {k: v.cpu() for k, v in network.state_dict().items()},
                "optimizer_state_dict": None,
                "lr_scheduler_state_dict": None,
                "plot_stuff": ([0.5, np.float64(0.4)], [np.float32(0.3)], [], [np.mean([0.7, 0.8])]),
                "best_stuff": (900, np.float64(0.2), np.float64(0.75)),
            },
            fold_dir / f"{checkpoint}.model",
        )
        info = OrderedDict(
            init=(
                str(trainer_dir / "plans.pkl"),
                fold,
                str(trainer_dir),
                "/data",
                False,
                0,
                True,
                False,
                True,
            ),
            name=trainer_name,
            plans=plans,
        )
        info["class"] = f"<class 'nnunet.training.network_training.{trainer_name}'>"
        with open(fold_dir / f"{checkpoint}.model.pkl", "wb") as handle:
            pickle.dump(info, handle)
        networks[fold] = network
    return networks


def write_coarse_random_v2_model(folder: Path):
    """A random 16-class DAP v2 model folder at 18 mm: segments a tiny phantom in about a second,
    for the batch tests (sequential and on Dask), which check plumbing, not accuracy."""
    from DAPAtlasLib.model_conversion import InferenceSettings
    from DAPAtlasLib.nnunet.random_model import write_random_v2_model

    return write_random_v2_model(
        folder,
        spacing_mm=(18.0, 18.0, 18.0),
        num_classes=16,
        settings=InferenceSettings("random", False, "LAS"),
    )
