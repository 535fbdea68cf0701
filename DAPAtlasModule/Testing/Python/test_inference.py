"""DAP Atlas inference end to end: a tiny random-weight nnU-Net v2 model on the tiny phantom.

The label maps are meaningless (random weights); what is checked is the pipeline: the real
nnunetv2 predictor runs, results come back on the input's exact grid for any orientation, the
wrapper gives the same labels as calling the predictor directly, post-processing runs when asked,
progress and cancel work, and broken model folders give clear errors.
"""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from AnatomyCommonLib.anatomy.phantom import make_phantom  # noqa: E402
from AnatomyCommonLib.errors import CancelledError, InsufficientMemoryError  # noqa: E402
from AnatomyCommonLib.volume import Volume  # noqa: E402
from DAPAtlasLib.exceptions import (  # noqa: E402
    CorruptWeightsError,
    MissingDependencyError,
    MissingWeightsError,
    UnsupportedFormatError,
)
from DAPAtlasLib.inference import DAPSegmenter, segment  # noqa: E402
from DAPAtlasLib.model_conversion import InferenceSettings  # noqa: E402
from DAPAtlasLib.nnunet.random_model import write_random_v2_model  # noqa: E402
from DAPAtlasLib.voxel_orientation import orientation_code, plan_reorientation  # noqa: E402

pytestmark = pytest.mark.torch


#: Small and coarse so that a whole case takes about a second on a CPU: 18 mm spacing (the 6 mm
#: phantom is resampled 3x), 16 classes (DAP ids 0..15), three 32^3 patches per case.
TINY_MODEL = {"spacing_mm": (18.0, 18.0, 18.0), "num_classes": 16}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """Random model trained in LAS orientation like DAP."""
    folder = tmp_path_factory.mktemp("models") / "random_las"
    settings = InferenceSettings(
        "random LAS test model", postprocess_by_default=False, voxel_orientation="LAS"
    )
    return write_random_v2_model(folder, settings=settings, **TINY_MODEL)


@pytest.fixture(scope="module")
def segmenter(model_dir):
    return DAPSegmenter(model_dir, device="cpu")


def oblique_direction() -> np.ndarray:
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return rotation @ np.diag([-1.0, -1.0, 1.0])  # LPS turned 20 degrees about the body axis


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "oblique"])
def test_labels_come_back_on_the_exact_input_grid(segmenter, orientation):
    if orientation == "oblique":
        phantom = make_phantom("tiny", seed=0, direction_ras=oblique_direction())
    else:
        phantom = make_phantom("tiny", seed=0, orientation=orientation)
    labels = segmenter.segment(phantom.ct)
    assert labels.shape == phantom.ct.shape
    assert np.allclose(labels.ijk_to_ras, phantom.ct.ijk_to_ras, atol=1e-9, rtol=0)
    assert labels.array.dtype == np.uint8
    assert labels.array.min() >= 0 and labels.array.max() < TINY_MODEL["num_classes"]
    assert len(np.unique(labels.array)) > 1


def test_the_same_anatomy_stored_in_lps_or_ras_gets_the_same_labels(segmenter):
    lps = make_phantom("tiny", seed=3, orientation="LPS")
    ras = make_phantom("tiny", seed=3, orientation="RAS")
    labels_lps = segmenter.segment(lps.ct)
    labels_ras = segmenter.segment(ras.ct)
    # LPS -> RAS flips the i and j voxel axes; the model saw the same LAS array both times
    assert np.array_equal(labels_lps.array[:, ::-1, ::-1], labels_ras.array)


def test_reorientation_to_las_is_exact_and_reversible():
    phantom = make_phantom("tiny", seed=0, direction_ras=oblique_direction())
    plan = plan_reorientation(phantom.ct, "LAS")
    moved = plan.apply(phantom.ct.array)
    assert np.array_equal(plan.restore(moved), phantom.ct.array)
    lps = make_phantom("tiny", seed=0, orientation="LPS").ct
    assert orientation_code(lps.direction_ras) == "LPS"
    assert plan_reorientation(lps, "LAS").flips_kji == (False, True, False)  # only j (P -> A) flips


