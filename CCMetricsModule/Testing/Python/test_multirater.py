"""Issue 14, item 6: multi-rater agreement on synthetic raters with known disagreement, checked
against Dice by hand, a scipy Voronoi CC-Dice oracle and a hand-computed majority vote."""

import json
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from AnatomyCommonLib import Volume, read_volume, write_volume
from CCMetricsLib import evaluate, multirater_agreement
from CCMetricsLib.exceptions import InvalidParameterError, LabelNotFoundError
from CCMetricsLib.multirater import plot_agreement, staple_consensus
from CCMetricsLib.synthetic import Sphere, sphere_mask

SHAPE = (30, 44, 44)


def base():
    return sphere_mask(SHAPE, [Sphere((9, 10, 10), 4.0), Sphere((20, 30, 28), 6.0), Sphere((8, 32, 10), 3.0)])


def raters():
    reference = base()
    extra = sphere_mask(SHAPE, [Sphere((22, 10, 34), 2.5)])
    return {
        "A": reference,
        "B": ndimage.binary_dilation(reference) | extra,  # over-segments and sees one more lesion
        "C": np.roll(reference, 1, axis=2),  # shifted by one voxel
    }


def dice_by_hand(a, b):
    return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))


def cc_dice_oracle(reference, prediction):
    """Per-component Dice in scipy's Voronoi regions (one EDT feature transform), then the mean."""
    labels, n = ndimage.label(reference, structure=np.ones((3, 3, 3)))
    _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    regions = labels[tuple(nearest)]
    scores = []
    for component in range(1, n + 1):
        region = regions == component
        scores.append(dice_by_hand(prediction & region, reference & region))
    return float(np.mean(scores))


