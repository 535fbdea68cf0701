"""Issue 14, items 2 and 8: folder mode isolates cases, always writes dataset.csv with a status
column, resumes, exits non-zero when a case failed; dataset means, SD, median, pooled means and a
seeded bootstrap CI checked against independent computations."""

import csv
import json
import statistics

import numpy as np
import pytest
from scipy import stats

from AnatomyCommonLib import Volume, write_volume
from CCMetricsLib import batch
from CCMetricsLib.__main__ import main
from CCMetricsLib.aggregation import bootstrap_mean_ci, summarize_dataset
from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask

SPACING_IJK = (1.0, 1.0, 2.0)


def case(seed: int, shape=(16, 32, 32)):
    spacing_kji = SPACING_IJK[::-1]
    reference = sphere_mask(shape, random_spheres(shape, 3, (2.5, 5.0), 3.0, spacing_kji, seed), spacing_kji)
    prediction, _ = perturb_prediction(reference, dilated=1, shifted=1, spacing=spacing_kji, seed=seed)
    volume = Volume.from_geometry(reference.astype(np.uint8), SPACING_IJK)
    return volume, volume.with_array(prediction.astype(np.uint8))


def make_folders(tmp_path, seeds=(1, 2, 3)):
    for sub in ("refs", "model"):
        (tmp_path / sub).mkdir()
    for seed in seeds:
        reference, prediction = case(seed)
        write_volume(reference, tmp_path / "refs" / f"case{seed}.nii.gz")
        write_volume(prediction, tmp_path / "model" / f"case{seed}.nii.gz")
    return tmp_path


def folder_args(tmp_path, *extra):
    return [
        "evaluate",
        "--reference-dir",
        str(tmp_path / "refs"),
        "--prediction-dir",
        str(tmp_path / "model"),
        "--out-dir",
        str(tmp_path / "out"),
        "--no-progress",
        *extra,
    ]


def read_csv(path):
    return list(csv.DictReader(path.open()))


def test_a_bad_case_is_named_with_its_reason_and_the_others_complete(tmp_path, capsys):
    make_folders(tmp_path)
    # case2: prediction on another grid; case3: no prediction at all; case4: reference only
    reference, _ = case(2, shape=(16, 32, 30))
    write_volume(reference, tmp_path / "model" / "case2.nii.gz", overwrite=True)
    (tmp_path / "model" / "case3.nii.gz").unlink()
    extra, _ = case(4)
    write_volume(extra, tmp_path / "refs" / "case4.nii.gz")
    (tmp_path / "model" / "case4.nii.gz").write_bytes(b"not an image at all")
    code = main(folder_args(tmp_path))
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "3 of 4 cases failed" in err and "case2" in err and "no prediction in model" in err
    rows = read_csv(tmp_path / "out" / "dataset.csv")
    status = {r["case"]: r["status"] for r in rows}
    assert status == {"case1": "ok", "case2": "failed", "case3": "failed", "case4": "failed"}
    errors = {r["case"]: r["error"] for r in rows}
    assert "(16, 32, 30)" in errors["case2"] and errors["case3"] == "no prediction in model"
    assert errors["case4"] and "\n" not in errors["case4"]
    assert float(next(r for r in rows if r["case"] == "case1")["cc_dice"]) > 0
    assert (tmp_path / "out" / "cases" / "case1.csv").exists()
    assert not (tmp_path / "out" / "cases" / "case2.csv").exists()
    summary = read_csv(tmp_path / "out" / "dataset_summary.csv")
    assert (summary[0]["cases"], summary[0]["cases_failed"]) == ("1", "3")


