"""nnU-Net v1 -> v2 conversion: the converted network computes what the v1 Generic_UNet computes.

The oracle is the ``Generic_UNet`` of the PyPI ``nnunet`` 1.7.1 package (installed with
``--no-deps`` beside nnunetv2), built like ``nnUNetTrainerV2`` builds it, with random weights.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from dap_model_fixtures import ANISOTROPIC, ISOTROPIC, generic_unet_class, write_v1_model  # noqa: E402

from DAPAtlasLib.__main__ import main  # noqa: E402
from DAPAtlasLib.exceptions import (  # noqa: E402
    CorruptWeightsError,
    MissingWeightsError,
    OutputExistsError,
    UnsupportedFormatError,
)
from DAPAtlasLib.model_conversion import (  # noqa: E402
    INFERENCE_SETTINGS_KEY,
    V2_CHECKPOINT,
    build_v2_network,
    convert_v1_to_v2,
    default_v1_checkpoint,
    v1_to_v2_key_map,
)
from DAPAtlasLib.v1_pickle import load_v1_checkpoint, load_v1_pickle  # noqa: E402

pytestmark = pytest.mark.torch
TRAINER = "Task902_Anatomy_Prediction/nnUNetTrainerV2_noMirroring__nnUNetPlansv2.1"


def converted_network(out: Path, fold: int = 0):
    plans = json.loads((out / "plans.json").read_text())
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    network = build_v2_network(plans["configurations"]["3d_fullres"]["architecture"], 1, len(labels))
    checkpoint = torch.load(out / f"fold_{fold}" / V2_CHECKPOINT, map_location="cpu", weights_only=True)
    network.load_state_dict(checkpoint["network_weights"])
    return network.eval(), plans, checkpoint


def max_logit_difference(v1_network, v2_network, shape) -> float:
    v1_network.eval()
    v1_network.do_ds = False
    x = torch.randn((2, 1, *shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = v1_network(x)
        actual = v2_network(x)
    assert actual.shape == expected.shape
    return float((actual - expected).abs().max())


@pytest.mark.parametrize(
    ("config", "network_class"),
    [(ISOTROPIC, "PlainConvUNet"), (ANISOTROPIC, "PlainConvUNetV1Decoder")],
    ids=["isotropic-3x3x3", "anisotropic-1x3x3"],
)
def test_converted_network_gives_the_v1_generic_unet_logits(tmp_path, config, network_class):
    networks = write_v1_model(tmp_path / TRAINER, config=config, base_features=4, num_classes=145)
    out = convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    network, plans, _ = converted_network(out)
    assert plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"].endswith(network_class)
    difference = max_logit_difference(networks[0], network, config["patch"])
    print(f"max |logit difference| v1 Generic_UNet vs converted v2 network: {difference:.3g}")
    assert difference <= 1e-4


def test_every_v1_parameter_has_exactly_one_v2_destination():
    network = generic_unet_class().Generic_UNet  # noqa: F841 - skips without the oracle
    from dap_model_fixtures import build_generic_unet

    for config in (ISOTROPIC, ANISOTROPIC):
        v1_keys = set(build_generic_unet(config, 4, 5, seed=0).state_dict())
        mapping = v1_to_v2_key_map(n_stages=3, conv_per_stage=2)
        assert sorted(mapping.values()) == sorted(v1_keys)
        assert len(set(mapping.values())) == len(mapping)


def test_converted_folder_declares_ct_normalisation_spacing_labels_and_no_mirroring(tmp_path):
    write_v1_model(tmp_path / TRAINER, config=ANISOTROPIC)
    out = convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    plans = json.loads((out / "plans.json").read_text())
    configuration = plans["configurations"]["3d_fullres"]
    assert configuration["spacing"] == ANISOTROPIC["spacing"]
    assert configuration["patch_size"] == ANISOTROPIC["patch"]
    assert configuration["normalization_schemes"] == ["CTNormalization"]
    assert plans["foreground_intensity_properties_per_channel"]["0"] == {
        "max": 3071.0,
        "mean": 60.0,
        "median": 40.0,
        "min": -1024.0,
        "percentile_00_5": -1000.0,
        "percentile_99_5": 1500.0,
        "std": 350.0,
    }
    assert plans["transpose_forward"] == [0, 1, 2]
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"]["background"] == 0
    assert dataset["labels"]["kidney left"] == 15 and dataset["labels"]["subclavian artery left"] == 144
    assert sorted(dataset["labels"].values()) == list(range(145))
    assert dataset[INFERENCE_SETTINGS_KEY] == {
        "display_name": "DAP Atlas V2 (Task902, recommended)",
        "postprocess_by_default": False,
        "voxel_orientation": "LAS",
    }
    checkpoint = torch.load(out / "fold_0" / V2_CHECKPOINT, weights_only=True)
    assert checkpoint["inference_allowed_mirroring_axes"] is None  # trained without mirroring
    assert json.loads((out / "conversion.json").read_text())["v1_checkpoint"] == "model_latest"


def test_v1_dataset_model_keeps_test_time_mirroring_and_post_processing(tmp_path):
    trainer = tmp_path / "Task901_Atlas_Dataset/nnUNetTrainerV2__nnUNetPlansv2.1"
    write_v1_model(trainer, trainer_name="nnUNetTrainerV2", checkpoint="model_final_checkpoint")
    out = convert_v1_to_v2(trainer, tmp_path / "v2")
    checkpoint = torch.load(out / "fold_0" / V2_CHECKPOINT, weights_only=True)
    assert tuple(checkpoint["inference_allowed_mirroring_axes"]) == (0, 1, 2)
    assert (
        json.loads((out / "dataset.json").read_text())[INFERENCE_SETTINGS_KEY]["postprocess_by_default"]
        is True
    )


def test_converted_folder_runs_in_the_nnunetv2_predictor(tmp_path):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    write_v1_model(tmp_path / TRAINER, folds=(0, 1))
    out = convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(out), use_folds=(0, 1), checkpoint_name=V2_CHECKPOINT)
    image = np.random.default_rng(0).normal(0, 300, (1, 20, 24, 28)).astype(np.float32)
    labels = predictor.predict_single_npy_array(image, {"spacing": [12.0, 12.0, 12.0]})
    assert labels.shape == (20, 24, 28) and labels.min() >= 0 and labels.max() < 145


def test_default_checkpoint_follows_the_authors_instructions(tmp_path):
    v2 = tmp_path / TRAINER
    write_v1_model(v2, checkpoint="model_latest")
    write_v1_model(v2, checkpoint="model_final_checkpoint")
    assert default_v1_checkpoint(v2) == "model_latest"  # the V2 README says -chk model_latest
    other = tmp_path / "Task123_Other/nnUNetTrainerV2__nnUNetPlansv2.1"
    write_v1_model(other, checkpoint="model_latest")
    write_v1_model(other, checkpoint="model_final_checkpoint")
    assert default_v1_checkpoint(other) == "model_final_checkpoint"  # nnU-Net v1's own default


def test_truncated_checkpoint_is_reported_as_corrupt_and_leaves_no_output(tmp_path):
    write_v1_model(tmp_path / TRAINER, folds=(0, 1))
    broken = tmp_path / TRAINER / "fold_1" / "model_latest.model"
    broken.write_bytes(broken.read_bytes()[:2000])
    with pytest.raises(CorruptWeightsError, match="download or copy it again"):
        convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    assert not (tmp_path / "v2").exists()
    assert not list(tmp_path.glob(".v2.converting-*"))


def test_weights_of_another_model_are_rejected_with_a_clear_error(tmp_path):
    write_v1_model(tmp_path / TRAINER, num_classes=145)
    write_v1_model(tmp_path / "other", num_classes=10)
    (tmp_path / TRAINER / "fold_0" / "model_latest.model").write_bytes(
        (tmp_path / "other" / "fold_0" / "model_latest.model").read_bytes()
    )
    with pytest.raises(CorruptWeightsError, match="different models"):
        convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")


def test_folder_without_plans_points_to_the_trainer_folder(tmp_path):
    write_v1_model(tmp_path / TRAINER)
    with pytest.raises(MissingWeightsError, match=r"nnUNetTrainerV2_noMirroring__nnUNetPlansv2\.1"):
        convert_v1_to_v2(tmp_path / "Task902_Anatomy_Prediction", tmp_path / "v2")


def test_missing_fold_is_named(tmp_path):
    write_v1_model(tmp_path / TRAINER, folds=(0,))
    with pytest.raises(MissingWeightsError, match="fold"):
        convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2", folds=[0, 3])


def test_unsupported_normalisation_is_refused(tmp_path):
    write_v1_model(tmp_path / TRAINER)
    for path in [tmp_path / TRAINER / "plans.pkl", tmp_path / TRAINER / "fold_0/model_latest.model.pkl"]:
        data = load_v1_pickle(path)
        plans = data if "plans_per_stage" in data else data["plans"]
        plans["normalization_schemes"] = {0: "CT2"}
        path.write_bytes(pickle.dumps(data))
    with pytest.raises(UnsupportedFormatError, match="CT2"):
        convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")


def test_existing_output_is_not_overwritten_unless_asked(tmp_path):
    write_v1_model(tmp_path / TRAINER)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "keep.txt").write_text("user data")
    with pytest.raises(OutputExistsError):
        convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2", overwrite=True)
    assert (tmp_path / "v2" / "plans.json").exists() and not (tmp_path / "v2" / "keep.txt").exists()


def test_pickle_naming_other_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "plans.pkl"
    path.write_bytes(pickle.dumps({"plans_per_stage": Payload()}))
    with pytest.raises(CorruptWeightsError, match="refusing"):
        load_v1_pickle(path)


def test_numpy_1_pickles_load_under_numpy_2(tmp_path):
    # protocol 0 is text: rewrite the numpy 2 module path into the numpy 1 one real files contain
    data = pickle.dumps({"patch_size": np.array([1, 2, 3]), "sd": np.float64(2.5)}, protocol=0)
    assert b"numpy._core" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    loaded = load_v1_pickle(path)
    assert loaded["patch_size"].tolist() == [1, 2, 3] and loaded["sd"] == 2.5


def test_v1_checkpoint_with_numpy_training_curves_loads_without_unsafe_unpickling(tmp_path):
    write_v1_model(tmp_path / TRAINER)
    checkpoint = load_v1_checkpoint(tmp_path / TRAINER / "fold_0" / "model_latest.model")
    assert "conv_blocks_context.0.blocks.0.conv.weight" in checkpoint["state_dict"]
    assert checkpoint["plot_stuff"][0][1] == pytest.approx(0.4)


def test_convert_model_command(tmp_path, capsys):
    write_v1_model(tmp_path / TRAINER)
    code = main(["convert-model", str(tmp_path / TRAINER), str(tmp_path / "v2")])
    assert code == 0
    assert "converted" in capsys.readouterr().out
    assert (tmp_path / "v2" / "fold_0" / V2_CHECKPOINT).exists()
    assert main(["convert-model", str(tmp_path / TRAINER), str(tmp_path / "v2")]) == 2  # exists


def test_folders_converted_before_the_move_still_find_the_v1_decoder_class():
    """Older plans.json files name ``DAPAtlasLib.v1_decoder_unet``; nnU-Net locates it by that name."""
    import pydoc

    from DAPAtlasLib.nnunet.v1_decoder_unet import PlainConvUNetV1Decoder

    assert pydoc.locate("DAPAtlasLib.v1_decoder_unet.PlainConvUNetV1Decoder") is PlainConvUNetV1Decoder


def test_the_converted_model_folder_and_files_get_the_umask_mode(tmp_path):
    """The folder used to come out 0700 (mkdtemp renamed into place); now mkdir()'s mode."""
    import os
    import stat

    write_v1_model(tmp_path / TRAINER, config=ISOTROPIC)
    old = os.umask(0o022)
    try:
        out = convert_v1_to_v2(tmp_path / TRAINER, tmp_path / "v2")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "plans.json").stat().st_mode) == 0o644