def test_pairwise_dice_and_cc_dice_in_both_directions_match_independent_computations():
    masks = raters()
    result = multirater_agreement(masks)
    assert [(p.a, p.b) for p in result.pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    for pair in result.pairs:
        a, b = masks[pair.a], masks[pair.b]
        assert pair.kind == "inter"
        assert pair.dice == pytest.approx(dice_by_hand(a, b), abs=1e-12)
        assert pair.cc_dice_a_ref == pytest.approx(cc_dice_oracle(a, b), abs=1e-12)
        assert pair.cc_dice_b_ref == pytest.approx(cc_dice_oracle(b, a), abs=1e-12)
    ab = result.pairs[0]
    assert ab.cc_dice_a_ref != pytest.approx(ab.cc_dice_b_ref, abs=1e-3)  # B's extra lesion: asymmetric
    expected_inter = np.mean([dice_by_hand(masks[x], masks[y]) for x, y in combinations("ABC", 2)])
    assert result.inter["dice"] == pytest.approx(expected_inter, abs=1e-12)
    assert result.inter["cc_dice"] == pytest.approx(np.mean([p.cc_dice for p in result.pairs]), abs=1e-12)
    assert result.intra is None


def test_intra_rater_agreement_is_the_mean_over_one_raters_sessions():
    masks = raters()
    sessions = [
        np.roll(masks["A"], 1, axis=1),
        ndimage.binary_erosion(masks["A"]) | (masks["A"] & masks["C"]),
    ]
    result = multirater_agreement(masks, repeats={"A": sessions})
    intra = [p for p in result.pairs if p.kind == "intra"]
    every = [masks["A"], *sessions]
    assert len(intra) == 3
    expected = np.mean([dice_by_hand(x, y) for x, y in combinations(every, 2)])
    assert result.intra["dice"] == pytest.approx(expected, abs=1e-12)
    expected_cc = np.mean(
        [(cc_dice_oracle(x, y) + cc_dice_oracle(y, x)) / 2 for x, y in combinations(every, 2)]
    )
    assert result.intra["cc_dice"] == pytest.approx(expected_cc, abs=1e-12)
    with pytest.raises(InvalidParameterError, match="not among the raters"):
        multirater_agreement(masks, repeats={"Z": sessions})
    with pytest.raises(InvalidParameterError, match="at least two raters"):
        multirater_agreement({"A": masks["A"]})
    with pytest.raises(LabelNotFoundError, match=r"label 4 .*\[1\]"):
        multirater_agreement({k: v.astype(np.uint8) for k, v in masks.items()}, label=4)


def test_staple_consensus_equals_the_majority_vote_where_they_agree_and_serves_as_reference():
    masks = raters()
    votes = sum(m.astype(int) for m in masks.values())
    majority = votes >= 2
    consensus, probability, sensitivity, specificity = staple_consensus(list(masks.values()))
    assert len(sensitivity) == len(specificity) == 3
    assert np.array_equal(consensus, majority)
    assert np.all(probability[votes == 3] > 0.5) and np.all(probability[votes == 0] < 0.5)
    result = multirater_agreement(masks, predictions={"model": masks["A"]})
    assert np.array_equal(result.consensus, majority)
    # B over-segments: the lowest specificity, the highest sensitivity
    assert result.staple["B"]["specificity"] == min(s["specificity"] for s in result.staple.values())
    assert result.staple["B"]["sensitivity"] == max(s["sensitivity"] for s in result.staple.values())
    model = result.models[0]
    assert model["dice_vs_consensus"] == pytest.approx(dice_by_hand(masks["A"], majority), abs=1e-12)
    assert model["cc_dice_vs_consensus"] == pytest.approx(evaluate(majority, masks["A"]).mean["dice"])


def test_a_model_above_intra_rater_agreement_is_warned_about_and_a_poor_one_is_not():
    masks = raters()
    sessions = [np.roll(masks["A"], 2, axis=1)]  # a sloppy second session: low intra agreement
    poor = ndimage.binary_erosion(masks["A"], iterations=2)
    result = multirater_agreement(masks, repeats={"A": sessions}, predictions={"close": base(), "poor": poor})
    close, bad = result.models
    expected = np.mean([dice_by_hand(base(), masks[r]) for r in "ABC"])
    assert close["dice"] == pytest.approx(expected, abs=1e-12)
    assert close["cc_dice"] == pytest.approx(
        np.mean([cc_dice_oracle(masks[r], base()) for r in "ABC"]), abs=1e-12
    )
    assert close["dice"] > result.intra["dice"] and close["dice_band"] == "above intra-rater agreement"
    assert bad["dice"] < result.inter["dice"] and bad["dice_band"] == "below inter-rater agreement"
    assert any(w.startswith("close: mean dice") for w in result.warnings)
    assert not any(w.startswith("poor") for w in result.warnings)


def test_cli_writes_consensus_json_csv_and_plot(tmp_path):
    masks = raters()
    spacing = (0.8, 0.8, 1.5)
    for name, mask in masks.items():
        write_volume(Volume.from_geometry(mask.astype(np.uint8), spacing), tmp_path / f"{name}.nii.gz")
    write_volume(
        Volume.from_geometry(np.roll(masks["A"], 2, axis=1).astype(np.uint8), spacing), tmp_path / "A2.nii.gz"
    )
    write_volume(Volume.from_geometry(base().astype(np.uint8), spacing), tmp_path / "model.nii.gz")
    command = [sys.executable, "-m", "CCMetricsLib", "multirater", "--raters"]
    command += [str(tmp_path / f"{n}.nii.gz") for n in "ABC"]
    command += ["--repeat", "A", str(tmp_path / "A2.nii.gz"), "--prediction", str(tmp_path / "model.nii.gz")]
    outputs = ["--json", "a.json", "--csv", "pairs.csv", "--consensus", "staple.nii.gz", "--png", "band.png"]
    run = subprocess.run(
        command + [str(tmp_path / o) if i % 2 else o for i, o in enumerate(outputs)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "warning: model: mean dice" in run.stderr
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["raters"] == ["A", "B", "C"]
    assert data["intra_rater"]["dice"] == pytest.approx(
        dice_by_hand(masks["A"], np.roll(masks["A"], 2, axis=1))
    )
    consensus = read_volume(tmp_path / "staple.nii.gz")
    assert np.array_equal(consensus.array != 0, sum(m.astype(int) for m in masks.values()) >= 2)
    assert consensus.spacing_mm == pytest.approx(spacing)
    assert Image.open(tmp_path / "band.png").size[0] > 600
    assert (tmp_path / "pairs.csv").read_text().count("\n") == 4 + 1

    bad = subprocess.run(
        [*command[:-2], "--repeat", "Z", str(tmp_path / "A2.nii.gz")], capture_output=True, text=True
    )
    assert (
        bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Z is not one of" in bad.stderr
    )


def test_plot_without_repeats(tmp_path):
    result = multirater_agreement(raters(), predictions={"m": base()})
    path = plot_agreement(result, tmp_path / "p.png")
    assert Image.open(path).size[1] > 100


def test_progress_is_reported_before_each_pair_staple_and_model_and_can_stop_the_analysis():
    masks = raters()
    seen = []
    result = multirater_agreement(
        masks,
        repeats={"A": [np.roll(masks["A"], 1, axis=1)]},
        predictions={"m1": masks["A"], "m2": masks["C"]},
        progress=lambda index, total, step: seen.append((index, total, step)),
    )
    # 3 inter pairs + 1 intra pair, STAPLE, 2 models; indices 0..6 of 7, in order
    assert [index for index, _, _ in seen] == list(range(7))
    assert {total for _, total, _ in seen} == {7}
    steps = [step for _, _, step in seen]
    assert steps[:4] == [f"pair {p.a} vs {p.b}" for p in result.pairs]
    assert "STAPLE" in steps[4] and steps[5:] == ["model m1", "model m2"]

    class StopError(Exception):
        pass

    def stop_at_staple(index, total, step):
        if "STAPLE" in step:
            raise StopError

    with pytest.raises(StopError):  # the callback's exception ends the analysis (a GUI's Cancel)
        multirater_agreement(masks, predictions={"m1": masks["A"]}, progress=stop_at_staple)