def test_resume_skips_finished_cases_and_a_plain_rerun_is_refused(tmp_path, capsys, monkeypatch):
    make_folders(tmp_path)
    good = (tmp_path / "model" / "case2.nii.gz").read_bytes()
    (tmp_path / "model" / "case2.nii.gz").write_bytes(b"broken")
    assert main(folder_args(tmp_path)) == 1
    capsys.readouterr()
    first = read_csv(tmp_path / "out" / "dataset.csv")
    assert [r["status"] for r in first] == ["ok", "failed", "ok"]

    assert main(folder_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1

    (tmp_path / "model" / "case2.nii.gz").write_bytes(good)
    evaluated = []
    original = batch.evaluate_volumes

    def counting(reference, predictions, **kwargs):
        evaluated.append(reference.array.sum())
        return original(reference, predictions, **kwargs)

    monkeypatch.setattr(batch, "evaluate_volumes", counting)
    assert main(folder_args(tmp_path, "--resume")) == 0
    assert len(evaluated) == 1  # only the failed case was evaluated again
    resumed = read_csv(tmp_path / "out" / "dataset.csv")
    assert [r["status"] for r in resumed] == ["ok", "ok", "ok"]
    assert resumed[0]["cc_dice"] == first[0]["cc_dice"]

    # resuming with other settings would mix incomparable numbers
    assert main(folder_args(tmp_path, "--resume", "--nsd-tolerance", "2")) == 2
    assert "other settings" in capsys.readouterr().err


def test_dataset_summary_matches_an_independent_computation(tmp_path, capsys):
    make_folders(tmp_path, seeds=(1, 2, 3, 4, 5))
    assert main(folder_args(tmp_path, "--bootstrap-resamples", "5000", "--seed", "7")) == 0
    rows = read_csv(tmp_path / "out" / "dataset.csv")
    summary = read_csv(tmp_path / "out" / "dataset_summary.csv")[0]
    for key in ("cc_dice", "standard_hd95", "cc_assd", "pq"):
        values = [float(r[key]) for r in rows]
        assert float(summary[key]) == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert float(summary[f"{key}_sd"]) == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert float(summary[f"{key}_median"]) == pytest.approx(statistics.median(values), rel=1e-12)
        low, high = float(summary[f"{key}_ci95_low"]), float(summary[f"{key}_ci95_high"])
        assert low <= statistics.fmean(values) <= high
    # pooled: every component of every case weighs the same
    components = [
        row for seed in range(1, 6) for row in read_csv(tmp_path / "out" / "cases" / f"case{seed}.csv")
    ]
    assert float(summary["cc_dice_pooled"]) == pytest.approx(
        statistics.fmean(float(r["dice"]) for r in components), rel=1e-12
    )
    missed = sum(int(r["n_missed"]) for r in rows)
    assert int(summary["cc_hd95_n_missed"]) == missed == int(summary["n_missed"])
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert data["bootstrap"] == {"method": "percentile", "resamples": 5000, "seed": 7}
    assert data["summary"][0]["cc_dice_ci95_low"] == pytest.approx(float(summary["cc_dice_ci95_low"]))
    assert [c["case"] for c in data["cases"]] == [r["case"] for r in rows]


def test_bootstrap_ci_agrees_with_scipy_and_a_hand_rolled_loop():
    values = np.random.default_rng(3).gamma(2.0, 1.5, size=25)
    low, high = bootstrap_mean_ci(values, resamples=20000, seed=11)
    reference = stats.bootstrap(
        (values,), np.mean, n_resamples=20000, method="percentile", random_state=np.random.default_rng(5)
    ).confidence_interval
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert low == pytest.approx(reference.low, abs=0.1 * standard_error)
    assert high == pytest.approx(reference.high, abs=0.1 * standard_error)
    # the same draws by hand: one resample at a time from the same seeded generator
    rng = np.random.default_rng(11)
    means = sorted(values[rng.integers(0, values.size, size=values.size)].mean() for _ in range(20000))
    assert (low, high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), rel=1e-12)
    # seeded: the same numbers every time
    assert bootstrap_mean_ci(values, resamples=20000, seed=11) == (low, high)


def test_summary_of_one_case_and_failed_rows():
    rows = [
        {"case": "a", "prediction": "m", "label": None, "status": "ok", "cc_dice": 0.5, "n_missed": 1},
        {"case": "b", "prediction": "m", "label": None, "status": "failed", "error": "x"},
    ]
    summary = summarize_dataset(rows)[0]
    assert (summary["cases"], summary["cases_failed"], summary["n_missed"]) == (1, 1, 1)
    assert summary["cc_dice"] == summary["cc_dice_ci95_low"] == summary["cc_dice_ci95_high"] == 0.5
    assert np.isnan(summary["cc_dice_sd"])
