"""``evaluate``: Dice and NSD per structure against labelled data, checked against MONAI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from postprocess_cases import phantom
from scipy import ndimage

from AnatomyCommonLib.image_io import write_volume
from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.__main__ import main
from DAPAtlasLib.evaluation import dice_and_nsd, load_mapping

# BTCV label id -> DAP id, written by hand from the BTCV organ list and the released DAP label CSV
BTCV_TO_DAP = {1: 26, 2: 16, 3: 15, 4: 12, 5: 6, 6: 13, 7: 7, 8: 114, 9: 117, 10: 118, 11: 14, 12: 28, 13: 27}
BTCV_ABBREVIATIONS = [
    "Spl",
    "RKid",
    "LKid",
    "GB",
    "Eso",
    "Liv",
    "Sto",
    "Aor",
    "IVC",
    "PV&SV",
    "Pan",
    "RAd",
    "LAd",
]


def monai_dice_nsd(pred: np.ndarray, ref: np.ndarray, spacing, tolerance):
    """The oracle: MONAI's compute_dice and compute_surface_dice (Euclidean, physical spacing)."""
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    p = torch.from_numpy(pred[None, None].astype(np.float32))
    r = torch.from_numpy(ref[None, None].astype(np.float32))
    dice = float(metrics.compute_dice(p, r, include_background=True)[0, 0])
    nsd = float(
        metrics.compute_surface_dice(
            p, r, class_thresholds=[tolerance], include_background=True, spacing=list(spacing)
        )[0, 0]
    )
    return dice, nsd


def test_dice_of_two_offset_boxes_by_hand():
    ref = np.zeros((20, 20, 20), bool)
    pred = np.zeros_like(ref)
    ref[5:15, 5:15, 5:15] = True  # 1000 voxels
    pred[7:17, 5:15, 5:15] = True  # overlap 8 x 10 x 10 = 800
    dice, nsd = dice_and_nsd(pred, ref, (1.0, 1.0, 1.0), 0.0)
    assert dice == pytest.approx(2 * 800 / 2000)
    # at 0 mm only coinciding surface voxels count: the 36-voxel rings of k = 7..14 on each side
    # (surfaces: 1000 - 8^3 = 488 voxels each), so NSD = 2 * 8 * 36 / (2 * 488)
    assert nsd == pytest.approx(2 * 8 * 36 / (2 * 488))
    # the 2-voxel shift along axis 0 with 3 mm spacing there: every surface voxel lies within 6 mm
    assert dice_and_nsd(pred, ref, (3.0, 1.0, 1.0), 6.0)[1] == pytest.approx(1.0)
    assert dice_and_nsd(pred, ref, (3.0, 1.0, 1.0), 5.9)[1] < 1.0


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_dice_and_nsd_match_monai_on_anisotropic_blobs(tolerance):
    rng = np.random.default_rng(4)
    ref = ndimage.gaussian_filter(rng.random((24, 40, 36)), 3) > 0.5
    pred = ndimage.binary_dilation(ref, iterations=1) & (rng.random(ref.shape) > 0.05)
    pred[:, :5] = ref[:, :5] = False
    spacing = (2.5, 0.8, 1.1)
    ours = dice_and_nsd(pred, ref, spacing, tolerance)
    oracle = monai_dice_nsd(pred, ref, spacing, tolerance)
    assert ours == pytest.approx(oracle, abs=1e-6)  # MONAI computes in float32


def test_empty_reference_is_not_evaluated_and_empty_prediction_scores_zero():
    empty = np.zeros((5, 5, 5), bool)
    full = empty.copy()
    full[1:4, 1:4, 1:4] = True
    assert all(math.isnan(v) for v in dice_and_nsd(full, empty, (1, 1, 1), 1.0))
    assert dice_and_nsd(empty, full, (1, 1, 1), 1.0) == (0.0, 0.0)


def _btcv_reference(dap: np.ndarray) -> np.ndarray:
    out = np.zeros(dap.shape, np.uint8)
    for btcv, dap_id in BTCV_TO_DAP.items():
        out[dap == dap_id] = btcv
    return out


def _perturbed_prediction(dap: np.ndarray, seed: int) -> np.ndarray:
    """Each BTCV organ dilated or eroded by one voxel or shifted, differently per case."""
    rng = np.random.default_rng(seed)
    out = dap.copy()
    for dap_id in BTCV_TO_DAP.values():
        mask = dap == dap_id
        choice = rng.integers(0, 3)
        if choice == 0:
            grown = ndimage.binary_dilation(mask) & (out == 0)
            out[grown] = dap_id
        elif choice == 1:
            out[mask & ~ndimage.binary_erosion(mask)] = 0
        else:
            out[mask] = 0
            out[np.roll(mask, 1, axis=int(rng.integers(0, 3))) & (out == 0)] = dap_id
    return out


@pytest.fixture(scope="module")
def btcv_like(tmp_path_factory):
    """Three BTCV-style cases (labelNNNN / imgNNNN_dap names) on an anisotropic oblique phantom."""
    root = tmp_path_factory.mktemp("btcv")
    (root / "labels").mkdir()
    (root / "pred").mkdir()
    expected = {}
    for number, seed in enumerate((0, 1, 2), start=1):
        p = phantom("oblique", "M", seed)
        labels = p.labels
        reference = _btcv_reference(labels.array)
        prediction = _perturbed_prediction(labels.array, seed)
        write_volume(labels.with_array(reference), root / "labels" / f"label{number:04d}.nii.gz")
        write_volume(labels.with_array(prediction), root / "pred" / f"img{number:04d}_dap.nii.gz")
        for btcv, dap_id in BTCV_TO_DAP.items():
            expected[(number, btcv)] = (
                monai_dice_nsd(prediction == dap_id, reference == btcv, labels.spacing_kji_mm, 2.0)
                if (reference == btcv).any()
                else (math.nan, math.nan)
            )
    return root, expected