def test_wrapper_gives_the_labels_of_the_nnunetv2_predictor_called_directly(model_dir):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    ct = make_phantom("tiny", seed=1, orientation="LAS").ct  # already in the model's orientation
    ours = segment(ct, model_dir, device="cpu", export_resampling="nnunet")
    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(
        str(model_dir), use_folds=(0,), checkpoint_name="checkpoint_final.pth"
    )
    direct = predictor.predict_single_npy_array(
        ct.array[None].astype(np.float32), {"spacing": list(ct.spacing_kji_mm)}
    )
    assert np.array_equal(ours.array, direct)
    fast = segment(ct, model_dir, device="cpu")  # default: nnunetv2's torch resampling for the export
    assert np.mean(fast.array == direct) > 0.999


def test_lean_export_equals_nnunetv2_export_with_anisotropic_resampling(model_dir):
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape,
    )
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from DAPAtlasLib.nnunet.nnunet_predictor import logits_to_input_grid

    predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(
        str(model_dir), use_folds=(0,), checkpoint_name="checkpoint_final.pth"
    )
    # 18 mm model, input 2 x 2 x 40 mm: the out-of-plane axis is resampled separately (order 0)
    properties = {
        "spacing": [40.0, 2.0, 2.0],
        "shape_before_cropping": (9, 70, 60),
        "shape_after_cropping_and_before_resampling": (7, 66, 60),
        "bbox_used_for_cropping": [[1, 8], [2, 68], [0, 60]],
    }
    logits = torch.randn((16, 23, 11, 10), generator=torch.Generator().manual_seed(0)).half()
    expected = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits.clone(),
        predictor.plans_manager,
        predictor.configuration_manager,
        predictor.label_manager,
        properties,
    )
    for chunk in (1, 7, 16):
        actual = logits_to_input_grid(
            logits.clone(),
            properties,
            predictor.plans_manager,
            predictor.configuration_manager,
            predictor.label_manager,
            chunk=chunk,
        )
        assert np.array_equal(actual, expected)
    fast = logits_to_input_grid(
        logits.clone(),
        properties,
        predictor.plans_manager,
        predictor.configuration_manager,
        predictor.label_manager,
        resampling="torch",
    )
    inside = np.zeros(expected.shape, dtype=bool)
    inside[1:8, 2:68, 0:60] = True
    assert np.array_equal(fast[~inside], expected[~inside])  # background outside the crop
    assert np.mean(fast[inside] == expected[inside]) > 0.99  # near-ties of random logits may differ


def test_progress_rises_to_one_and_raising_from_it_cancels(segmenter):
    ct = make_phantom("tiny", seed=0).ct
    values: list[float] = []
    segmenter.segment(ct, progress=lambda fraction, message: values.append(fraction))
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert len(values) > 5  # per patch, not only per phase

    def cancel_after_three_patches(fraction: float, message: str) -> None:
        if message.startswith("predicting patch 3/"):
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        segmenter.segment(ct, progress=cancel_after_three_patches)