def test_evaluate_btcv_matches_an_independent_computation(btcv_like, tmp_path, capsys):
    root, expected = btcv_like
    out = tmp_path / "eval"
    code = main(
        ["evaluate", str(root / "pred"), str(root / "labels"), "--mapping", "btcv", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Spl" in printed and "PV&SV" in printed and "Atlas (V2)" in printed and "85" in printed
    with (out / "summary.csv").open() as handle:
        rows = {row["abbreviation"]: row for row in csv.DictReader(handle)}
    dice_sds, dice_means = [], []
    for btcv, abbreviation in enumerate(BTCV_ABBREVIATIONS, start=1):
        dice = np.array([expected[(n, btcv)][0] for n in (1, 2, 3)])
        nsd = np.array([expected[(n, btcv)][1] for n in (1, 2, 3)])
        dice, nsd = dice[~np.isnan(dice)], nsd[~np.isnan(nsd)]
        row = rows[abbreviation]
        assert int(row["cases"]) == dice.size
        if dice.size == 0:
            continue
        assert float(row["dice_mean"]) == pytest.approx(dice.mean(), abs=1e-5)
        assert float(row["nsd_mean"]) == pytest.approx(nsd.mean(), abs=1e-5)
        if dice.size > 1:
            assert float(row["dice_sd"]) == pytest.approx(dice.std(ddof=1), abs=1e-5)
            dice_sds.append(dice.std(ddof=1))
        dice_means.append(dice.mean())
    total = json.loads((out / "evaluation.json").read_text())["total"]
    assert total["dice_mean"] == pytest.approx(np.mean(dice_means), abs=1e-5)
    assert total["dice_sd_rms"] == pytest.approx(math.sqrt(np.mean(np.square(dice_sds))), abs=1e-5)


def test_a_failing_case_is_named_and_the_others_are_evaluated(btcv_like, tmp_path, capsys):
    root, _ = btcv_like
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in (root / "pred").iterdir():
        (pred / path.name).write_bytes(path.read_bytes())
    (pred / "img0002_dap.nii.gz").write_bytes(b"broken")  # unreadable
    (pred / "img0003_dap.nii.gz").unlink()  # missing
    code = main(["evaluate", str(pred), str(root / "labels"), "--mapping", "btcv"])
    assert code == 1
    out = capsys.readouterr().out
    assert "1 case(s) evaluated, 2 failed" in out
    assert "failed label0002" in out and "failed label0003: no prediction" in out


def test_totalsegmentator_mask_folders_and_a_user_mapping_file(tmp_path):
    p = phantom("LPS", "F", 0)
    case = tmp_path / "labels" / "s0001" / "segmentations"
    case.mkdir(parents=True)
    labels = p.labels
    # TotalSegmentator names for three DAP structures, by hand
    for name, dap_id in (("liver", 13), ("spleen", 26), ("kidney_left", 15)):
        write_volume(labels.with_array((labels.array == dap_id).astype(np.uint8)), case / f"{name}.nii.gz")
    (tmp_path / "pred").mkdir()
    prediction = labels.array.copy()
    prediction[prediction == 26] = 0  # the spleen is missed
    write_volume(labels.with_array(prediction), tmp_path / "pred" / "s0001.nii.gz")
    from DAPAtlasLib.evaluation import evaluate

    result = evaluate(tmp_path / "pred", tmp_path / "labels", "totalsegmentator")
    (only,) = result.cases
    assert only.error is None
    assert only.dice["liver"] == 1.0 and only.dice["kidney_left"] == 1.0 and only.dice["spleen"] == 0.0
    assert math.isnan(only.dice["brain"])  # no mask in this case: not evaluated
    # a user's CSV mapping: one structure made of both kidneys
    mapping = tmp_path / "mine.csv"
    mapping.write_text("name,abbreviation,reference,dap\nkidneys,Kid,3,kidney left;kidney right\n")
    reference = np.where(np.isin(labels.array, (15, 16)), 3, 0).astype(np.uint8)
    write_volume(labels.with_array(reference), tmp_path / "ref.nii.gz")
    result = evaluate(tmp_path / "pred" / "s0001.nii.gz", tmp_path / "ref.nii.gz", load_mapping(mapping))
    assert result.cases[0].dice == {"Kid": 1.0}


def test_shipped_mappings_have_the_published_structure_counts():
    assert len(load_mapping("btcv").structures) == 13
    assert len(load_mapping("word").structures) == 16
    assert load_mapping("word").structures[11].dap_ids == (27, 28)  # WORD's adrenal = both glands
    assert len(load_mapping("totalsegmentator").structures) > 100


def test_an_unknown_mapping_is_refused(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), str(tmp_path), "--mapping", "amos"]) == 2
    assert "btcv, totalsegmentator, word" in capsys.readouterr().err


def test_a_prediction_on_another_grid_fails_that_case(tmp_path):
    from DAPAtlasLib.evaluation import evaluate

    ref = Volume.from_geometry(np.ones((8, 8, 8), np.uint8), spacing_mm=(1, 1, 1))
    pred = Volume.from_geometry(np.full((8, 8, 8), 13, np.uint8), spacing_mm=(1, 1, 2))
    write_volume(ref, tmp_path / "r.nii.gz")
    write_volume(pred, tmp_path / "p.nii.gz")
    result = evaluate(tmp_path / "p.nii.gz", tmp_path / "r.nii.gz", "btcv")
    assert "GeometryMismatchError" in result.failed[0].error