def test_postprocessing_runs_when_asked_and_by_default_for_models_that_need_it(tmp_path):
    pytest.importorskip("DAPAtlasLib.postprocess")
    folder = write_random_v2_model(
        tmp_path / "v1like",
        **TINY_MODEL,
        settings=InferenceSettings(
            "random V1-like model", postprocess_by_default=True, voxel_orientation="LAS"
        ),
    )
    phantom = make_phantom("tiny", seed=0, sex="M")
    raw = segment(phantom.ct, folder, device="cpu", postprocess=False)
    processed = segment(phantom.ct, folder, device="cpu", sex="M")  # default on for this model
    assert raw.metadata["dap_postprocessed"] is False and processed.metadata["dap_postprocessed"] is True
    assert processed.same_grid_as(phantom.ct)
    report = processed.metadata["dap_postprocess_report"]
    assert [step.step for step in report.steps][-1] == "skull_from_ct"
    from DAPAtlasLib.postprocess import postprocess

    expected = postprocess(raw, ct=phantom.ct, sex="M").labels
    assert np.array_equal(processed.array, expected.array)
    # an independent sanity check of one rule: single organs keep no floating piece, i.e. every
    # piece besides the largest touches the image border or lies within the 12 mm gap tolerance
    # (6 mm voxels) of another piece
    from scipy import ndimage

    spacing = phantom.ct.spacing_kji_mm
    for label in (13, 14, 15):  # liver, pancreas, kidney left
        pieces, n = ndimage.label(processed.array == label)
        sizes = np.bincount(pieces.ravel())[1:]
        for piece in set(range(1, n + 1)) - {int(np.argmax(sizes)) + 1}:
            own = pieces == piece
            at_border = any(np.take(own, i, axis=a).any() for a in range(3) for i in (0, -1))
            distance = ndimage.distance_transform_edt(~own, sampling=spacing)
            assert at_border or distance[(pieces > 0) & ~own].min() <= 12.0


def test_v2_model_leaves_postprocessing_off_by_default(segmenter):
    labels = segmenter.segment(make_phantom("tiny", seed=0).ct)
    assert labels.metadata["dap_postprocessed"] is False


def test_insufficient_memory_is_reported_before_predicting(segmenter, monkeypatch):
    import DAPAtlasLib.device_selection as device_selection

    monkeypatch.setattr(device_selection, "available_ram_bytes", lambda: 200 * 1024**2)
    with pytest.raises(InsufficientMemoryError, match=r"needs about .* GB of RAM .*Crop the CT"):
        segmenter.segment(make_phantom("tiny", seed=0).ct)


def test_cuda_requested_without_a_gpu_is_a_clear_error(model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(MissingDependencyError, match="no CUDA GPU"):
        segment(make_phantom("tiny", seed=0).ct, model_dir, device="cuda")


# ------------------------------------------------------------------ broken model folders
def copy_model(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "copy")


def test_folder_without_dataset_json_is_not_a_model(model_dir, tmp_path):
    folder = copy_model(model_dir, tmp_path)
    (folder / "dataset.json").unlink()
    with pytest.raises(UnsupportedFormatError, match="neither an nnU-Net v2 results folder"):
        DAPSegmenter(folder)


def test_garbage_checkpoint_is_reported_as_damaged(model_dir, tmp_path):
    folder = copy_model(model_dir, tmp_path)
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptWeightsError, match="could not be loaded"):
        segment(make_phantom("tiny", seed=0).ct, folder, device="cpu")


def test_checkpoint_that_does_not_match_its_plans_is_reported(model_dir, tmp_path):
    folder = copy_model(model_dir, tmp_path)
    dataset = json.loads((folder / "dataset.json").read_text())
    dataset["labels"] = {name: value for name, value in dataset["labels"].items() if value < 10}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(CorruptWeightsError, match=r"do not match plans\.json/dataset\.json"):
        segment(make_phantom("tiny", seed=0).ct, folder, device="cpu")


def test_invalid_plans_json_is_reported(model_dir, tmp_path):
    folder = copy_model(model_dir, tmp_path)
    (folder / "plans.json").write_text("{ not json")
    with pytest.raises(CorruptWeightsError, match="not valid JSON"):
        DAPSegmenter(folder)


def test_missing_fold_is_named(model_dir):
    with pytest.raises(MissingWeightsError, match="no fold"):
        DAPSegmenter(model_dir, folds=[3])


def test_uninstalled_released_model_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(MissingWeightsError, match="python -m DAPAtlasLib models install dap-atlas-v2"):
        segment(make_phantom("tiny", seed=0).ct, "dap-atlas-v2", device="cpu")


def test_two_dimensional_input_is_refused(segmenter):
    from AnatomyCommonLib.errors import ImageDimensionError

    with pytest.raises(ImageDimensionError):
        segmenter.segment(Volume(np.zeros((4, 4), dtype=np.int16)))
